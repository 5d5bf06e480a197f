import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkNetwork,
  createRegistry,
  FileSink,
  imageFileName,
  parseConfig,
  SyncproxyError,
  syncHost,
  transferDisk,
} from '@syncproxy/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAwsConnector } from '../src/index.js';
import { type AwsMockPlatform, createAwsMockPlatform } from '../src/mock/index.js';

const MiB = 1 << 20;
const GiB = 1 << 30;

let platform: AwsMockPlatform;
let dir: string;
beforeAll(async () => {
  platform = await createAwsMockPlatform({ snapshotPollsUntilCompleted: 1 });
  dir = await mkdtemp(join(tmpdir(), 'syncproxy-readme-'));
});
afterAll(async () => {
  await platform.close();
  await rm(dir, { recursive: true, force: true });
});

function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed * 2654435761 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** The first offset where the image differs from the platform disk, or -1 when it is byte-exact. */
async function firstDifference(path: string, diskId: string, sizeBytes: number): Promise<number> {
  const file = await open(path, 'r');
  try {
    if ((await file.stat()).size !== sizeBytes) return sizeBytes;
    const buffer = new Uint8Array(32 * MiB);
    for (let at = 0; at < sizeBytes; at += buffer.length) {
      const length = Math.min(buffer.length, sizeBytes - at);
      await file.read(buffer, 0, length, at);
      const want = await platform.readDisk(diskId, at, length);
      if (Buffer.compare(buffer.subarray(0, length), want) !== 0) {
        for (let i = 0; i < length; i++) if (buffer[i] !== want[i]) return at + i;
      }
    }
  } finally {
    await file.close();
  }
  return -1;
}

/** The README's embedding example, as written there (a mock AWS for the real one). */
async function readmeExample(config: unknown, target: string) {
  const connector = createRegistry([createAwsConnector({ snapshotWait: { initialDelayMs: 1 } })]).get('aws');
  const warnings: string[] = [];
  await checkNetwork(connector.networkRequirements(parseConfig(connector, config)));
  const session = await connector.connect(config);
  try {
    const [host] = await session.listHosts();
    const report = await syncHost({
      session,
      platform: connector.id,
      hostId: host!.id,
      target,
      verify: true,
      onEvent: (event) => {
        if (event.type === 'warning') warnings.push(event.warning.code);
      },
    });
    return { report, warnings };
  } finally {
    await session.close();
  }
}

describe('the README embedding example', () => {
  it('run twice onto the same path, and onto a file full of random bytes: verified and byte-exact each time', async () => {
    const host = await platform.createHost({ name: 'web-01', disks: [{ sizeBytes: GiB }] });
    const disk = host.disks[0]!;
    await platform.writeDisk(disk.id, 0, pattern(4 * MiB, 1));
    await platform.writeDisk(disk.id, 300 * MiB, pattern(2 * MiB, 2));
    const target = join(dir, 'backups');
    await mkdir(target);
    // A file full of random bytes where the image goes (64 MiB of them; the rest a hole).
    const path = join(target, imageFileName(disk.id));
    await writeFile(path, pattern(64 * MiB, 3));

    const runs: string[] = [];
    for (let run = 0; run < 3; run++) {
      if (run === 2) {
        // The platform frees a range and writes another: the next run is an incremental.
        await platform.writeZeroes(disk.id, 0, MiB);
        await platform.writeDisk(disk.id, 500 * MiB, pattern(MiB, 4));
      }
      const { report } = await readmeExample(platform.config(), target);
      runs.push(report.mode);
      expect(report.ok).toBe(true);
      expect(report.disks[0]!.result!.verified).toBe(true);
      expect(await firstDifference(path, disk.id, disk.sizeBytes)).toBe(-1);
      expect(await platform.snapshotCount(host.id)).toBe(1);
    }
    expect(runs).toEqual(['full', 'incremental', 'incremental']);
  }, 180_000);

  it('a bad config is a SyncproxyError config naming the field, from parseConfig and from networkRequirements', async () => {
    const connector = createAwsConnector();
    const bad = { ...(platform.config() as object), region: 42 };
    for (const call of [
      () => parseConfig(connector, bad),
      () => connector.networkRequirements(bad as never),
    ]) {
      let caught: unknown;
      try {
        call();
      } catch (error) {
        caught = error;
      }
      expect(SyncproxyError.isInstance(caught)).toBe(true);
      expect(caught).toMatchObject({ code: 'config', details: { issues: [{ path: 'region' }] } });
    }
  });

  it('a reader opened without a base and handed to transferDisk without `full` still makes a random-bytes target exact', async () => {
    const host = await platform.createHost({ name: 'web-02', disks: [{ sizeBytes: GiB }] });
    const disk = host.disks[0]!;
    await platform.writeDisk(disk.id, 8 * MiB, pattern(MiB, 5));
    const path = join(dir, 'direct.raw');
    await writeFile(path, pattern(32 * MiB, 6));
    const session = await createAwsConnector({ snapshotWait: { initialDelayMs: 1 } }).connect(
      platform.config(),
    );
    try {
      const [found] = (await session.listHosts()).filter((h) => h.id === host.id);
      const snapshot = await session.createSnapshot(found!);
      const reader = await session.openReader(found!.disks[0]!, { snapshot });
      expect(reader.hints?.incremental).toBe(false);
      try {
        const result = await transferDisk({ reader, sink: new FileSink(path), verify: true });
        expect(result.verified).toBe(true);
      } finally {
        await reader.close();
      }
      await session.deleteSnapshot(snapshot);
    } finally {
      await session.close();
    }
    expect(await firstDifference(path, disk.id, disk.sizeBytes)).toBe(-1);
  }, 120_000);
});
