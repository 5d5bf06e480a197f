import { mkdir, open, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createAwsConnector } from '@syncproxy/connector-aws';
import { type AwsMockPlatform, createAwsMockPlatform } from '@syncproxy/connector-aws/mock';
import { SyncproxyError, ZeroRangeCheck } from '@syncproxy/core';
import { SeededRandom } from '@syncproxy/testkit/mock';
import { type CommandContext, print, printJson } from '../command-context.js';
import { ExitCode } from '../exit-code.js';
import { formatBytes, formatDuration, formatRate } from '../human-units.js';
import { imageFileName, type SyncReport, syncHost } from '../sync-host.js';
import { renderTable } from '../table.js';
import { progressFor } from './sync.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const EBS_BLOCK = 512 * 1024;
/** Bytes of one piece of the final comparison (see compareImage). */
const COMPARE_BYTES = 4 * MiB;
/** Pieces of the final comparison in flight for each image. */
const COMPARE_LANES = 2;

export interface DemoOptions {
  /**
   * Where the images go (default `<tmpdir>/syncproxy-demo`): a new or empty
   * directory, or one an earlier demo made (emptied first). Any other
   * non-empty directory is refused: the demo deletes only what it made.
   */
  target?: string;
  json?: boolean;
  quiet?: boolean;
  progressInterval?: number;
}

interface Verification {
  diskId: string;
  path: string;
  sizeBytes: number;
  allocatedBytes: number;
  /** Bytes of the image compared with the platform disk: all of them. */
  bytesCompared: number;
  /** Offset of the first byte that differs, or -1. */
  firstMismatchOffset: number;
  ok: boolean;
}

/**
 * `syncproxy demo`: the SDK's main job with no configuration and no network
 * beyond loopback. The bundled AWS mock (EC2 + EBS direct APIs, SigV4
 * checked) holds a sample instance with two sparse volumes; a full sync,
 * changes on the "platform", an incremental sync (EBS ListChangedBlocks), and
 * a byte-by-byte comparison of every image with the mock's disk. The syncs
 * are the ones `syncproxy sync` runs.
 */
