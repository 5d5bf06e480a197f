import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '@syncproxy/cli';
import { createAwsConnector } from '@syncproxy/connector-aws';
import { type MockAws, startMockAws } from '@syncproxy/connector-aws/mock';
import { createRegistry, type SnapshotRef } from '@syncproxy/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');

let now = T0;
let mock: MockAws;
let dir: string;
let configPath: string;
let old: string[];
let fresh: string;

// A registry whose aws connector does not wait between snapshot polls; the command is the CLI's own.
const registry = createRegistry([createAwsConnector({ snapshotWait: { initialDelayMs: 0 } })]);

async function syncproxy(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(
    args,
    {
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: (t: string) => (stderr += t) },
      cwd: dir,
    },
    { registry },
  );
  return { code, stdout, stderr };
}

beforeAll(async () => {
  mock = await startMockAws({ now: () => now, snapshotPollsUntilCompleted: 0 });
  dir = await mkdtemp(join(tmpdir(), 'syncproxy-cli-sweep-'));
  configPath = join(dir, 'aws.json');
  await writeFile(configPath, JSON.stringify(mock.config()));
  mock.addInstance({ name: 'web', volumes: [{ sizeBytes: 1024 ** 3 }] });
  const session = await registry.get('aws').connect(mock.config());
  const [host] = await session.listHosts();
  const snapshotOf = (ref: SnapshotRef) => ref.disks[0]!.data.snapshotId as string;
  old = [snapshotOf(await session.createSnapshot(host!)), snapshotOf(await session.createSnapshot(host!))];
  now = Date.now();
  fresh = snapshotOf(await session.createSnapshot(host!));
  await session.close();
  // An untagged snapshot as a person would take it: never swept.
  mock.state.snapshots.set('snap-0ffffffffffffffff', {
    ...mock.state.snapshots.get(old[0]!)!,
    id: 'snap-0ffffffffffffffff',
    tags: {},
  });
});

afterAll(async () => {
  await mock?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('syncproxy sweep', () => {
  it('--dry-run lists the tagged snapshots older than 7 days and deletes nothing', async () => {
    const run = await syncproxy(['sweep', '-p', 'aws', '-c', 'aws.json', '--dry-run', '--keep', old[1]!]);
    expect(run).toEqual({
      code: 0,
      stderr: '',
      stdout: [
        '2 resource(s) made by syncproxy on aws older than 7d',
        'KIND      ID                      CREATED                   ACTION',
        `snapshot  ${old[0]}  2026-01-01T00:00:00.000Z  would delete`,
        `snapshot  ${old[1]}  2026-01-01T00:00:00.000Z  kept`,
        'dry run: 1 would be deleted, 1 kept',
        '',
      ].join('\n'),
    });
    expect(mock.state.snapshots.size).toBe(4);
  });

  it('deletes what it lists, and with --older-than 0 everything it tagged, never the untagged snapshot', async () => {
    const run = await syncproxy(['sweep', '-p', 'aws', '-c', 'aws.json', '--older-than', '7d']);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(
      [
        '2 resource(s) made by syncproxy on aws older than 7d',
        'KIND      ID                      CREATED                   ACTION',
        `snapshot  ${old[0]}  2026-01-01T00:00:00.000Z  deleted`,
        `snapshot  ${old[1]}  2026-01-01T00:00:00.000Z  deleted`,
        '2 deleted, 0 kept',
        '',
      ].join('\n'),
    );
    const all = await syncproxy(['sweep', '-p', 'aws', '-c', 'aws.json', '--older-than', '0', '--json']);
    expect(all.code).toBe(0);
    expect(JSON.parse(all.stdout)).toEqual({
      resources: [{ kind: 'snapshot', id: fresh, createdAt: new Date(now).toISOString(), deleted: true }],
    });
    expect([...mock.state.snapshots.keys()]).toEqual(['snap-0ffffffffffffffff']);
  });

  it('refuses an age it cannot read as bad usage (exit 2)', async () => {
    const run = await syncproxy(['sweep', '-p', 'aws', '-c', 'aws.json', '--older-than', 'a week']);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(
      "error: option '--older-than <age>' argument 'a week' is invalid. must be a number and a unit: 90s, 30m, 12h, 7d, 2w (or 0)\n(run syncproxy --help for usage)\n",
    );
  });
});
