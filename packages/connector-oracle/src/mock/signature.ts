import { createHash, type KeyObject, verify } from 'node:crypto';
import type { MockRequest } from '@syncproxy/testkit/mock';

/** An API key the mock knows: `keyId` is `<tenancy>/<user>/<fingerprint>`, as oci-common builds it. */
export interface MockApiKey {
  tenancyId: string;
  userId: string;
  fingerprint: string;
  publicKey: KeyObject;
}

/** Why a request is refused with 401 NotAuthenticated (the real service says less; tests read it). */
export type SignatureProblem = string;

/** OCI's limit on the difference between the request's date and the service clock. */
export const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;

/**
 * The headers OCI requires in the signature (docs: Concepts/signingrequests.htm;
 * oci-common `DefaultRequestSigner`): GET, DELETE and HEAD sign the date (`date`
 * or `x-date`), `(request-target)` and `host`; POST, PUT and PATCH also sign
 * `content-length`, `content-type` and `x-content-sha256`.
 */
export function requiredHeaders(method: string): string[] {
  const base = ['(request-target)', 'host'];
  return ['POST', 'PUT', 'PATCH'].includes(method.toUpperCase())
    ? [...base, 'content-length', 'content-type', 'x-content-sha256']
    : base;
}

function header(request: MockRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Parses `Signature version="1",keyId="..",algorithm="rsa-sha256",headers="..",signature=".."`. */
export function parseAuthorization(value: string): Record<string, string> | undefined {
  if (!value.startsWith('Signature ')) return undefined;
  const out: Record<string, string> = {};
  for (const match of value.slice('Signature '.length).matchAll(/([a-zA-Z]+)="([^"]*)"/g)) {
    out[match[1]!] = match[2]!;
  }
  return out;
}

/**
 * Verifies a request's draft-cavage-http-signatures-08 signature as OCI does:
 * the keyId names a known key, the signed header list holds every header the
 * method requires, the body matches `x-content-sha256` and `content-length`,
 * the date is within 5 minutes, and the RSA-SHA256 signature over the signing
 * string verifies with the user's public key. Returns the problem, or undefined.
 */
export function verifySignature(
  request: MockRequest,
  keys: readonly MockApiKey[],
  nowMs: number,
): SignatureProblem | undefined {
  const authorization = header(request, 'authorization');
  if (!authorization) return 'no Authorization header';
  const fields = parseAuthorization(authorization);
  if (!fields) return 'the Authorization scheme is not Signature';
  if (fields.version !== '1') return 'signature version is not 1';
  if (fields.algorithm !== 'rsa-sha256') return 'algorithm is not rsa-sha256';
  const key = keys.find((k) => `${k.tenancyId}/${k.userId}/${k.fingerprint}` === fields.keyId);
  if (!key) return `unknown keyId ${fields.keyId}`;
  const signed = (fields.headers ?? 'date').toLowerCase().split(/\s+/).filter(Boolean);
  const dateHeader = signed.includes('x-date') ? 'x-date' : signed.includes('date') ? 'date' : undefined;
  if (!dateHeader) return 'neither date nor x-date is signed';
  for (const required of requiredHeaders(request.method)) {
    if (!signed.includes(required)) return `header ${required} is not signed`;
  }
  const date = Date.parse(header(request, dateHeader) ?? '');
  if (Number.isNaN(date)) return `${dateHeader} is missing or not a date`;
  if (Math.abs(nowMs - date) > MAX_CLOCK_SKEW_MS) return `${dateHeader} is more than 5 minutes off`;
  if (signed.includes('x-content-sha256')) {
    const sha = createHash('sha256').update(request.body).digest('base64');
    if (header(request, 'x-content-sha256') !== sha) return 'x-content-sha256 does not match the body';
  }
  if (
    signed.includes('content-length') &&
    Number(header(request, 'content-length')) !== request.body.length
  ) {
    return 'content-length does not match the body';
  }
  const lines: string[] = [];
  for (const name of signed) {
    if (name === '(request-target)') {
      lines.push(
        `(request-target): ${request.method.toLowerCase()} ${request.url.pathname}${request.url.search}`,
      );
      continue;
    }
    const value = header(request, name);
    if (value === undefined) return `signed header ${name} is missing`;
    lines.push(`${name}: ${value}`);
  }
  const signature = Buffer.from(fields.signature ?? '', 'base64');
  const ok = verify('sha256', Buffer.from(lines.join('\n')), key.publicKey, signature);
  return ok ? undefined : 'the signature does not verify with the key of keyId';
}
