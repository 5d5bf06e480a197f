import { createManualClock, type ProxyScheduler, type SyncTask } from '@syncproxy/core';
import { describe, expect, it } from 'vitest';
import { rejection, type SchedulerSuiteContext } from './suite-context.js';

/** Per-host connection limits (`ConnectorCapabilities.perHostLimits`), counted across all proxies. */
export function describeHostLimits(suite: SchedulerSuiteContext): void {
  const onHost = (id: string, host: string, connections: number, platformId = 'fc-1'): SyncTask => ({
    id,
    platformId,
    mountSlots: 0,
    platformHost: { id: host, connections },
  });

  async function setup(hostLimits: Parameters<typeof suite.newScheduler>[0]): Promise<ProxyScheduler> {
    const scheduler = await suite.newScheduler({ clock: createManualClock(0), ...hostLimits });
    for (const id of ['p1', 'p2', 'p3']) {
      await scheduler.registerProxy({ id });
      await scheduler.bind(id, 'fc-1');
      await scheduler.bind(id, 'fc-2');
    }
    return scheduler;
  }

  describe('per-host limits', () => {
    it('fills a host up to its limit across all proxies, then refuses naming the host', async () => {
      const scheduler = await setup({ hostLimits: { 'fc-1': { maxConnections: 8 } } });
      const placed: string[] = [];
      for (let i = 0; i < 4; i++) placed.push((await scheduler.assign(onHost(`t${i}`, 'cna-1', 2))).proxyId);
      // The 4 tasks spread over 3 proxies: the limit is the host's, not a proxy's.
      expect(placed).toEqual(['p1', 'p2', 'p3', 'p1']);
      const error = await rejection(scheduler.assign(onHost('t4', 'cna-1', 1)));
      expect([error.code, error.retryable, error.message]).toEqual([
        'no-capacity',
        true,
        'assign refused: host cna-1 of platform fc-1 is full: task t4 needs 1 connection, 8 of its 8 are in use across all proxies (per-host limit; release a task on that host first)',
      ]);
      expect(error.details).toMatchObject({
        reason: 'host-full',
        hostId: 'cna-1',
        hostConnections: 8,
        hostMaxConnections: 8,
      });
    });

    it('counts each host on its own, and a release frees its connections', async () => {
      const scheduler = await setup({ hostLimits: { 'fc-1': { maxConnections: 3 } } });
      await scheduler.assign(onHost('a1', 'cna-1', 3));
      expect((await scheduler.assign(onHost('b1', 'cna-2', 3))).proxyId).toBe('p2');
      expect((await rejection(scheduler.assign(onHost('a2', 'cna-1', 1)))).details).toMatchObject({
        reason: 'host-full',
        hostId: 'cna-1',
      });
      await scheduler.release('a1');
      expect((await scheduler.assign(onHost('a2', 'cna-1', 2))).task.platformHost).toEqual({
        id: 'cna-1',
        connections: 2,
      });
    });

    it('applies a limit only to its platform, and takes a function of the platform id', async () => {
      const scheduler = await setup({
        hostLimits: (platformId) => (platformId === 'fc-2' ? { maxConnections: 1 } : undefined),
      });
      for (let i = 0; i < 5; i++) await scheduler.assign(onHost(`x${i}`, 'cna-1', 4, 'fc-1'));
      await scheduler.assign(onHost('y0', 'cna-1', 1, 'fc-2'));
      const error = await rejection(scheduler.assign(onHost('y1', 'cna-1', 1, 'fc-2')));
      expect(error.message).toBe(
        'assign refused: host cna-1 of platform fc-2 is full: task y1 needs 1 connection, 1 of its 1 are in use across all proxies (per-host limit; release a task on that host first)',
      );
    });

    it('keeps a host at its limit when failover moves its tasks', async () => {
      const clock = createManualClock(0);
      const scheduler = await suite.newScheduler({
        clock,
        heartbeatTimeoutMs: 30_000,
        hostLimits: { 'fc-1': { maxConnections: 4 } },
      });
      for (const id of ['p1', 'p2']) {
        await scheduler.registerProxy({ id });
        await scheduler.bind(id, 'fc-1');
      }
      await scheduler.assign(onHost('t1', 'cna-1', 2));
      await scheduler.assign(onHost('t2', 'cna-1', 2));
      await clock.advance(20_000);
      await scheduler.heartbeat('p2');
      await clock.advance(10_000);
      const moved = await scheduler.listAssignments();
      expect(moved.map((a) => [a.task.id, a.proxyId])).toEqual([
        ['t1', 'p2'],
        ['t2', 'p2'],
      ]);
      expect((await rejection(scheduler.assign(onHost('t3', 'cna-1', 1)))).details).toMatchObject({
        reason: 'host-full',
        hostConnections: 4,
      });
    });

    it('refuses a negative limit as bad configuration, from a record at once, from a function at assign', async () => {
      const fromRecord = await rejection(
        suite.newScheduler({ hostLimits: { 'fc-1': { maxConnections: -1 } } }),
      );
      expect([fromRecord.code, fromRecord.message]).toEqual([
        'config',
        'invalid scheduler options: hostLimits: platform fc-1: maxConnections must be a whole number >= 0',
      ]);
      const scheduler = await setup({ hostLimits: () => ({ maxConnections: 1.5 }) });
      const error = await rejection(scheduler.assign(onHost('t1', 'cna-1', 1)));
      expect([error.code, error.message]).toEqual([
        'config',
        'invalid scheduler options: hostLimits: platform fc-1: maxConnections must be a whole number >= 0',
      ]);
    });
  });
}
