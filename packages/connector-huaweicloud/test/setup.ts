import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HuaweiCloudConnectorOptions } from '@syncproxy/connector-huaweicloud';
import { type MockHuaweiCloud, startMockHuaweiCloud } from '@syncproxy/connector-huaweicloud/mock';
import {
  type ConnectorSession,
  FileSink,
  type Host,
  type Logger,
  type SnapshotRef,
  transferDisk,
} from '@syncproxy/core';
import { seededBytes } from '@syncproxy/testkit/mock';
import { fastConnector } from './connector.js';

export interface Rig {
  cloud: MockHuaweiCloud;
  session: ConnectorSession;
  host: Host;
  snapshot: SnapshotRef;
  logs: string[];
  dir: string;
  /** openReader + transferDisk into a file, closing the reader whatever happens. */
  sync(options?: { base?: SnapshotRef; sinkFails?: boolean }): Promise<void>;
  close(): Promise<void>;
}

/** A mock with one 1 GB ECS holding a little data, a session on it, and a checkpoint taken. */
export async function startRig(
  options: { exportEnabled: boolean; connector?: HuaweiCloudConnectorOptions } = { exportEnabled: true },
): Promise<Rig> {
  const cloud = await startMockHuaweiCloud({
    exportEnabled: options.exportEnabled,
    exportObjectBytes: 1024 * 1024,
  });
  const { volumes } = cloud.addServer({ name: 'web-1', volumesGb: [1] });
  volumes[0]!.disk.write(0, seededBytes(7, 3 * 1024 * 1024));
  volumes[0]!.disk.write(700 * 1024 * 1024, seededBytes(8, 1024 * 1024));
  const logs: string[] = [];
  const logger: Logger = {
    debug: (...args: unknown[]) => {
      logs.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
    },
    info: (...args: unknown[]) => {
      logs.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
    },
    warn: (...args: unknown[]) => {
      logs.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
    },
    error: (...args: unknown[]) => {
      logs.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
    },
  };
  const session = await fastConnector(options.connector).connect(cloud.config(), {
    logger,
    devices: { byIdDir: cloud.byIdDir },
  });
  const host = (await session.listHosts())[0]!;
  const snapshot = await session.createSnapshot(host);
  const dir = await mkdtemp(join(tmpdir(), 'syncproxy-hwc-test-'));
  let n = 0;
  return {
    cloud,
    session,
    host,
    snapshot,
    logs,
    dir,
    async sync(syncOptions = {}) {
      const reader = await session.openReader(host.disks[0]!, {
        snapshot,
        ...(syncOptions.base ? { base: syncOptions.base } : {}),
      });
      const sink = new FileSink(join(dir, `image-${n++}.raw`));
      if (syncOptions.sinkFails) {
        sink.write = async () => {
          throw new Error('target disk full');
        };
      }
      try {
        await transferDisk({ reader, sink, checkpoint: false, manifest: false, retry: { attempts: 1 } });
      } finally {
        await sink.close().catch(() => {});
        await reader.close();
      }
    },
    async close() {
      await session.close();
      await cloud.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** What a failed read may not leave behind. */
export function leftovers(cloud: MockHuaweiCloud): { objects: number; volumes: number; attachments: number } {
  return {
    objects: cloud.state.objectCount(),
    volumes: cloud.state.createdVolumes().length,
    attachments: cloud.state.attachmentsTo(cloud.proxyId).length,
  };
}
