import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createFusionComputeConnector,
  type FusionComputeConnectorOptions,
} from '@syncproxy/connector-fusioncompute';
import {
  type MockFusionCompute,
  type MockFusionComputeOptions,
  type MockVolume,
  startMockFusionCompute,
} from '@syncproxy/connector-fusioncompute/mock';
import {
  type ConnectorSession,
  FileSink,
  type Host,
  type Logger,
  type SnapshotRef,
  type TransferResult,
  transferDisk,
} from '@syncproxy/core';

export const MIB = 1024 * 1024;

/** A logger that keeps every line, to look for secrets in. */
export function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  // Pino's order, (fields, message) or (message): the line keeps both, message first.
  const log =
    (level: string) =>
    (...args: unknown[]): void => {
      const message = args.find((a) => typeof a === 'string') ?? '';
      const fields = args.find((a) => typeof a === 'object' && a !== null) ?? {};
      lines.push(`${level} ${message} ${JSON.stringify(fields)}`);
    };
  return { lines, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

export interface Rig {
  fc: MockFusionCompute;
  dir: string;
  connect(
    options?: FusionComputeConnectorOptions & { config?: Record<string, unknown>; logger?: Logger },
  ): Promise<ConnectorSession>;
  close(): Promise<void>;
}

/**
 * A GB of these tests' mock (and connector): 64 MiB. Every volume is 64 MiB
 * times its `quantityGB`, so images are compared in milliseconds; the
 * connector checks each volume's end against getcbt with it.
 */
export const GB_BYTES = 64 * MIB;

export async function startRig(options: MockFusionComputeOptions = {}): Promise<Rig> {
  const gbBytes = options.gbBytes ?? GB_BYTES;
  const fc = await startMockFusionCompute({ ...options, gbBytes });
  const dir = await mkdtemp(join(tmpdir(), 'syncproxy-fc-'));
  const sessions: ConnectorSession[] = [];
  return {
    fc,
    dir,
    async connect(connectOptions = {}) {
      const { config, logger, ...connectorOptions } = connectOptions;
      const connector = createFusionComputeConnector({ taskPollMs: 1, gbBytes, ...connectorOptions });
      const session = await connector.connect({ ...fc.config(), ...config }, logger ? { logger } : {});
      sessions.push(session);
      return session;
    },
    async close() {
      for (const s of sessions) await s.close().catch(() => {});
      await fc.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Writes `count` seeded 1 MiB-ish pieces into a volume's first 60 MiB, at fixed offsets derived from `seed`. */
export function writePattern(volume: MockVolume, seed: number, count = 4): void {
  for (let i = 0; i < count; i++) {
    const offset = ((seed * 7919 + i * 104_729) % 20) * 3 * MIB + i * 4096;
    const data = new Uint8Array(MIB + 512);
    for (let j = 0; j < data.length; j++) data[j] = (seed * 31 + i * 17 + j) & 0xff;
    volume.disk.write(offset, data);
  }
}

/** One disk synced into `path`: reader opened, transferred, closed (also on failure). */
export async function syncDisk(
  session: ConnectorSession,
  host: Host,
  diskIndex: number,
  snapshot: SnapshotRef,
  path: string,
  base?: SnapshotRef,
): Promise<{
  result: TransferResult;
  warnings: readonly { code: string; message: string }[];
  hints: unknown;
}> {
  const disk = host.disks[diskIndex]!;
  const reader = await session.openReader(disk, { snapshot, ...(base ? { base } : {}) });
  try {
    const result = await transferDisk({
      reader,
      sink: new FileSink(path, { sync: false }),
      checkpoint: false,
      manifest: false,
      retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
    });
    return { result, warnings: reader.warnings ?? [], hints: reader.hints };
  } finally {
    await reader.close();
  }
}

/** True when the image file equals the volume's live bytes. Compares in 16 MiB steps. */
export async function imageEquals(path: string, volume: MockVolume): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const size = volume.disk.sizeBytes;
    const step = 16 * MIB;
    const buffer = Buffer.alloc(step);
    for (let at = 0; at < size; at += step) {
      const n = Math.min(step, size - at);
      const { bytesRead } = await handle.read(buffer, 0, n, at);
      if (bytesRead !== n) return false;
      if (!buffer.subarray(0, n).equals(volume.disk.read(at, n))) return false;
    }
    const { size: fileSize } = await handle.stat();
    return fileSize === size;
  } finally {
    await handle.close();
  }
}

export function hostFor(hosts: Host[], vmUrn: string): Host {
  const host = hosts.find((h) => h.id === vmUrn);
  if (host === undefined) throw new Error(`no host ${vmUrn} listed`);
  return host;
}
