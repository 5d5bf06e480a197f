import { existsSync } from 'node:fs';
import { readFile, rename, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SeededRandom } from '@syncproxy/testkit/mock';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { imageFileName } from '../../src/index.js';
import { tempDir } from '../transfer/fixtures/temp-dir.js';
import { type ChildSyncOptions, killChildSyncs, runChildSync } from './fixtures/child-sync.js';
import { FilePlatform, GRAIN, randomBytes } from './fixtures/file-platform.js';

// Small disks on a small chunk grid: several chunks (and checkpoints) per disk, each sync quick.
const DISKS: Record<string, number> = { 'disk-a': 2 << 20, 'disk/b': 2 << 20 };
const CHUNK = 256 << 10;
const SEQUENCES = 50;
const SEED = Number(process.env.SYNCPROXY_TAMPER_SEED ?? Date.now() % 2 ** 31);
// The final sync re-hashes each image against its manifest before an incremental: the level the
// docs (host-sync.md) name as the one that catches a byte flipped behind a restored mtime.
const FINAL: ChildSyncOptions = {
  disks: DISKS,
  chunkSizeBytes: CHUNK,
  readDelayMs: 0,
  verifyTarget: 'manifest',
};

let dir: { path: string; remove: () => Promise<void> };
beforeAll(async () => {
  dir = await tempDir('syncproxy-host-tamper-');
});
afterAll(async () => {
  killChildSyncs();
  await dir.remove();
});

type Step = (random: SeededRandom, target: string) => Promise<string>;

const diskIds = Object.keys(DISKS);
const pick = <T>(random: SeededRandom, items: readonly T[]): T => items[random.int(0, items.length)]!;
const imagePath = (target: string, id: string) => join(target, imageFileName(id));

/** A field of a checkpoint set to a hostile value: huge, negative, fractional, NaN, wrong type, or the other disk's. */
async function editCheckpoint(random: SeededRandom, target: string): Promise<string> {
  const id = pick(random, diskIds);
  const path = `${imagePath(target, id)}.checkpoint.json`;
  const other = `${imagePath(target, diskIds.find((d) => d !== id)!)}.checkpoint.json`;
  if (!existsSync(path)) {
    if (!existsSync(other)) return `checkpoint of ${id}: none`;
    await writeFile(path, await readFile(other));
    return `checkpoint of ${id}: the other disk's copied in`;
  }
  const checkpoint = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  const field = pick(random, [
    'transferId',
    'diskSize',
    'chunkSizeBytes',
    'doneBelow',
    'doneRuns',
    'bytesDone',
    'chunksDone',
    'version',
  ]);
  const otherValue = existsSync(other)
    ? (JSON.parse(await readFile(other, 'utf8')) as Record<string, unknown>)[field]
    : undefined;
  const value = pick(random, [
    'NaN',
    '1e9',
    '-1',
    '2.5',
    '9007199254740993',
    '256',
    '0',
    '"x"',
    'null',
    '[[0,1e9]]',
    '[[-5,3]]',
    '[[3,1]]',
    JSON.stringify(otherValue ?? 0),
  ]);
  // Spliced as text so that NaN and numbers beyond a double reach the parser as written.
  const text = JSON.stringify({ ...checkpoint, [field]: '@@' }).replace('"@@"', value);
  await writeFile(path, text);
  return `checkpoint of ${id}: ${field} = ${value}`;
}

/** A manifest truncated, with a byte flipped, deleted, or replaced by the other disk's. */
async function editManifest(random: SeededRandom, target: string): Promise<string> {
  const id = pick(random, diskIds);
  const path = `${imagePath(target, id)}.manifest`;
  if (!existsSync(path)) return `manifest of ${id}: none`;
  const bytes = await readFile(path);
  switch (random.int(0, 4)) {
    case 0: {
      const length = random.int(0, bytes.length);
      await truncate(path, length);
      return `manifest of ${id}: truncated to ${length} of ${bytes.length}`;
    }
    case 1: {
      const at = random.int(0, bytes.length);
      bytes[at]! ^= 1 << random.int(0, 8);
      await writeFile(path, bytes);
      return `manifest of ${id}: byte ${at} flipped`;
    }
    case 2:
      await rm(path);
      return `manifest of ${id}: deleted`;
    default: {
      const other = `${imagePath(target, diskIds.find((d) => d !== id)!)}.manifest`;
      if (!existsSync(other)) return `manifest of ${id}: no other to copy`;
      await writeFile(path, await readFile(other));
      return `manifest of ${id}: the other disk's copied in`;
    }
  }
}

async function truncateImage(random: SeededRandom, target: string): Promise<string> {
  const id = pick(random, diskIds);
  const path = imagePath(target, id);
  if (!existsSync(path)) return `image of ${id}: none to truncate`;
  const length = random.int(0, DISKS[id]!);
  await truncate(path, length);
  return `image of ${id}: truncated to ${length}`;
}

async function deleteImage(random: SeededRandom, target: string): Promise<string> {
  const id = pick(random, diskIds);
  const path = imagePath(target, id);
  if (!existsSync(path)) return `image of ${id}: none to delete`;
  await rm(path);
  return `image of ${id}: deleted`;
}

