import type { MockRequest, MockResponse, RouteTable } from '@syncproxy/testkit/mock';
import type { MockCna, MockFcState } from './state.js';
import { fcError } from './vrm-api.js';

const RANGE = /^bytes=(\d+)-(\d+)$/;

/**
 * The backup data service of one compute node (CNA; 21064 on the platform):
 * `GET <resourceUrl>` with the resource's token in `X-Auth-Token` and a
 * `Range`, answered `206`. The request shape is UNCONFIRMED (see
 * `defaultDataRequest`). Each read in flight holds one of the node's 8 backup
 * connections; a 9th is refused, as are an expired or unknown token and a
 * resource whose VM was shut down.
 */
export function dataRoutes(cna: () => MockCna): RouteTable<MockFcState> {
  return {
    'GET /backup/:id/data': async (request: MockRequest, state: MockFcState): Promise<MockResponse> => {
      const host = cna();
      const resource = state.backupResources.get(request.params.id!);
      if (resource === undefined || resource.hostId !== host.id)
        return fcError(404, 'notFound', 'backup resource');
      const tokenHeader = request.headers['x-auth-token'];
      const token = Array.isArray(tokenHeader) ? tokenHeader[0] : tokenHeader;
      if (state.expireTokensAfter !== undefined) {
        if (state.expireTokensAfter <= 0) {
          for (const r of state.backupResources.values()) r.delaySec = 0;
          state.expireTokensAfter = undefined;
          state.count('backup tokens expired');
        } else state.expireTokensAfter--;
      }
      if (token !== resource.token || resource.createdAt + resource.delaySec * 1000 <= state.now())
        return fcError(401, 'tokenExpired');
      if (resource.status === 'failed') return fcError(409, resource.reason ?? 'vmShutDown');
      const rangeHeader = request.headers.range;
      const match = RANGE.exec(String(Array.isArray(rangeHeader) ? rangeHeader[0] : (rangeHeader ?? '')));
      const size = resource.view.sizeBytes;
      const start = match ? Number(match[1]) : Number.NaN;
      const end = match ? Number(match[2]) : Number.NaN;
      if (!(start <= end) || end >= size)
        return { status: 416, headers: { 'content-range': `bytes */${size}` }, body: { error: 'bad range' } };
      // Counted before the limit is checked: a client that opens a 9th connection shows in the peak.
      host.openConnections++;
      host.peakConnections = Math.max(host.peakConnections, host.openConnections);
      if (host.openConnections > state.options.maxConnectionsPerHost) {
        host.openConnections--;
        host.refusedConnections++;
        return fcError(
          503,
          'backupLimit',
          `host ${host.name} serves ${state.options.maxConnectionsPerHost} backup connections already`,
        );
      }
      try {
        if (state.options.readLatencyMs > 0)
          await new Promise((resolve) => setTimeout(resolve, state.options.readLatencyMs));
        host.reads++;
        return {
          status: 206,
          headers: { 'content-range': `bytes ${start}-${end}/${size}` },
          body: resource.view.read(start, end - start + 1),
        };
      } finally {
        host.openConnections--;
      }
    },
  };
}
