import type { FcBackupResource } from './client.js';

/** One ranged read of a backup resource, as sent over HTTP(S). */
export interface DataRequest {
  url: string;
  headers: Record<string, string>;
}

/**
 * How a ranged read of a backup resource is spelled. The public references
 * name the resource's `hostIP`, `hostPort`, `resourceUrl` and `token` but not
 * the read request itself (UNCONFIRMED), so its shape lives here, behind one
 * function a product can replace (`createFusionComputeConnector({ dataRequest })`).
 */
export type DataRequestShape = (
  resource: FcBackupResource,
  range: { offset: number; length: number },
  options: { transMode: 'lan' | 'lanssl' },
) => DataRequest;

/**
 * The default, and what the mock serves: `GET <scheme>://<hostIP>:<hostPort><resourceUrl>`
 * with the resource's token in `X-Auth-Token` and an RFC 9110 `Range` header,
 * answered `206 Partial Content`. HTTPS for `lanssl`, HTTP for `lan`.
 */
export const defaultDataRequest: DataRequestShape = (resource, range, options) => {
  const scheme = options.transMode === 'lanssl' ? 'https' : 'http';
  const host = resource.hostIP.includes(':') ? `[${resource.hostIP}]` : resource.hostIP;
  const path = resource.resourceUrl.startsWith('/') ? resource.resourceUrl : `/${resource.resourceUrl}`;
  return {
    url: `${scheme}://${host}:${resource.hostPort}${path}`,
    headers: {
      'X-Auth-Token': resource.token,
      range: `bytes=${range.offset}-${range.offset + range.length - 1}`,
    },
  };
};
