import {
  type Clock,
  defineConnector,
  type NetworkRequirement,
  type RetryOptions,
  type SourceConnector,
  systemClock,
} from '@syncproxy/core';
import { ObsBucket } from './bucket.js';
import { HuaweiClient } from './client.js';
import { HuaweiCloudApi, type PollOptions } from './cloud-api.js';
import { endpointFor, HUAWEI_SERVICES, type HuaweiCloudConfig, huaweiCloudConfigSchema } from './config.js';
import { type DataPath, HuaweiCloudSession } from './session.js';
import { CbrSnapshotDataExporter, type SnapshotDataExporter } from './snapshot-export.js';

/** Kept in step with package.json by the release. */
const VERSION = '0.1.0';

/** Settings of the connector itself (not of a platform): timing, retries, the data path. */
export interface HuaweiCloudConnectorOptions {
  clock?: Clock;
  /** Retries of throttled, 5xx and network-failed calls. */
  retry?: RetryOptions;
  /** How checkpoints, jobs and exports are polled. */
  poll?: PollOptions;
  /** `auto` (default): the snapshot data export when enabled, else attach-and-hash; or one path only. */
  dataPath?: DataPath;
  /** Chunk size of the hash diff when no previous manifest sets it. Default 4 MiB. */
  chunkSizeBytes?: number;
  /** How long the fallback waits for an attached volume's device. Default 120 s. */
  locateTimeoutMs?: number;
  /** Error codes that mean "export not enabled" (the white list); the shapes are not public. */
  notEnabledCodes?: readonly string[];
  /** Another implementation of the snapshot data export (real API shapes, once known). */
  exporter?: (api: HuaweiCloudApi) => SnapshotDataExporter;
}

const PURPOSE: Record<(typeof HUAWEI_SERVICES)[number], string> = {
  iam: 'IAM (project lookup)',
  ecs: 'ECS API (inventory, attach and detach on the proxy)',
  evs: 'EVS API (volumes, volumes from backups)',
  cbr: 'CBR API (checkpoints, snapshot data export)',
  obs: 'OBS bucket (exported snapshot data, ranged GETs)',
};

/** The endpoints a proxy must reach: IAM, ECS, EVS, CBR and the OBS bucket, on 443 (or the override's port). */
export function huaweiCloudNetworkRequirements(
  config: Pick<HuaweiCloudConfig, 'project' | 'endpoints' | 'bucket'>,
): NetworkRequirement[] {
  return HUAWEI_SERVICES.map((service) => {
    const url = new URL(
      service === 'obs' && config.endpoints?.obs === undefined
        ? `https://${config.bucket}.obs.${config.project}.myhuaweicloud.com`
        : endpointFor(config, service),
    );
    const port = url.port ? Number(url.port) : url.protocol === 'http:' ? 80 : 443;
    return { host: url.hostname, port, purpose: PURPOSE[service] };
  });
}

/** A Huawei Cloud connector with its own settings (fast polls in tests, one data path only). */
export function createHuaweiCloudConnector(
  options: HuaweiCloudConnectorOptions = {},
): SourceConnector<HuaweiCloudConfig> {
  const clock = options.clock ?? systemClock;
  return defineConnector<HuaweiCloudConfig>({
    id: 'huaweicloud',
    displayName: 'Huawei Cloud (ECS + CBR, snapshot data export to OBS or attached volumes)',
    version: VERSION,
    configSchema: huaweiCloudConfigSchema,
    capabilities: {
      changeTracking: 'hash',
      consistentMultiDiskSnapshot: true,
      // Only the attach-and-hash path attaches a volume (and takes a mount slot) per open reader;
      // an export-path reader reads OBS objects and takes none. `auto` may fall back, so it may attach.
      mountsDisks: (options.dataPath ?? 'auto') !== 'export',
      quiescedSnapshots: false,
    },
    networkRequirements: huaweiCloudNetworkRequirements,
    async connect(config, context) {
      const client = new HuaweiClient({
        config,
        logger: context.logger,
        clock,
        ...(context.dispatcher ? { dispatcher: context.dispatcher } : {}),
        ...(context.httpTimeoutSec !== undefined ? { httpTimeoutSec: context.httpTimeoutSec } : {}),
        ...(context.hostOverrides ? { hostOverrides: context.hostOverrides } : {}),
        ...(options.retry ? { retry: options.retry } : {}),
      });
      const api = new HuaweiCloudApi(client, clock, options.poll);
      const exporter =
        options.exporter?.(api) ??
        new CbrSnapshotDataExporter(client, (what, check, signal) => api.poll(what, check, signal));
      return new HuaweiCloudSession({
        config,
        api,
        exporter,
        bucket: new ObsBucket(client),
        logger: context.logger,
        clock,
        dataPath: options.dataPath ?? 'auto',
        chunkSizeBytes: options.chunkSizeBytes ?? 4 * 1024 * 1024,
        ...(options.notEnabledCodes ? { notEnabledCodes: options.notEnabledCodes } : {}),
        ...(options.locateTimeoutMs !== undefined ? { locateTimeoutMs: options.locateTimeoutMs } : {}),
        ...(context.signal ? { signal: context.signal } : {}),
        ...(context.devices ? { devices: context.devices } : {}),
        ...(context.mountSlots ? { mountSlots: context.mountSlots } : {}),
      });
    },
  });
}

/** The Huawei Cloud connector with default settings: `registry.register(huaweicloud)`. */
export const huaweicloud: SourceConnector<HuaweiCloudConfig> = createHuaweiCloudConnector();