/** One bit of an image flipped in place; with `restoreMtime`, its times put back as they were. */
async function flipImageByte(random: SeededRandom, target: string): Promise<string> {
  const id = pick(random, diskIds);
  const path = imagePath(target, id);
  if (!existsSync(path)) return `image of ${id}: none to flip`;
  const before = await stat(path);
  const bytes = await readFile(path);
  if (bytes.length === 0) return `image of ${id}: empty`;
  const at = random.int(0, bytes.length);
  bytes[at]! ^= 1 << random.int(0, 8);
  await writeFile(path, bytes, { flag: 'r+' });
  const restoreMtime = random.chance(0.5);
  if (restoreMtime) await utimes(path, before.atime, before.mtime);
  return `image of ${id}: byte ${at} flipped${restoreMtime ? ', mtime restored' : ''}`;
}

async function swapImages(_random: SeededRandom, target: string): Promise<string> {
  const [a, b] = diskIds.map((id) => imagePath(target, id)) as [string, string];
  if (!existsSync(a) || !existsSync(b)) return 'images: not two to swap';
  await rename(a, `${a}.swap`);
  await rename(b, a);
  await rename(`${a}.swap`, b);
  return 'images: swapped';
}

it(`${SEQUENCES} random sequences of SIGKILL, checkpoint and manifest edits, image truncation, deletion, flips and swaps, each followed by a sync with verifyTarget 'manifest': an exact image or a typed error with exit ≠ 0`, async () => {
  const root = join(dir.path, 'platform');
  const target = join(dir.path, 'target');
  const platform = new FilePlatform(root, { disks: DISKS });
  const random = new SeededRandom(SEED);
  const kill: Step = async (r, t) => {
    const delay = r.int(0, 120);
    const outcome = await runChildSync(root, t, {
      ...FINAL,
      readDelayMs: 2,
      verifyTarget: 'identity',
      killAfterMs: delay,
    });
    return `sync killed ${delay} ms after its snapshot: ${outcome.kind === 'killed' ? 'killed' : `exit ${outcome.code}`}`;
  };
  const steps: Step[] = [
    kill,
    editCheckpoint,
    editManifest,
    truncateImage,
    deleteImage,
    flipImageByte,
    swapImages,
  ];
  const endings: string[] = [];
  let seed = SEED;
  for (let sequence = 0; sequence < SEQUENCES; sequence++) {
    // The platform's disks change between sequences: data written, some of it freed again.
    for (const [id, size] of Object.entries(DISKS)) {
      for (let i = 0; i < 4; i++) {
        const at = random.int(0, size / GRAIN) * GRAIN;
        platform.write(id, at, random.chance(0.25) ? new Uint8Array(GRAIN) : randomBytes(GRAIN, seed++));
      }
    }
    const log: string[] = [];
    // Half the sequences start with a killed sync, so that the edits meet checkpoints and half-written images.
    if (random.chance(0.5)) log.push(await kill(random, target));
    const count = random.int(1, 4);
    for (let i = 0; i < count; i++) log.push(await pick(random, steps)(random, target));
    const outcome = await runChildSync(root, target, FINAL);
    const where = `seed ${SEED} (SYNCPROXY_TAMPER_SEED), sequence ${sequence}: ${log.join('; ')}`;
    expect(outcome.kind, where).toBe('exited');
    if (outcome.kind !== 'exited') continue;
    const result = outcome.result;
    expect(result, `${where}: no result line, stderr ${outcome.stderr}`).toBeDefined();
    if (outcome.code === 0) {
      // Exit 0: the report is ok and every image is the synced snapshot's disk, byte for byte.
      expect(result!.ok, where).toBe(true);
      for (const id of diskIds) {
        const image = await readFile(imagePath(target, id));
        const source = platform.readSnapshot(result!.snapshotId!, id);
        expect(Buffer.compare(image, source), `${where}: image of ${id}`).toBe(0);
      }
      endings.push('exact');
    } else {
      // Exit ≠ 0: a typed SyncproxyError, thrown or on each failed disk; never an untyped crash.
      expect([1, 2], `${where}: exit ${outcome.code}, stderr ${outcome.stderr}`).toContain(outcome.code);
      const errors = result!.thrown
        ? [result!.thrown]
        : result!.disks!.flatMap((d) => (d.error ? [d.error] : []));
      expect(errors.length, where).toBeGreaterThan(0);
      for (const error of errors) expect(error.typed, `${where}: ${JSON.stringify(error)}`).toBe(true);
      endings.push(`error ${errors.map((e) => e.code).join(',')}`);
      // A target the sync refuses is started over, so the next sequences test something.
      await rm(target, { recursive: true, force: true });
    }
  }
  console.log(
    `kill-and-tamper seed ${SEED}: ${endings.filter((e) => e === 'exact').length} exact, others ${JSON.stringify(endings.filter((e) => e !== 'exact'))}`,
  );
  // Most tampering is repaired (a full sync of the disk); a sequence may also end in a refusal.
  expect(endings.filter((e) => e === 'exact').length, `seed ${SEED}`).toBeGreaterThan(SEQUENCES / 2);
}, 300_000);
