import { existsSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SYNC_STATE_FILE, type SyncState } from '@syncproxy/cli';
import { type MockAws, startMockAws } from '@syncproxy/connector-aws/mock';
import { SeededRandom } from '@syncproxy/testkit/mock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killLeftoverCli, runSyncproxy } from './cli-process.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const EBS_BLOCK = 512 * 1024;
const CHUNK = 4 * MiB;
const BLOCK_PATH = /^\/snapshots\/[^/]+\/blocks\/\d+$/;

let mock: MockAws;
let dir: string;
let configPath: string;

beforeAll(async () => {
  mock = await startMockAws({ region: 'us-east-1', snapshotPollsUntilCompleted: 0 });
  dir = await mkdtemp(join(tmpdir(), 'syncproxy-cli-sync-'));
  configPath = join(dir, 'aws.json');
  await writeFile(configPath, JSON.stringify(mock.config()));
});

afterEach(() => killLeftoverCli());

afterAll(async () => {
  await mock?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function volume(id: string) {
  const found = mock.state.volumes.get(id);
  if (found === undefined) throw new Error(`no volume ${id}`);
  return found.disk;
}

/** Writes `count` seeded runs of whole EBS blocks; returns the distinct blocks written. */
function scribble(volumeId: string, seed: number, count: number): Set<number> {
  const disk = volume(volumeId);
  const random = new SeededRandom(seed);
  const blocks = new Set<number>();
  for (let i = 0; i < count; i++) {
    const length = random.int(1, 5) * EBS_BLOCK;
    const offset = random.int(0, (disk.sizeBytes - length) / EBS_BLOCK) * EBS_BLOCK;
    disk.write!(offset, random.fill(new Uint8Array(length)));
    for (let b = offset / EBS_BLOCK; b < (offset + length) / EBS_BLOCK; b++) blocks.add(b);
  }
  return blocks;
}

/** True when the image file holds exactly the volume's bytes (compared 64 MiB at a time, no hashing). */
async function imageEqualsVolume(path: string, volumeId: string): Promise<boolean> {
  const disk = volume(volumeId);
  const file = await open(path, 'r');
  try {
    if ((await file.stat()).size !== disk.sizeBytes) return false;
    const buffer = Buffer.alloc(64 * MiB);
    for (let offset = 0; offset < disk.sizeBytes; offset += buffer.length) {
      const length = Math.min(buffer.length, disk.sizeBytes - offset);
      const { bytesRead } = await file.read(buffer, 0, length, offset);
      if (bytesRead !== length) return false;
      if (!buffer.subarray(0, length).equals(disk.read!(offset, length))) return false;
    }
    return true;
  } finally {
    await file.close();
  }
}

async function readState(target: string): Promise<SyncState> {
  return JSON.parse(await readFile(join(target, SYNC_STATE_FILE), 'utf8')) as SyncState;
}

const PROGRESS_LINE =
  /^vol-\d+ {2}[ \d]{3}% {2}\S+ \S+ \/ \S+ \S+ {2}\S+ \S+\/s logical {2}data \S+ \S+ at \S+ \S+\/s {2}ETA \S+( \S+)?$/;

describe('syncproxy sync', () => {
  it('--verify, --concurrency, --bandwidth-limit and --quiesce reach the host sync: images read back and verified', async () => {
    const { instance, volumes } = mock.addInstance({ name: 'flags-01', volumes: [{ sizeBytes: GiB }] });
    const [a] = volumes.map((v) => v.id) as [string];
    scribble(a, 7, 4);
    const target = join(dir, 'flags');
    const base = [
      'sync',
      '-p',
      'aws',
      '-c',
      configPath,
      '--host',
      instance.id,
      '--target',
      target,
      '--json',
      '--quiet',
    ];
    const plain = await runSyncproxy(base);
    expect(plain.code).toBe(0);
    expect(JSON.parse(plain.stdout).disks[0].result.verified).toBe(false);
    await rm(target, { recursive: true, force: true });
    const run = await runSyncproxy([
      ...base,
      '--verify',
      '--concurrency',
      '2',
      '--bandwidth-limit',
      '1GiB',
      '--quiesce',
    ]);
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.ok).toBe(true);
    expect(report.disks[0].result.verified).toBe(true);
    expect(await imageEqualsVolume(report.disks[0].path, a)).toBe(true);
  });

  it('a full sync, then an incremental one, make exact images; progress is plain lines without a TTY', async () => {
    const { instance, volumes } = mock.addInstance({
      name: 'sync-01',
      volumes: [{ sizeBytes: GiB }, { sizeBytes: GiB }],
    });
    const [a, b] = volumes.map((v) => v.id) as [string, string];
    scribble(a, 1, 12);
    scribble(b, 2, 8);
    const target = join(dir, 'full-then-incremental');
    const args = ['sync', '-p', 'aws', '-c', configPath, '--host', instance.id, '--target', target];

    const full = await runSyncproxy([...args, '--progress-interval', '1']);
    expect(full.code).toBe(0);
    const stderr = full.stderr.trimEnd().split('\n');
    const created = stderr.findIndex((line) => / created \(/.test(line));
    expect(stderr[created]).toMatch(
      /^snapshot i-\w+\/snap-\w+\+snap-\w+ created \(full sync of 2 disk\(s\)\)$/,
    );
    expect(stderr.slice(0, created).every((line) => /^snapshot {2}/.test(line))).toBe(true);
    // Steps of 2 s or more (a slow snapshot on a loaded machine) show their own lines.
    const progress = stderr
      .slice(created + 1)
      .filter((line) => !/^(snapshot|cleanup|vol-\S+ {2}verify) {2}/.test(line));
    expect(progress.length).toBeGreaterThanOrEqual(2);
    for (const line of progress) expect(line).toMatch(PROGRESS_LINE);
    for (const id of [a, b]) {
      // The last line of each disk says it is complete.
      const last = progress.filter((line) => line.startsWith(id)).at(-1)!;
      expect(last.startsWith(`${id}  100%  1.00 GiB / 1.00 GiB  `), last).toBe(true);
      expect(await imageEqualsVolume(join(target, `${id}.raw`), id)).toBe(true);
    }
    const summary = full.stdout.split('\n');
    const header = summary.findIndex((l) => l.startsWith('DISK'));
    expect(summary.slice(header + 1, header + 3).map((l) => cells(l).slice(0, 3))).toEqual([
      [a, 'done', '1.00 GiB'],
      [b, 'done', '1.00 GiB'],
    ]);
    const afterFull = await readState(target);
    const fullSnapshot = afterFull.disks[a]!.snapshotId;
    expect(afterFull.pending).toBeUndefined();
    expect(Object.keys(afterFull.snapshots)).toEqual([fullSnapshot]);

    const changed = scribble(a, 3, 4);
    const incremental = await runSyncproxy([...args, '--incremental', '--json', '--quiet']);
    expect(incremental.stderr).toBe('');
    expect(incremental.code).toBe(0);
    const report = JSON.parse(incremental.stdout);
    expect(report.ok).toBe(true);
    expect(report.mode).toBe('incremental');
    expect(report.deletedSnapshots).toEqual([fullSnapshot]);
    expect(
      report.disks.map((d: { diskId: string; baseSnapshotId: string }) => [d.diskId, d.baseSnapshotId]),
    ).toEqual([
      [a, fullSnapshot],
      [b, fullSnapshot],
    ]);
    // Only the changed EBS blocks are read: exactly, not the disk.
    expect(report.disks[0].result.bytesRead).toBe(changed.size * EBS_BLOCK);
    expect(report.disks[1].result.bytesRead).toBe(0);
    for (const id of [a, b]) expect(await imageEqualsVolume(join(target, `${id}.raw`), id)).toBe(true);
    const afterIncremental = await readState(target);
    expect(Object.keys(afterIncremental.snapshots)).toEqual([report.snapshotId]);
    expect(
      mock.state
        .snapshotsOfInstance(instance.id)
        .map((s) => s.id)
        .sort(),
    ).toEqual(report.snapshotId.split('/')[1].split('+').sort());
  });

  it('an incremental with no recorded base exits 2; an unknown host exits 1', async () => {
    const { instance } = mock.addInstance({ name: 'sync-02', volumes: [{ sizeBytes: GiB }] });
    const target = join(dir, 'no-base');
    const run = await runSyncproxy([
      'sync',
      '-p',
      'aws',
      '-c',
      configPath,
      '--host',
      instance.id,
      '--target',
      target,
      '--incremental',
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(
      `error (config): syncHost: mode: incremental asked, but no base snapshot is recorded in ${target} for disk ${instance.volumeIds[0]}: run a full (or auto) sync first\n`,
    );
    expect(mock.state.snapshotsOfInstance(instance.id)).toEqual([]);
    const unknown = await runSyncproxy([
      'sync',
      '-p',
      'aws',
      '-c',
      configPath,
      '--host',
      'i-0nope',
      '--target',
      target,
    ]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe(
      'error (not-found): host i-0nope not found on the platform (list the hosts with listHosts, or syncproxy hosts)\n',
    );
  });

  it('Ctrl-C stops a sync cleanly (exit 130, checkpoint kept); the re-run resumes and re-sends at most one checkpoint interval', async () => {
    const DATA = 160 * MiB;
    // 64 MiB: at least what a clean stop may drop in flight (8 reads of 4 MiB, within the engine's 64 MiB budget).
    const CHECKPOINT_CHUNKS = 16;
    const { instance, volumes } = mock.addInstance({ name: 'sync-03', volumes: [{ sizeBytes: GiB }] });
    const id = volumes[0]!.id;
    const random = new SeededRandom(7);
    for (let offset = 64 * MiB; offset < 64 * MiB + DATA; offset += 16 * MiB) {
      volume(id).write!(offset, random.fill(new Uint8Array(16 * MiB)));
    }
    const target = join(dir, 'interrupted');
    const args = [
      'sync',
      '-p',
      'aws',
      '-c',
      configPath,
      '--host',
      instance.id,
      '--target',
      target,
      '--checkpoint-chunks',
      String(CHECKPOINT_CHUNKS),
      '--json',
    ];
    const servedBefore = mock.state.stats.bytesServed;

    // Slow blocks, and Ctrl-C when the 240th block (120 MiB) is asked for: mid-transfer, by event, and late
    // enough that starting over would re-send more than one checkpoint interval.
    const slow = mock.delayBlocks(100);
    let blocksAsked = 0;
    let interrupt: (() => void) | undefined;
    const watch = mock.faults.add({
      kind: 'latency',
      ms: 0,
      when: (request) => {
        if (request.method === 'GET' && BLOCK_PATH.test(request.path) && ++blocksAsked === 240) interrupt?.();
        return false;
      },
    });
    const first = await runSyncproxy(args, {
      onSpawn: (child) => {
        interrupt = () => child.kill('SIGINT');
      },
    });
    slow.remove();
    watch.remove();
    expect(first.code).toBe(130);
    expect(first.stderr).toContain('stopping: saving checkpoints');
    const interrupted = JSON.parse(first.stdout);
    expect(interrupted.ok).toBe(false);
    expect(interrupted.interrupted).toBe(true);
    expect(interrupted.disks[0].status).toBe('interrupted');
    expect(existsSync(join(target, `${id}.raw.checkpoint.json`))).toBe(true);
    const pending = (await readState(target)).pending!;
    expect(pending.snapshotId).toBe(interrupted.snapshotId);

    const second = await runSyncproxy(args);
    expect(second.code).toBe(0);
    const resumed = JSON.parse(second.stdout);
    expect(resumed.resumed).toBe(true);
    expect(resumed.snapshotId).toBe(interrupted.snapshotId);
    expect(resumed.disks[0].result.resumed).toBe(true);
    expect(resumed.disks[0].result.chunksSkipped).toBeGreaterThan(0);
    expect(await imageEqualsVolume(join(target, `${id}.raw`), id)).toBe(true);
    expect(existsSync(join(target, `${id}.raw.checkpoint.json`))).toBe(false);
    const reSent = mock.state.stats.bytesServed - servedBefore - DATA;
    expect(reSent).toBeGreaterThanOrEqual(0);
    expect(reSent).toBeLessThanOrEqual(CHECKPOINT_CHUNKS * CHUNK);
  });
});

function cells(line: string): string[] {
  return line.trim().split(/\s{2,}/);
}
