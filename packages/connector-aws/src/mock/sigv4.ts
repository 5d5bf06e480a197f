import { createHash, createHmac, type Hash, type Hmac, timingSafeEqual } from 'node:crypto';
import type { MockRequest } from '@syncproxy/testkit/mock';
import { loadSigner } from './peers.js';

export interface MockCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** Why a request's signature was refused, in the words each service answers with. */
export type SignatureProblem =
  | { kind: 'missing'; message: string }
  | { kind: 'unknown-key'; message: string }
  | { kind: 'bad-signature'; message: string };

const AUTH =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/;

/** The `sha256` constructor SignatureV4 wants, on node:crypto. */
class Sha256 {
  readonly #secret: Uint8Array | string | undefined;
  #hash: Hash | Hmac;

  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#secret =
      secret === undefined || typeof secret === 'string'
        ? secret
        : ArrayBuffer.isView(secret)
          ? new Uint8Array(secret.buffer, secret.byteOffset, secret.byteLength)
          : new Uint8Array(secret);
    this.#hash = this.#fresh();
  }

  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.#hash.update(
      typeof data === 'string'
        ? data
        : ArrayBuffer.isView(data)
          ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
          : new Uint8Array(data),
    );
  }

  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.#hash.digest());
  }

  reset(): void {
    this.#hash = this.#fresh();
  }

  #fresh(): Hash | Hmac {
    return this.#secret === undefined ? createHash('sha256') : createHmac('sha256', this.#secret);
  }
}

/**
 * Checks a request's AWS Signature Version 4 the way AWS does: by signing
 * the same canonical request again with the secret the server knows for the
 * access key id, and comparing. A wrong secret therefore fails exactly as on
 * AWS, whatever the client library.
 */
export async function verifySignature(
  request: MockRequest,
  options: { credentials: MockCredentials; region: string; service: 'ec2' | 'ebs' },
): Promise<SignatureProblem | undefined> {
  const header = single(request.headers.authorization);
  if (header === undefined) {
    return { kind: 'missing', message: 'Request is missing Authentication Token' };
  }
  const match = AUTH.exec(header);
  if (match === null) {
    return {
      kind: 'bad-signature',
      message: 'Authorization header requires Credential, SignedHeaders and Signature parameters.',
    };
  }
  const [, accessKeyId, day, region, service, signedList, signature] = match as unknown as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (accessKeyId !== options.credentials.accessKeyId) {
    return { kind: 'unknown-key', message: 'The security token included in the request is invalid.' };
  }
  if (region !== options.region || service !== options.service) {
    return {
      kind: 'bad-signature',
      message: `Credential should be scoped to a valid region and service ('${options.region}', '${options.service}'), not ('${region}', '${service}').`,
    };
  }
  const amzDate = single(request.headers['x-amz-date']);
  if (amzDate === undefined || !amzDate.startsWith(day ?? '')) {
    return {
      kind: 'bad-signature',
      message: 'Date in Credential scope does not match the X-Amz-Date header.',
    };
  }
  const payloadHash = single(request.headers['x-amz-content-sha256']);
  const bodyHash = createHash('sha256').update(request.body).digest('hex');
  if (payloadHash !== undefined && payloadHash !== 'UNSIGNED-PAYLOAD' && payloadHash !== bodyHash) {
    return {
      kind: 'bad-signature',
      message: 'The provided x-amz-content-sha256 header does not match what was computed.',
    };
  }
  const signedNames = (signedList ?? '').split(';');
  const headers: Record<string, string> = {};
  for (const name of signedNames) {
    const value = request.headers[name];
    if (value === undefined) {
      return { kind: 'bad-signature', message: `Signed header ${name} is missing from the request.` };
    }
    headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const query: Record<string, string | string[]> = {};
  for (const key of new Set(request.query.keys())) {
    const values = request.query.getAll(key);
    query[key] = values.length === 1 ? (values[0] as string) : values;
  }
  const signer = await signerFor(options);
  const host = headers.host ?? '127.0.0.1';
  const signed = await signer.sign(
    {
      method: request.method,
      protocol: 'http:',
      hostname: host.replace(/:\d+$/, ''),
      path: request.path,
      query,
      headers,
      body: request.body.length > 0 ? request.body : undefined,
    },
    { signingDate: parseAmzDate(amzDate), signableHeaders: new Set(signedNames) },
  );
  const expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization ?? ''))?.[1] ?? '';
  const given = Buffer.from(signature ?? '', 'hex');
  const wanted = Buffer.from(expected, 'hex');
  if (given.length !== wanted.length || !timingSafeEqual(given, wanted)) {
    return {
      kind: 'bad-signature',
      message:
        'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
    };
  }
  return undefined;
}

type Signer = InstanceType<Awaited<ReturnType<typeof loadSigner>>['SignatureV4']>;

/** One signer per credentials, region and service: it holds no per-request state, and making one costs. */
const signers = new WeakMap<MockCredentials, Map<string, Promise<Signer>>>();

function signerFor(options: {
  credentials: MockCredentials;
  region: string;
  service: string;
}): Promise<Signer> {
  let byScope = signers.get(options.credentials);
  if (byScope === undefined) {
    byScope = new Map();
    signers.set(options.credentials, byScope);
  }
  const scope = `${options.region}/${options.service}`;
  let signer = byScope.get(scope);
  if (signer === undefined) {
    signer = loadSigner().then(
      ({ SignatureV4 }) =>
        new SignatureV4({
          credentials: options.credentials,
          region: options.region,
          service: options.service,
          sha256: Sha256,
          uriEscapePath: true,
          applyChecksum: false,
        }),
    );
    byScope.set(scope, signer);
  }
  return signer;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function parseAmzDate(value: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (m === null) return new Date(Number.NaN);
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}
