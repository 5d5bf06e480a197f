import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type MockAws, startMockAws } from '@syncproxy/connector-aws/mock';
import { SeededRandom } from '@syncproxy/testkit/mock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killLeftoverCli, runSyncproxy } from './cli-process.js';

const MiB = 1024 ** 2;
const BLOCK_PATH = /^\/snapshots\/[^/]+\/blocks\/\d+$/;

let mock: MockAws;
let dir: string;
let configPath: string;

beforeAll(async () => {
  mock = await startMockAws({ region: 'us-east-1', snapshotPollsUntilCompleted: 0 });
  dir = await mkdtemp(join(tmpdir(), 'syncproxy-cli-signals-'));
  configPath = join(dir, 'aws.json');
  await writeFile(configPath, JSON.stringify(mock.config()));
});

afterEach(() => killLeftoverCli());

afterAll(async () => {
  await mock?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('syncproxy signals and bad targets', () => {
  it('SIGTERM stops a sync cleanly and exits 143 (128 + SIGTERM)', async () => {
    const { instance, volumes } = mock.addInstance({ name: 'term-01', volumes: [{ sizeBytes: 64 * MiB }] });
    mock.state.volumes.get(volumes[0]!.id)!.disk.write!(
      0,
      new SeededRandom(3).fill(new Uint8Array(32 * MiB)),
    );
    const slow = mock.delayBlocks(200);
    let terminate: (() => void) | undefined;
    let asked = 0;
    const watch = mock.faults.add({
      kind: 'latency',
      ms: 0,
      when: (request) => {
        if (request.method === 'GET' && BLOCK_PATH.test(request.path) && ++asked === 4) terminate?.();
        return false;
      },
    });
    const run = await runSyncproxy(
      ['sync', '-p', 'aws', '-c', configPath, '--host', instance.id, '--target', join(dir, 'term'), '--json'],
      { onSpawn: (child) => (terminate = () => child.kill('SIGTERM')) },
    );
    slow.remove();
    watch.remove();
    expect(run.code).toBe(143);
    expect(JSON.parse(run.stdout).interrupted).toBe(true);
  });

  it('a target under /proc is refused at once with an io error (exit 1), not a spinning mkdir', async () => {
    const { instance } = mock.addInstance({ name: 'proc-01', volumes: [{ sizeBytes: 4 * MiB }] });
    const run = await runSyncproxy(
      ['sync', '-p', 'aws', '-c', configPath, '--host', instance.id, '--target', '/proc/syncproxy-x/images'],
      {
        onSpawn: (child) => {
          // Unfixed, the CLI spins in mkdir and ignores SIGTERM: end it so the test reports instead of hanging.
          setTimeout(() => child.exitCode === null && child.kill('SIGKILL'), 20_000).unref();
        },
      },
    );
    expect(run.signal).toBeNull();
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('/proc/syncproxy-x');
    expect(run.stderr).toMatch(/\(io\)|io:/);
  });
});