export async function runDemo(context: CommandContext, options: DemoOptions): Promise<ExitCode> {
  const started = performance.now();
  const target = resolve(context.cwd, options.target ?? join(tmpdir(), 'syncproxy-demo'));
  const say = options.json || options.quiet ? () => {} : (line = '') => print(context, line);
  await prepareDemoTarget(target);

  say('Syncproxy demo: a mock AWS (EC2 + EBS direct APIs, SigV4-checked) on 127.0.0.1 -> raw images');
  // One poll and a short wait: the mock completes snapshots at once, where AWS takes minutes.
  const platform = await createAwsMockPlatform({ region: 'ap-southeast-1', snapshotPollsUntilCompleted: 1 });
  const connector = createAwsConnector({ snapshotWait: { initialDelayMs: 50, maxDelayMs: 200 } });
  const signal = context.io.signal;
  const session = await connector.connect(platform.config(), signal ? { signal } : {});
  try {
    const hostRef = await platform.createHost({
      name: 'demo-web-01',
      disks: [{ sizeBytes: 4 * GiB }, { sizeBytes: 2 * GiB }],
    });
    // Every range the demo writes on a volume: the volumes start all zero (createHost), so the final
    // comparison reads the platform only there, and proves the image zero everywhere else.
    const touched = new Map<string, Array<[number, number]>>(hostRef.disks.map((d) => [d.id, []]));
    let seed = 1;
    for (const disk of hostRef.disks) {
      const written = await scribble(platform, disk.id, disk.sizeBytes, seed++, 24, touched.get(disk.id)!);
      say(`  volume ${disk.id}: ${formatBytes(disk.sizeBytes)} virtual, ${formatBytes(written)} written`);
    }
    const status = await session.verify();
    say(`platform status: ${status.status}, ${status.hostCount} instance(s)`);
    say(`images, checkpoints, manifests and sync state in ${target}`);

    const sync = async (incremental: boolean) =>
      syncHost({
        session,
        platform: connector.id,
        hostId: hostRef.id,
        target,
        mode: incremental ? 'incremental' : 'full',
        progress: options.json ? progressFor(context, { quiet: true }) : progressFor(context, options),
        ...(signal ? { signal } : {}),
        snapshotLabel: `syncproxy-demo-${incremental ? 'incremental' : 'full'}`,
      });

    say('\n[1/3] full sync (EBS ListSnapshotBlocks: only written blocks are read)');
    const full = await sync(false);
    assertComplete(full);

    say('\n[2/3] blocks change on the platform');
    for (const disk of hostRef.disks) {
      const written = await scribble(
        platform,
        disk.id,
        disk.sizeBytes,
        100 + seed++,
        6,
        touched.get(disk.id)!,
      );
      await platform.writeZeroes(disk.id, 0, 1 * MiB);
      touched.get(disk.id)!.push([0, 1 * MiB]);
      say(`  volume ${disk.id}: ${formatBytes(written)} rewritten, first 1 MiB zeroed`);
    }

    say('\n[3/3] incremental sync (EBS ListChangedBlocks against the full sync snapshot)');
    const incremental = await sync(true);
    assertComplete(incremental);

    say('\nverification: every byte of each image against the platform disk');
    // The disks at once: the image reads run on libuv's threads, so both cores work.
    const verifications: Verification[] = await Promise.all(
      hostRef.disks.map(async (disk) => {
        const path = join(target, imageFileName(disk.id));
        const { bytesCompared, firstMismatchOffset } = await compareImage(
          path,
          platform,
          disk.id,
          disk.sizeBytes,
          touched.get(disk.id)!,
        );
        return {
          diskId: disk.id,
          path,
          sizeBytes: disk.sizeBytes,
          allocatedBytes: (await stat(path)).blocks * 512,
          bytesCompared,
          firstMismatchOffset,
          ok: bytesCompared === disk.sizeBytes && firstMismatchOffset === -1,
        };
      }),
    );
    const ok = verifications.every((v) => v.ok);
    const stats = platform.aws.state.stats;
    const durationMs = performance.now() - started;
    if (options.json) {
      printJson(context, {
        ok,
        target,
        syncs: [full, incremental].map((r) => ({
          ...r,
          disks: r.disks.map((d) => ({ ...d, error: d.error?.toJSON() })),
        })),
        verifications,
        mock: stats,
        durationMs,
      });
      return ok ? ExitCode.ok : ExitCode.failure;
    }
    say(
      renderTable(verifications, [
        { header: 'IMAGE', value: (v) => imageFileName(v.diskId) },
        {
          header: 'RESULT',
          value: (v) => (v.ok ? 'OK' : `MISMATCH at byte ${v.firstMismatchOffset}`),
        },
        { header: 'COMPARED', value: (v) => formatBytes(v.bytesCompared), align: 'right' },
        { header: 'VIRTUAL', value: (v) => formatBytes(v.sizeBytes), align: 'right' },
        { header: 'ALLOCATED', value: (v) => formatBytes(v.allocatedBytes), align: 'right' },
      ]),
    );
    say('summary');
    say(
      renderTable(
        [full, incremental].flatMap((r) => r.disks.map((d) => ({ mode: r.mode, disk: d }))),
        [
          { header: 'SYNC', value: (r) => r.mode },
          { header: 'DISK', value: (r) => r.disk.diskId },
          { header: 'READ', value: (r) => formatBytes(r.disk.result?.bytesRead ?? 0), align: 'right' },
          { header: 'WRITTEN', value: (r) => formatBytes(r.disk.result?.bytesWritten ?? 0), align: 'right' },
          { header: 'ZEROED', value: (r) => formatBytes(r.disk.result?.zeroBytes ?? 0), align: 'right' },
          { header: 'TIME', value: (r) => formatDuration(r.disk.result?.durationMs ?? 0), align: 'right' },
          {
            header: 'RATE',
            value: (r) => formatRate(r.disk.result?.throughputBytesPerSec ?? 0),
            align: 'right',
          },
        ],
      ),
    );
    say(
      `mock AWS served ${stats.blocksServed} blocks (${formatBytes(stats.bytesServed)}) of ${formatBytes(
        hostRef.disks.reduce((s, d) => s + d.sizeBytes, 0),
      )} of volumes; snapshots left on the platform: ${await platform.snapshotCount(hostRef.id)} (the next incremental's base)`,
    );
    say(
      `\ndemo ${ok ? 'passed' : 'FAILED'}: full + incremental sync ${ok ? 'verified byte-exact' : 'differ from the platform'} in ${formatDuration(durationMs)}`,
    );
    return ok ? ExitCode.ok : ExitCode.failure;
  } finally {
    await session.close().catch(() => {});
    await platform.close();
  }
}

/** The file that marks a directory as made by `syncproxy demo`, so a later demo may empty it. */
export const DEMO_MARKER_FILE = '.syncproxy-demo';

/**
 * Makes `target` ready for the demo: creates it, or empties it only when an
 * earlier demo made it (its marker file is there); an empty directory is
 * adopted; anything else is refused with a `config` error and left alone.
 */
