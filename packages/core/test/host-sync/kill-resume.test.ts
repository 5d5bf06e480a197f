import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { imageFileName, loadSyncState, syncHost } from '../../src/index.js';
import { tempDir } from '../transfer/fixtures/temp-dir.js';
import { FilePlatform, GRAIN, KILL_TEST_DISKS, randomBytes } from './fixtures/file-platform.js';

const packageDir = fileURLToPath(new URL('../..', import.meta.url));
const childScript = fileURLToPath(new URL('./fixtures/sync-child.ts', import.meta.url));
const ROUNDS = 20;

let dir: { path: string; remove: () => Promise<void> };
let child: ChildProcess | undefined;
beforeAll(async () => {
  dir = await tempDir('syncproxy-host-kill-');
});
afterAll(async () => {
  if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null)
    process.kill(child.pid, 'SIGKILL');
  await dir.remove();
});

/** Runs the child sync and SIGKILLs it `delayMs` after its snapshot is recorded (unless it finished first). */
function runAndKill(root: string, target: string, delayMs: number): Promise<'killed' | 'finished'> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', childScript, root, target], {
      cwd: packageDir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    proc.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('snapshot')) setTimeout(() => proc.kill('SIGKILL'), delayMs);
    });
    proc.on('error', reject);
    proc.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve('killed');
      else if (code === 0) resolve('finished');
      else reject(new Error(`the child sync exited ${code}: ${stderr}`));
    });
  });
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
