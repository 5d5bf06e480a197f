import {
  type Clock,
  createDispatcher,
  defineConnector,
  type Host,
  type NetworkRequirement,
  type SourceConnector,
  SyncproxyError,
  systemClock,
} from '@syncproxy/core';

import { FusionComputeClient } from './client.js';
import { type FusionComputeConfig, fusionComputeConfigSchema, vrmBaseUrl, vrmEndpoint } from './config.js';
import { type DataRequestShape, defaultDataRequest } from './data-request.js';
import type { FcErrorCodes } from './fc-api-error.js';
import { HostLimits, MAX_BACKUP_CONNECTIONS_PER_HOST } from './host-limits.js';
import { FusionComputeSession } from './session.js';

/** Kept in step with package.json by the release. */
const VERSION = '0.1.0';
const GIB = 1024 ** 3;

/** Settings of the connector itself (not of a platform): timing, and the points the public API docs leave open. */
export interface FusionComputeConnectorOptions {
  /** Time source for task polls and backup-resource extensions. Default: the system clock. */
  clock?: Clock;
  /** Wait between task polls, ms. Default 1000. */
  taskPollMs?: number;
  /** `limit` of VM and volume list pages. Default 100. */
  pageSize?: number;
  /** How a ranged read of a backup resource is spelled (UNCONFIRMED). Default {@link defaultDataRequest}. */
  dataRequest?: DataRequestShape;
  /** FusionCompute errorCodes with a special meaning. Default: the mock's ({@link DEFAULT_ERROR_CODES}). */
  errorCodes?: FcErrorCodes;
  /** The proxy's address as the compute nodes see it. Default: the local address of the route to the VRM. */
  proxyIp?: string;
  /**
   * The per-host limits, shared by every session of this connector value (the
   * product's proxies in one process). Default: 8 connections, 8 volumes.
   */
  hostLimits?: HostLimits;
  /**
   * TEST-ONLY: bytes per `quantityGB`. FusionCompute sizes volumes in GiB (the
   * default); only a test against the mock started with the same `gbBytes`
   * sets another. With another value every getcbt listing also checks that
   * the volume ends where the size says (`integrity` otherwise), so a wrong
   * value cannot give a wrong image.
   */
  gbBytes?: number;
}

/**
 * The VRM on 7443 (or the URL's port). The compute nodes (CNA) on 21064 are
 * needed too, but which nodes and which data port only the API knows: after
 * login, `prechecks()` lists them (N1) and `session.dataEndpoints()` returns them.
 */
export function fusionComputeNetworkRequirements(
  config: Pick<FusionComputeConfig, 'url'>,
): NetworkRequirement[] {
  const { host, port } = vrmEndpoint(config);
  return [
    {
      host,
      port,
      purpose: 'FusionCompute VRM REST API (login, inventory, snapshots, CBT, backup resources)',
    },
  ];
}

/**
 * The `SyncTask.platformHost` of a disk sync of `host`: its compute node, and
 * the backup connections the task will hold there (at most 8, the host's
 * limit). The scheduler's `assign` keeps the sum per node within
 * `capabilities.perHostLimits.maxConnections` across all proxies.
 */
export function platformHostOf(
  host: Pick<Host, 'id' | 'attributes'>,
  connections: number = MAX_BACKUP_CONNECTIONS_PER_HOST,
): { id: string; connections: number } {
  const id = host.attributes?.hostUrn;
  return {
    id: typeof id === 'string' ? id : `unknown-host-of:${host.id}`,
    connections: Math.max(1, Math.min(MAX_BACKUP_CONNECTIONS_PER_HOST, Math.floor(connections))),
  };
}

/** A FusionCompute connector with its own settings (a manual clock, faster task polls in tests). */
export function createFusionComputeConnector(
  options: FusionComputeConnectorOptions = {},
): SourceConnector<FusionComputeConfig> {
  const clock = options.clock ?? systemClock;
  const hostLimits = options.hostLimits ?? new HostLimits();
  const gbBytes = options.gbBytes ?? GIB;
  if (!Number.isSafeInteger(gbBytes) || gbBytes <= 0 || gbBytes % 512 !== 0) {
    throw new SyncproxyError(`gbBytes must be a positive multiple of 512 (got ${gbBytes})`, {
      code: 'config',
      retryable: false,
      details: { field: 'gbBytes' },
    });
  }
  return defineConnector<FusionComputeConfig>({
    id: 'fusioncompute',
    displayName: 'Huawei FusionCompute (VRM REST, CBT backup)',
    version: VERSION,
    configSchema: fusionComputeConfigSchema,
    capabilities: {
      changeTracking: 'native',
      consistentMultiDiskSnapshot: true,
      mountsDisks: false,
      quiescedSnapshots: false,
      perHostLimits: { maxConnections: MAX_BACKUP_CONNECTIONS_PER_HOST },
    },
    networkRequirements: fusionComputeNetworkRequirements,
    async connect(config, context) {
      const hostOverrides = { ...context.hostOverrides, ...config.hostOverrides };
      const ownsDispatcher =
        context.dispatcher === undefined || config.thumbprint !== undefined || config.ca !== undefined;
      const dispatcher = ownsDispatcher
        ? createDispatcher({
            ...(context.httpTimeoutSec !== undefined ? { httpTimeoutSec: context.httpTimeoutSec } : {}),
            ...(config.thumbprint ? { pinnedThumbprintSha256: config.thumbprint } : {}),
            ...(config.ca ? { ca: config.ca } : {}),
            hostOverrides,
          })
        : context.dispatcher!;
      const closeDispatcher = async (): Promise<void> => {
        if (ownsDispatcher) await dispatcher.close();
      };
      const client = new FusionComputeClient({
        baseUrl: vrmBaseUrl(config),
        user: config.user,
        password: config.password,
        userType: config.userType,
        advanced: config.advanced,
        dispatcher,
        logger: context.logger,
        clock,
        ...(options.taskPollMs !== undefined ? { taskPollMs: options.taskPollMs } : {}),
        ...(options.pageSize !== undefined ? { pageSize: options.pageSize } : {}),
        ...(options.errorCodes ? { errorCodes: options.errorCodes } : {}),
      });
      try {
        await client.connect(context.signal);
      } catch (error) {
        await closeDispatcher();
        throw error;
      }
      return new FusionComputeSession({
        config,
        client,
        hostLimits,
        gbBytes,
        dataRequest: options.dataRequest ?? defaultDataRequest,
        logger: context.logger,
        clock,
        hostOverrides,
        ...(context.httpTimeoutSec !== undefined ? { httpTimeoutSec: context.httpTimeoutSec } : {}),
        ...(options.proxyIp ? { proxyIp: options.proxyIp } : {}),
        ...(context.signal ? { signal: context.signal } : {}),
        onClose: closeDispatcher,
      });
    },
  });
}

/** The FusionCompute connector with default settings: `registry.register(fusionCompute)`. */
export const fusionCompute: SourceConnector<FusionComputeConfig> = createFusionComputeConnector();