async function prepareDemoTarget(target: string): Promise<void> {
  let entries: string[] | undefined;
  try {
    entries = await readdir(target);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') {
      throw new SyncproxyError(`demo target ${target} is not a directory`, {
        code: 'config',
        retryable: false,
      });
    }
    if (code !== 'ENOENT') throw error;
  }
  if (entries !== undefined && entries.length > 0) {
    if (!entries.includes(DEMO_MARKER_FILE)) {
      throw new SyncproxyError(
        `demo target ${target} is not empty and was not made by syncproxy demo: it is left untouched (give an empty or new directory with --target)`,
        { code: 'config', retryable: false, details: { field: 'target' } },
      );
    }
    await rm(target, { recursive: true, force: true });
  }
  await mkdir(target, { recursive: true });
  await writeFile(
    join(target, DEMO_MARKER_FILE),
    'made by syncproxy demo: the next demo may empty this directory\n',
  );
}

function assertComplete(report: SyncReport): void {
  if (report.ok) return;
  const failed = report.disks.find((d) => d.error !== undefined);
  if (failed?.error) throw failed.error;
  throw new SyncproxyError(`the demo's ${report.mode} sync was interrupted`, {
    code: 'aborted',
    retryable: false,
  });
}

/** Writes `count` runs of seeded random data (1-4 MiB each, EBS-block aligned). */
async function scribble(
  platform: AwsMockPlatform,
  diskId: string,
  sizeBytes: number,
  seed: number,
  count: number,
  touched: Array<[number, number]>,
): Promise<number> {
  const random = new SeededRandom(seed);
  let written = 0;
  for (let i = 0; i < count; i++) {
    const length = random.int(2, 8) * EBS_BLOCK;
    const offset = random.int(0, (sizeBytes - length) / EBS_BLOCK) * EBS_BLOCK;
    await platform.writeDisk(diskId, offset, random.fill(new Uint8Array(length)));
    touched.push([offset, offset + length]);
    written += length;
  }
  return written;
}

/**
 * Compares the image with the platform disk, every byte of the image: where
 * the demo wrote on the volume, with the volume's bytes; elsewhere, where the
 * volume is still all zero, it proves the image reads as zeroes with the SDK's
 * `ZeroRangeCheck` (past the page cache where the file system takes it: 6 GiB
 * of holes then cost no 6 GiB of zero pages in the cache). A hash of each side
 * would cost two passes of SHA-256 over 6 GiB (most of the demo's time
 * before), and reading the untouched volume would allocate 6 GiB for zeroes.
 */
export async function compareImage(
  path: string,
  platform: AwsMockPlatform,
  diskId: string,
  sizeBytes: number,
  touched: ReadonlyArray<[number, number]>,
): Promise<{ bytesCompared: number; firstMismatchOffset: number }> {
  const file = await open(path, 'r');
  let firstMismatchOffset = -1;
  let bytesCompared = 0;
  const mismatch = (offset: number) => {
    if (firstMismatchOffset === -1 || offset < firstMismatchOffset) firstMismatchOffset = offset;
  };
  const pieces = Math.ceil(sizeBytes / COMPARE_BYTES);
  /** Reads `length` bytes at `offset` into `image`; returns the count (fewer where the image ends). */
  const read = async (image: Buffer, offset: number, length: number): Promise<number> => {
    let done = 0;
    while (done < length) {
      const { bytesRead } = await file.read(image, done, length - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  };
  const zeroes = await ZeroRangeCheck.open(file, { path });
  const lane = async (first: number): Promise<void> => {
    const image = Buffer.allocUnsafe(COMPARE_BYTES);
    for (let piece = first; piece < pieces && firstMismatchOffset === -1; piece += COMPARE_LANES) {
      const offset = piece * COMPARE_BYTES;
      const length = Math.min(COMPARE_BYTES, sizeBytes - offset);
      const isTouched = touched.some(([start, end]) => start < offset + length && offset < end);
      if (!isTouched && (await zeroes.readsAsZeroes(offset, length))) {
        bytesCompared += length;
        continue;
      }
      // Touched, or not all zeroes: compared byte by byte, to name the first byte that differs.
      const done = await read(image, offset, length);
      // A short image fails the comparison: its missing bytes are not the disk's.
      if (done < length) return mismatch(offset + done);
      const local = image.subarray(0, length);
      const disk = isTouched ? await platform.readDisk(diskId, offset, length) : new Uint8Array(length);
      if (!local.equals(disk)) {
        let at = 0;
        while (local[at] === disk[at]) at++;
        return mismatch(offset + at);
      }
      bytesCompared += length;
    }
  };
  try {
    await Promise.all(Array.from({ length: COMPARE_LANES }, (_, i) => lane(i)));
    // Bytes past the disk's size would make the image another disk.
    if (firstMismatchOffset === -1 && (await file.stat()).size !== sizeBytes) mismatch(sizeBytes);
  } finally {
    await zeroes.close();
    await file.close();
  }
  return { bytesCompared, firstMismatchOffset };
}
