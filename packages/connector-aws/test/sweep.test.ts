import { createAwsConnector } from '@syncproxy/connector-aws';
import { type MockAws, startMockAws } from '@syncproxy/connector-aws/mock';
import type { ConnectorSession, Host, SnapshotRef } from '@syncproxy/core';
import { seededBytes, VirtualDisk } from '@syncproxy/testkit/mock';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';

const GIB = 1024 ** 3;
const DAY = 86_400_000;
const T0 = Date.parse('2026-03-01T00:00:00.000Z');

let now = T0;
let aws: MockAws;
let session: ConnectorSession;
let host: Host;

beforeEach(async () => {
  now = T0;
  aws = await startMockAws({ now: () => now });
  const disk = new VirtualDisk({ sizeBytes: GIB });
  disk.write(0, seededBytes(1, 4096));
  aws.addInstance({ name: 'web', volumes: [{ disk }] });
  session = await createAwsConnector({ snapshotWait: { initialDelayMs: 0 } }).connect(aws.config());
  [host] = (await session.listHosts()) as [Host];
});
afterEach(async () => {
  await session.close();
  await aws.close();
});

const snapshotIdOf = (ref: SnapshotRef) => ref.disks[0]!.data.snapshotId as string;

/** Snapshots that look like ours but lack `syncproxy:managed=true`: made by hand, or by another tool. */
function plantLookAlikes(from: string): string[] {
  const original = aws.state.snapshots.get(from)!;
  const untagged = { ...original, id: 'snap-0a0a0a0a0a0a0a0a0', tags: { Name: 'syncproxy snapshot' } };
  const unmanaged = {
    ...original,
    id: 'snap-0b0b0b0b0b0b0b0b0',
    tags: { 'syncproxy:managed': 'false', 'syncproxy:host': host.id },
  };
  aws.state.snapshots.set(untagged.id, untagged);
  aws.state.snapshots.set(unmanaged.id, unmanaged);
  return [untagged.id, unmanaged.id];
}

describe('sweep', () => {
  test('lists and deletes only the tagged snapshots older than olderThan and not kept; look-alikes survive', async () => {
    const old: SnapshotRef[] = [];
    for (let i = 0; i < 6; i++) old.push(await session.createSnapshot(host));
    const lookAlikes = plantLookAlikes(snapshotIdOf(old[0]!));
    now = T0 + 10 * DAY;
    const fresh = await session.createSnapshot(host);
    const oldIds = old.map(snapshotIdOf).sort();
    const olderThan = new Date(T0 + DAY);

    const dry = await session.sweep!({ olderThan, dryRun: true });
    expect(dry.resources).toEqual(
      oldIds.map((id) => ({ kind: 'snapshot', id, createdAt: new Date(T0).toISOString(), deleted: false })),
    );
    expect(aws.state.snapshots.size).toBe(9);

    const kept = snapshotIdOf(old[2]!);
    const swept = await session.sweep!({ olderThan, keep: [old[2]!.id] });
    expect(swept.resources).toEqual(
      oldIds.map((id) => ({
        kind: 'snapshot',
        id,
        createdAt: new Date(T0).toISOString(),
        deleted: id !== kept,
      })),
    );
    expect([...aws.state.snapshots.keys()].sort()).toEqual([kept, snapshotIdOf(fresh), ...lookAlikes].sort());

    const rest = await session.sweep!();
    expect(rest.resources.map((r) => [r.id, r.deleted])).toEqual(
      [kept, snapshotIdOf(fresh)].sort().map((id) => [id, true]),
    );
    expect([...aws.state.snapshots.keys()].sort()).toEqual(lookAlikes.sort());
  });

  test('finds its snapshots with one DescribeSnapshots call filtered by tag on the server', async () => {
    for (let i = 0; i < 6; i++) await session.createSnapshot(host);
    const before = aws.state.stats.requests.DescribeSnapshots ?? 0;
    const report = await session.sweep!({ dryRun: true });
    expect(report.resources).toHaveLength(6);
    expect((aws.state.stats.requests.DescribeSnapshots ?? 0) - before).toBe(1);
  });

  test('refuses an olderThan that is not a time as a config error naming the field', async () => {
    await expect(session.sweep!({ olderThan: 'last week' })).rejects.toMatchObject({
      code: 'config',
      message: 'invalid sweep options: olderThan: must be a Date or an ISO-8601 time (got "last week")',
    });
  });
});
