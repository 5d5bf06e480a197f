import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { MockRequest, MockResponse } from '@syncproxy/testkit/mock';

/** The AK/SK pair the mock accepts. */
export interface MockCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** How far `X-Sdk-Date` may be from the mock's clock (the API gateway allows 15 minutes). */
const MAX_SKEW_MS = 15 * 60_000;

/** RFC 3986 unreserved characters stay; everything else is %XX, upper case (the SDK's `urlEncode`). */
function encode(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-_.~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * Checks an `SDK-HMAC-SHA256` signature as the API gateway does, written from
 * the published algorithm (not from the SDK's code): canonical URI with each
 * segment encoded and a trailing `/`, sorted query, the signed headers as
 * `name:value\n`, hex SHA-256 of the body (or `X-Sdk-Content-Sha256`),
 * then hex HMAC-SHA256 with the SK over `SDK-HMAC-SHA256\n<date>\n<hash>`.
 * Returns the gateway's 401 answer, or undefined when the signature holds.
 */
export function verifySdkSignature(
  request: MockRequest,
  credentials: MockCredentials,
  now: number,
): MockResponse | undefined {
  const authorization = String(request.headers.authorization ?? '');
  const match =
    /^SDK-HMAC-SHA256\s+Access=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]+)$/.exec(
      authorization,
    );
  if (!match)
    return denied('APIGW.0301', 'Incorrect IAM authentication information: Authorization format incorrect');
  const [, access, signedHeaders, signature] = match as unknown as [string, string, string, string];
  if (access !== credentials.accessKeyId) {
    return denied('APIGW.0301', 'Incorrect IAM authentication information: ak not exist');
  }
  const date = String(request.headers['x-sdk-date'] ?? '');
  const dateMatch = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(date);
  if (!dateMatch)
    return denied('APIGW.0301', 'Incorrect IAM authentication information: x-sdk-date format incorrect');
  const [, y, mo, d, h, mi, s] = dateMatch.map(Number) as number[];
  const signedAt = Date.UTC(y!, mo! - 1, d!, h!, mi!, s!);
  if (Math.abs(now - signedAt) > MAX_SKEW_MS) {
    return denied('APIGW.0301', 'Incorrect IAM authentication information: x-sdk-date expired');
  }
  const names = signedHeaders.split(';');
  if (!names.includes('x-sdk-date') || !names.includes('host')) {
    return denied(
      'APIGW.0301',
      'Incorrect IAM authentication information: host and x-sdk-date must be signed',
    );
  }
  const canonicalHeaders = names
    .map((name) => {
      const value = request.headers[name];
      return `${name}:${Array.isArray(value) ? value.join(',') : (value ?? '')}\n`;
    })
    .join('');
  const segments = request.url.pathname.split('/').map((segment) => encode(decodeURIComponent(segment)));
  let uri = segments.join('/');
  if (!uri.endsWith('/')) uri += '/';
  const pairs: Array<[string, string]> = [...request.query.entries()];
  pairs.sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  const query = pairs.map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&');
  const contentHash =
    typeof request.headers['x-sdk-content-sha256'] === 'string'
      ? request.headers['x-sdk-content-sha256']
      : createHash('sha256').update(request.body).digest('hex');
  const canonical = [request.method, uri, query, canonicalHeaders, signedHeaders, contentHash].join('\n');
  const toSign = `SDK-HMAC-SHA256\n${date}\n${createHash('sha256').update(canonical).digest('hex')}`;
  const expected = createHmac('sha256', credentials.secretAccessKey).update(toSign).digest();
  const given = Buffer.from(signature, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return denied('APIGW.0301', 'Incorrect IAM authentication information: verify aksk signature fail');
  }
  return undefined;
}

let requestCounter = 0;

/** The API gateway's error body: `{error_code, error_msg, request_id}`. */
export function gatewayError(status: number, code: string, message: string): MockResponse {
  const requestId = `req-${(++requestCounter).toString(16).padStart(8, '0')}`;
  return {
    status,
    headers: { 'content-type': 'application/json', 'x-request-id': requestId },
    body: { error_code: code, error_msg: message, request_id: requestId },
  };
}

function denied(code: string, message: string): MockResponse {
  return gatewayError(401, code, message);
}
