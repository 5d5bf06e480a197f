import { AKSKSigner } from '@huaweicloud/huaweicloud-sdk-core/auth/AKSKSigner.js';

export interface SignableRequest {
  method: string;
  /** Absolute URL without the query string. */
  url: string;
  query?: Record<string, string | string[]>;
  /** Headers sent with the request; every one of them is signed, as the official SDK does. */
  headers: Record<string, string>;
  /** The JSON body, serialised by `JSON.stringify` (the SDK hashes exactly that). */
  body?: unknown;
}

export interface AccessKey {
  accessKeyId: string;
  secretAccessKey: string;
}

/**
 * Signs an API request with SDK-HMAC-SHA256 through the official SDK's
 * signer (`@huaweicloud/huaweicloud-sdk-core`), so the canonical request
 * (trailing `/` on the URI, sorted query, every header signed) is the
 * platform's and not a copy of it. Returns the headers to send: the given
 * ones plus `host`, `X-Sdk-Date` and `Authorization`.
 */
export function signRequest(request: SignableRequest, key: AccessKey): Record<string, string> {
  const credential = {
    getAk: () => key.accessKeyId,
    getSk: () => key.secretAccessKey,
  };
  const signed = AKSKSigner.sign(
    {
      endpoint: request.url,
      method: request.method,
      headers: { ...request.headers },
      queryParams: request.query ?? {},
      ...(request.body === undefined ? {} : { data: request.body }),
    } as unknown as Parameters<typeof AKSKSigner.sign>[0],
    credential as unknown as Parameters<typeof AKSKSigner.sign>[1],
  ) as Record<string, string>;
  return signed;
}
