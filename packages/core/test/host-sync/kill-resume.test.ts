import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { imageFileName, loadSyncState, syncHost } from '../../src/index.js';
import { tempDir } from '../transfer/fixtures/temp-dir.js';
import { killChildSyncs, runChildSync } from './fixtures/child-sync.js';
import { FilePlatform, GRAIN, KILL_TEST_DISKS, randomBytes } from './fixtures/file-platform.js';

const ROUNDS = 20;

let dir: { path: string; remove: () => Promise<void> };
beforeAll(async () => {
  dir = await tempDir('syncproxy-host-kill-');
});
afterAll(async () => {
  killChildSyncs();
  await dir.remove();
});

/** Runs the child sync and SIGKILLs it `delayMs` after its snapshot is recorded (unless it finished first). */
async function runAndKill(root: string, target: string, delayMs: number): Promise<'killed' | 'finished'> {
  const outcome = await runChildSync(root, target, { killAfterMs: delayMs });
  if (outcome.kind === 'killed') return 'killed';
  if (outcome.code !== 0) throw new Error(`the child sync exited ${outcome.code}: ${outcome.stderr}`);
  return 'finished';
}

it(`SIGKILL at a random point, ${ROUNDS} times, each followed by a resume: exact images, only referenced snapshots left`, async () => {
  const root = join(dir.path, 'platform');
  const target = join(dir.path, 'target');
  const platform = new FilePlatform(root, { disks: KILL_TEST_DISKS });
  const session = await platform.connector().connect({ name: 'parent' });
  let seed = 1;
  let x = 12345;
  const random = () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
  const outcomes: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // The platform's disks change between rounds: data written, some of it freed again.
    for (const [id, size] of Object.entries(KILL_TEST_DISKS)) {
      const blocks = size / GRAIN;
      for (let i = 0; i < 6; i++) {
        const at = Math.floor(random() * blocks) * GRAIN;
        platform.write(id, at, round % 3 === 2 && i < 2 ? new Uint8Array(GRAIN) : randomBytes(GRAIN, seed++));
      }
    }
    outcomes.push(await runAndKill(root, target, Math.floor(random() * 250)));
    const resumed = await syncHost({ session, platform: 'file-platform', hostId: 'h1', target });
    expect(resumed.ok, `round ${round}`).toBe(true);
    for (const id of Object.keys(KILL_TEST_DISKS)) {
      const image = await readFile(join(target, imageFileName(id)));
      expect(Buffer.compare(image, platform.read(id)), `round ${round}, disk ${id}`).toBe(0);
    }
    const state = await loadSyncState(target);
    const referenced = [...new Set(Object.values(state!.disks).map((d) => d.snapshotId))].sort();
    expect(platform.snapshotIds(), `round ${round}`).toEqual(referenced);
    expect(state!.pending).toBeUndefined();
  }
  // The random points hit both the middle of a sync and, now and then, after its end.
  expect(outcomes.filter((o) => o === 'killed').length).toBeGreaterThan(ROUNDS / 2);
}, 120_000);

// With verifyTarget 'manifest', the resume of an incremental must prove every chunk it writes in part.
// The chunks its killed run began writing hold the base, the new bytes or (rarely) a torn mix: the
// run's intent log lets the resume prove the first two, so it stays an incremental.
const MANIFEST_ROUNDS = 12;
const MANIFEST_DISKS: Record<string, number> = { 'disk-a': 2 << 20, 'disk/b': 2 << 20 };
const MANIFEST_CHUNK = 256 << 10;

it(`SIGKILL in the middle of an incremental whose changes are smaller than a chunk, ${MANIFEST_ROUNDS} times, with verifyTarget 'manifest': the resumes stay incrementals (but for a chunk the kill tore) and the images are exact`, async () => {
  const root = join(dir.path, 'platform-manifest');
  const target = join(dir.path, 'target-manifest');
  const platform = new FilePlatform(root, { disks: MANIFEST_DISKS });
  const session = await platform.connector().connect({ name: 'parent' });
  const options = { verifyTarget: 'manifest', transfer: { chunkSizeBytes: MANIFEST_CHUNK } } as const;
  let seed = 1000;
  for (const [id, size] of Object.entries(MANIFEST_DISKS)) platform.write(id, 0, randomBytes(size, seed++));
  const first = await syncHost({ session, platform: 'file-platform', hostId: 'h1', target, ...options });
  expect(first.ok).toBe(true);
  let x = 4242;
  const random = () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
  let killedInTheMiddle = 0;
  let stayedIncremental = 0;
  for (let round = 0; round < MANIFEST_ROUNDS; round++) {
    // One grain in each of 6 chunks of each disk: every chunk changed is written in part.
    for (const [id, size] of Object.entries(MANIFEST_DISKS)) {
      const chunks = size / MANIFEST_CHUNK;
      for (let chunk = 0; chunk < 6; chunk++) {
        const at = ((round + chunk) % chunks) * MANIFEST_CHUNK + Math.floor(random() * 4) * GRAIN;
        platform.write(id, at, randomBytes(GRAIN, seed++));
      }
    }
    const outcome = await runChildSync(root, target, {
      disks: MANIFEST_DISKS,
      verifyTarget: 'manifest',
      chunkSizeBytes: MANIFEST_CHUNK,
      killAfterMs: 20 + Math.floor(random() * 150),
    });
    const resumed = await syncHost({ session, platform: 'file-platform', hostId: 'h1', target, ...options });
    expect(resumed.ok, `round ${round}`).toBe(true);
    for (const id of Object.keys(MANIFEST_DISKS)) {
      const image = await readFile(join(target, imageFileName(id)));
      expect(Buffer.compare(image, platform.read(id)), `round ${round}, disk ${id}`).toBe(0);
    }
    if (outcome.kind !== 'killed' || !resumed.resumed) continue;
    killedInTheMiddle++;
    if (resumed.warnings.length === 0) {
      expect(
        resumed.disks.map((d) => d.mode),
        `round ${round}`,
      ).toEqual(['incremental', 'incremental']);
      stayedIncremental++;
    } else {
      // A kill that lands inside a write can tear a chunk: that disk is synced in full, as it must be.
      expect([...new Set(resumed.warnings.map((w) => w.code))], `round ${round}`).toEqual(['target-changed']);
    }
  }
  // A torn chunk needs the kill inside one 64 KiB write: at most one round of these.
  expect(stayedIncremental).toBeGreaterThanOrEqual(killedInTheMiddle - 1);
  expect(killedInTheMiddle).toBeGreaterThan(MANIFEST_ROUNDS / 2);
}, 120_000);
