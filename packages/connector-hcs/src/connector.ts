import {
  type Clock,
  createDispatcher,
  defineConnector,
  type NetworkRequirement,
  type SourceConnector,
  SyncproxyError,
  systemClock,
} from '@syncproxy/core';
import { type HcsConfig, hcsConfigSchema } from './config.js';
import { DoradoClient } from './dorado-client.js';
import { HcsClient } from './hcs-client.js';
import { HcsSession } from './session.js';

/** Kept in step with package.json by the release. */
const VERSION = '0.1.0';

/** Settings of the connector itself (not of a platform). */
export interface HcsConnectorOptions {
  clock?: Clock;
  /** How long a mapped snapshot may take to appear on the proxy. Default 120 s. */
  locateTimeoutMs?: number;
  /** The hash-diff chunk size when no previous manifest says it. Default 4 MiB. */
  chunkSizeBytes?: number;
  /**
   * TEST-ONLY: bytes per EVS GB. HCS sizes volumes in GiB (the default); only
   * a test against the mock started with the same `gbBytes` sets another. A
   * wrong value cannot give a wrong image: a snapshot whose LUN holds another
   * size than the volume listed is refused (`integrity`).
   */
  gbBytes?: number;
}

function portOf(url: URL, fallback: number): number {
  return url.port ? Number(url.port) : url.protocol === 'http:' ? 80 : fallback;
}

/** The API gateway (IAM, ECS, EVS) on 443, and each Dorado's management port (8088). */
export function hcsNetworkRequirements(config: Pick<HcsConfig, 'iamUrl' | 'storages'>): NetworkRequirement[] {
  const iam = new URL(config.iamUrl);
  return [
    { host: iam.hostname, port: portOf(iam, 443), purpose: 'HCS API gateway (IAM, ECS, EVS)' },
    ...config.storages.map((s) => {
      const url = new URL(s.url);
      return {
        host: url.hostname,
        port: portOf(url, 8088),
        purpose: 'OceanStor Dorado DeviceManager REST (LUNs, snapshots, mapping)',
      };
    }),
  ];
}

/** An HCS connector with its own settings. */
export function createHcsConnector(options: HcsConnectorOptions = {}): SourceConnector<HcsConfig> {
  const clock = options.clock ?? systemClock;
  const gbBytes = options.gbBytes ?? 1024 ** 3;
  if (!Number.isSafeInteger(gbBytes) || gbBytes <= 0 || gbBytes % 512 !== 0) {
    throw new SyncproxyError(`gbBytes must be a positive multiple of 512 (got ${gbBytes})`, {
      code: 'config',
      retryable: false,
      details: { field: 'gbBytes' },
    });
  }
  return defineConnector<HcsConfig>({
    id: 'hcs',
    displayName: 'Huawei Cloud Stack 8.0.2 (OceanStor Dorado snapshots)',
    version: VERSION,
    configSchema: hcsConfigSchema,
    capabilities: {
      // Dorado names no changed blocks between snapshots: incrementals are hash diffs.
      changeTracking: 'hash',
      // The LUN snapshots of a server are activated in one call per storage.
      consistentMultiDiskSnapshot: true,
      mountsDisks: true,
      quiescedSnapshots: false,
    },
    networkRequirements: hcsNetworkRequirements,
    async connect(config, context) {
      const dispatcher =
        context.dispatcher ??
        createDispatcher({
          ...(context.httpTimeoutSec !== undefined ? { httpTimeoutSec: context.httpTimeoutSec } : {}),
          ...(context.hostOverrides ? { hostOverrides: context.hostOverrides } : {}),
        });
      const ownsDispatcher = context.dispatcher === undefined;
      const common = {
        dispatcher,
        redactor: context.redactor,
        logger: context.logger,
        ...(context.httpTimeoutSec !== undefined ? { httpTimeoutSec: context.httpTimeoutSec } : {}),
        ...(context.signal ? { signal: context.signal } : {}),
      };
      return new HcsSession({
        config,
        hcs: new HcsClient({ config, now: () => clock.now(), ...common }),
        // No abort signal for the Dorado: unmapping, deleting and logging out must run after an abort too.
        storages: config.storages.map((storage) => {
          const { signal: _signal, ...withoutSignal } = common;
          return new DoradoClient({ storage, ...withoutSignal });
        }),
        logger: context.logger,
        clock,
        gbBytes,
        ...(context.mountSlots ? { mountSlots: context.mountSlots } : {}),
        ...(context.devices ? { devices: context.devices } : {}),
        ...(options.locateTimeoutMs !== undefined ? { locateTimeoutMs: options.locateTimeoutMs } : {}),
        ...(options.chunkSizeBytes ? { chunkSizeBytes: options.chunkSizeBytes } : {}),
        ...(context.signal ? { signal: context.signal } : {}),
        ...(ownsDispatcher ? { onClose: () => dispatcher.close() } : {}),
      });
    },
  });
}

/** The HCS connector with default settings: `registry.register(hcs)`. */
export const hcs: SourceConnector<HcsConfig> = createHcsConnector();
