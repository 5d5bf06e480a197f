import { createHmac } from 'node:crypto';

export interface ObsSignatureInput {
  method: string;
  bucket: string;
  /** The object key, unencoded; empty for bucket operations. */
  key?: string;
  /** Sub-resources that take part in the signature (`delete`, `location`...), already sorted by the caller. */
  subResources?: string[];
  contentMd5?: string;
  contentType?: string;
  /** RFC 1123 date sent in the `Date` header. */
  date: string;
  /** `x-obs-*` headers sent with the request. */
  obsHeaders?: Record<string, string>;
}

/**
 * OBS header signature (V2, "OBS AK:signature"): Base64(HMAC-SHA1(SK,
 * VERB \n Content-MD5 \n Content-Type \n Date \n CanonicalizedHeaders
 * CanonicalizedResource)), the resource being `/bucket/key` (OBS API reference,
 * "Authentication of Signature in a Header", obs_04_0010).
 */
export function obsStringToSign(input: ObsSignatureInput): string {
  const headers = Object.entries(input.obsHeaders ?? {})
    .map(([name, value]) => [name.toLowerCase(), value.trim()] as const)
    .filter(([name]) => name.startsWith('x-obs-'))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => `${name}:${value}\n`)
    .join('');
  const resource = `/${input.bucket}/${input.key ?? ''}${
    input.subResources && input.subResources.length > 0 ? `?${input.subResources.join('&')}` : ''
  }`;
  return `${input.method}\n${input.contentMd5 ?? ''}\n${input.contentType ?? ''}\n${input.date}\n${headers}${resource}`;
}

/** The `Authorization` header value of an OBS request. */
export function obsAuthorization(
  input: ObsSignatureInput,
  accessKeyId: string,
  secretAccessKey: string,
): string {
  const signature = createHmac('sha1', secretAccessKey)
    .update(obsStringToSign(input), 'utf8')
    .digest('base64');
  return `OBS ${accessKeyId}:${signature}`;
}
