import { connect, type PeerCertificate } from 'node:tls';
import { normalizeThumbprint, overrideLookup, SyncproxyError, toSyncproxyError } from '@syncproxy/core';

export interface CertificateProbeOptions {
  host: string;
  port: number;
  /** Accept only this SHA-256 thumbprint (instead of verifying the chain). */
  pinnedThumbprintSha256?: string;
  ca?: string;
  hostOverrides?: Record<string, string>;
  timeoutMs?: number;
}

/**
 * The server certificate's thumbprints, read over a TLS connection that is
 * trusted the same way the API calls are (chain, or SHA-256 pin). VDDK wants
 * the SHA-1 one; reading it here spares the user a second thumbprint field.
 */
export function certificateThumbprints(
  options: CertificateProbeOptions,
): Promise<{ sha1: string; sha256: string }> {
  const pin =
    options.pinnedThumbprintSha256 === undefined
      ? undefined
      : normalizeThumbprint(options.pinnedThumbprintSha256);
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: options.host,
      port: options.port,
      servername: /^[\d.]+$|:/.test(options.host) ? undefined : options.host,
      rejectUnauthorized: pin === undefined,
      ...(options.ca ? { ca: options.ca } : {}),
      ...(options.hostOverrides ? { lookup: overrideLookup(options.hostOverrides) as never } : {}),
      timeout: options.timeoutMs ?? 30_000,
    });
    const fail = (error: unknown): void => {
      socket.destroy();
      reject(
        toSyncproxyError(error, {
          operation: `TLS probe of ${options.host}:${options.port}`,
          platform: 'vmware',
        }),
      );
    };
    socket.once('error', fail);
    socket.once('timeout', () => fail(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    socket.once('secureConnect', () => {
      const cert: PeerCertificate = socket.getPeerCertificate();
      socket.end();
      socket.destroy();
      if (pin !== undefined && cert.fingerprint256 !== pin) {
        reject(
          new SyncproxyError(
            `TLS refused: the certificate of ${options.host} has thumbprint ${cert.fingerprint256}, not the pinned ${pin}`,
            { code: 'tls', retryable: false, platform: 'vmware' },
          ),
        );
        return;
      }
      resolve({ sha1: cert.fingerprint, sha256: cert.fingerprint256 });
    });
  });
}
