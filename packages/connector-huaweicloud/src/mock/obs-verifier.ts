import { createHmac, timingSafeEqual } from 'node:crypto';
import type { MockRequest, MockResponse } from '@syncproxy/testkit/mock';
import type { MockCredentials } from './aksk-verifier.js';

/** OBS refuses a `Date` more than 15 minutes from its clock (403 RequestTimeTooSkewed). */
const MAX_SKEW_MS = 15 * 60_000;

/**
 * Checks an OBS header signature (`Authorization: OBS AK:Base64(HMAC-SHA1(SK,
 * StringToSign))`, obs_04_0010): VERB, Content-MD5, Content-Type, Date (empty
 * when `x-obs-date` is sent), the `x-obs-*` headers sorted, and `/bucket/key`.
 */
export function verifyObsSignature(
  request: MockRequest,
  bucket: string,
  key: string | undefined,
  credentials: MockCredentials,
  now: number,
): MockResponse | undefined {
  const authorization = String(request.headers.authorization ?? '');
  const match = /^OBS ([^:]+):(.+)$/.exec(authorization);
  if (!match) return obsXmlError(403, 'AccessDenied', 'Access Denied');
  if (match[1] !== credentials.accessKeyId) {
    return obsXmlError(
      403,
      'InvalidAccessKeyId',
      'The AWS Access Key Id you provided does not exist in our records.',
    );
  }
  const obsDate = header(request, 'x-obs-date');
  const date = obsDate === undefined ? (header(request, 'date') ?? '') : '';
  const when = Date.parse(obsDate ?? date);
  if (Number.isNaN(when) || Math.abs(now - when) > MAX_SKEW_MS) {
    return obsXmlError(
      403,
      'RequestTimeTooSkewed',
      'The difference between the request time and the server time is too large.',
    );
  }
  const obsHeaders = Object.keys(request.headers)
    .filter((name) => name.startsWith('x-obs-'))
    .sort()
    .map((name) => `${name}:${(header(request, name) ?? '').trim()}\n`)
    .join('');
  const toSign = `${request.method}\n${header(request, 'content-md5') ?? ''}\n${header(request, 'content-type') ?? ''}\n${date}\n${obsHeaders}/${bucket}/${key ?? ''}`;
  const expected = createHmac('sha1', credentials.secretAccessKey).update(toSign, 'utf8').digest();
  const given = Buffer.from(match[2]!, 'base64');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return obsXmlError(
      403,
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
    );
  }
  return undefined;
}

let requestCounter = 0;

/** OBS's XML error body, with `x-obs-request-id`. */
export function obsXmlError(status: number, code: string, message: string): MockResponse {
  const requestId = `obs-${(++requestCounter).toString(16).padStart(12, '0')}`;
  return {
    status,
    headers: { 'content-type': 'application/xml', 'x-obs-request-id': requestId },
    body: `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>${requestId}</RequestId></Error>`,
  };
}

function header(request: MockRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
