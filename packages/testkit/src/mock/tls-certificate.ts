import { X509Certificate } from 'node:crypto';
import { generate } from 'selfsigned';

/** A certificate for 127.0.0.1 and localhost, with what a client needs to trust it. */
export interface MockCertificate {
  /** PEM; give it to a client as its CA (`ca`), or pin `fingerprint256`. */
  cert: string;
  key: string;
  /** SHA-256 thumbprint, colon-separated upper-case hex, as Node prints it. */
  fingerprint256: string;
}

let shared: Promise<MockCertificate> | undefined;

/**
 * A self-signed certificate made at run time, so no private key lives in the
 * repository. Key generation is slow, so one is shared per process.
 */
export function mockCertificate(): Promise<MockCertificate> {
  shared ??= (async () => {
    const now = Date.now();
    const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
      keySize: 2048,
      algorithm: 'sha256',
      notBeforeDate: new Date(now - 24 * 3600_000),
      notAfterDate: new Date(now + 30 * 24 * 3600_000),
      extensions: [
        { name: 'basicConstraints', cA: true },
        {
          name: 'subjectAltName',
          altNames: [
            { type: 2, value: 'localhost' },
            { type: 7, ip: '127.0.0.1' },
          ],
        },
      ],
    });
    return {
      cert: pems.cert,
      key: pems.private,
      fingerprint256: new X509Certificate(pems.cert).fingerprint256,
    };
  })();
  return shared;
}
