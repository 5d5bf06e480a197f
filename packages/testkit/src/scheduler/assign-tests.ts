import {
  createManualClock,
  type ManualClock,
  type ProxyScheduler,
  type SyncproxyError,
} from '@syncproxy/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rejection, type SchedulerSuiteContext } from './suite-context.js';

/** Placement, refusals and waiting assigns. */
export function describeAssign(suite: SchedulerSuiteContext): void {
  let clock: ManualClock;
  let scheduler: ProxyScheduler;

  beforeEach(async () => {
    clock = createManualClock(0);
    scheduler = await suite.newScheduler({ clock, heartbeatTimeoutMs: 30_000 });
  });
  afterEach(async () => {
    await scheduler.close();
  });

  async function proxies(ids: string[], platformId: string, maxMountedDisks = 50): Promise<void> {
    for (const id of ids) {
      await scheduler.registerProxy({ id, settings: { maxMountedDisks } });
      await scheduler.bind(id, platformId);
    }
  }

  describe('assign', () => {
    it('places each task on the least loaded bound proxy, ties to the lowest id', async () => {
      await proxies(['p3', 'p1', 'p2'], 'aws-sg');
      const placed: string[] = [];
      for (let i = 0; i < 7; i++) {
        placed.push((await scheduler.assign({ id: `t${i}`, platformId: 'aws-sg', mountSlots: 0 })).proxyId);
      }
      expect(placed).toEqual(['p1', 'p2', 'p3', 'p1', 'p2', 'p3', 'p1']);
      await scheduler.release('t1');
      expect((await scheduler.assign({ id: 't7', platformId: 'aws-sg', mountSlots: 0 })).proxyId).toBe('p2');
    });

    it('counts tasks of every platform in a proxy load', async () => {
      await proxies(['p1', 'p2'], 'oci-fra');
      await scheduler.bind('p1', 'aws-sg');
      await scheduler.assign({ id: 'a1', platformId: 'aws-sg', mountSlots: 0 });
      expect((await scheduler.assign({ id: 'o1', platformId: 'oci-fra', mountSlots: 1 })).proxyId).toBe('p2');
    });

    it('breaks equal task counts by mount slots used', async () => {
      await proxies(['p1', 'p2'], 'oci-fra');
      await scheduler.assign({ id: 't1', platformId: 'oci-fra', mountSlots: 4 });
      await scheduler.assign({ id: 't2', platformId: 'oci-fra', mountSlots: 1 });
      expect((await scheduler.assign({ id: 't3', platformId: 'oci-fra', mountSlots: 1 })).proxyId).toBe('p2');
    });

    it('skips proxies without enough free mount slots and proxies not bound to the platform', async () => {
      await proxies(['p1'], 'oci-fra', 2);
      await proxies(['p2'], 'oci-fra', 10);
      await scheduler.registerProxy({ id: 'p0' });
      await scheduler.bind('p0', 'hcs-1');
      await scheduler.assign({ id: 't1', platformId: 'oci-fra', mountSlots: 1 });
      await scheduler.assign({ id: 't2', platformId: 'oci-fra', mountSlots: 1 });
      // p1 and p2 hold one task each and p1 wins ties, but only 1 of its 2 slots is free.
      expect((await scheduler.assign({ id: 't3', platformId: 'oci-fra', mountSlots: 2 })).proxyId).toBe('p2');
      expect((await scheduler.getProxy('p1')).load).toEqual({
        tasks: 1,
        mountSlotsUsed: 1,
        mountSlotsFree: 1,
      });
      expect((await scheduler.getProxy('p2')).load).toEqual({
        tasks: 2,
        mountSlotsUsed: 3,
        mountSlotsFree: 7,
      });
      expect((await scheduler.getProxy('p0')).load.tasks).toBe(0);
    });

    it('keeps the checkpoint reference with the task', async () => {
      await proxies(['p1'], 'hcs-1');
      const task = { id: 't1', platformId: 'hcs-1', mountSlots: 1, checkpointRef: 's3://ckpt/t1.json' };
      expect(await scheduler.assign(task)).toEqual({ task, proxyId: 'p1', assignedAt: 0 });
      expect(await scheduler.listAssignments({ proxyId: 'p1' })).toEqual([
        { task, proxyId: 'p1', assignedAt: 0 },
      ]);
    });

    it('refuses a task that is already assigned', async () => {
      await proxies(['p1', 'p2'], 'aws-sg');
      await scheduler.assign({ id: 't1', platformId: 'aws-sg', mountSlots: 0 });
      const error = await rejection(scheduler.assign({ id: 't1', platformId: 'aws-sg', mountSlots: 0 }));
      expect([error.code, error.message]).toEqual([
        'conflict',
        'assign refused: task t1 is already assigned to proxy p1',
      ]);
    });

    it.each([
      [
        { id: 't1', platformId: 'aws-sg', mountSlots: -1 },
        'invalid task: mountSlots: Too small: expected number to be >=0',
      ],
      [
        { id: 't1', platformId: 'aws-sg', mountSlots: 0.5 },
        'invalid task: mountSlots: Invalid input: expected int, received number',
      ],
      [
        { id: 't1', platformId: 'aws sg', mountSlots: 0 },
        'invalid task: platformId: must start with a letter or digit and hold only letters, digits and . _ : @ -',
      ],
      [
        { id: 't1', platformId: 'aws-sg' },
        'invalid task: mountSlots: Invalid input: expected number, received undefined',
      ],
    ])('refuses the task %j', async (task, message) => {
      const error = await rejection(scheduler.assign(task as never));
      expect([error.code, error.message]).toEqual(['config', message]);
    });
  });

  describe('no capacity', () => {
    it('says no proxy is bound to the platform', async () => {
      await proxies(['p1'], 'aws-sg');
      const error = await rejection(scheduler.assign({ id: 't1', platformId: 'oci-fra', mountSlots: 1 }));
      expect(error.code).toBe('no-capacity');
      expect(error.retryable).toBe(false);
      expect(error.message).toBe(
        'assign refused: no proxy is bound to platform oci-fra (bind one to it first)',
      );
      expect(error.details).toMatchObject({ reason: 'no-proxy-bound', bound: 0 });
    });

    it('says all bound proxies are down, with the count', async () => {
      await proxies(['p1', 'p2'], 'aws-sg');
      await proxies(['p3'], 'oci-fra');
      await clock.advance(29_000);
      await scheduler.heartbeat('p3');
      await clock.advance(1_000);
      const error = await rejection(scheduler.assign({ id: 't1', platformId: 'aws-sg', mountSlots: 0 }));
      expect(error.code).toBe('no-capacity');
      expect(error.retryable).toBe(true);
      expect(error.message).toBe(
        'assign refused: all 2 proxies bound to platform aws-sg are down (no heartbeat for 30000 ms)',
      );
      expect(error.details).toMatchObject({ reason: 'all-down', bound: 2, down: 2, healthy: 0 });
    });

    it('says all healthy bound proxies are full, with counts', async () => {
      await proxies(['p1', 'p2', 'p3'], 'oci-fra', 2);
      await scheduler.assign({ id: 't1', platformId: 'oci-fra', mountSlots: 2 });
      await scheduler.assign({ id: 't2', platformId: 'oci-fra', mountSlots: 1 });
      // p3 stops heart-beating and goes down; p1 is full, p2 has 1 slot free.
      await clock.advance(20_000);
      await scheduler.heartbeat('p1');
      await scheduler.heartbeat('p2');
      await clock.advance(10_000);
      const error = await rejection(scheduler.assign({ id: 't3', platformId: 'oci-fra', mountSlots: 2 }));
      expect(error.code).toBe('no-capacity');
      expect(error.retryable).toBe(true);
      expect(error.message).toBe(
        'assign refused: all 2 healthy proxies bound to platform oci-fra are full: task t3 needs 2 mount slots, the most free on one proxy is 1 (1 down)',
      );
      expect(error.details).toEqual({
        reason: 'all-full',
        taskId: 't3',
        platformId: 'oci-fra',
        mountSlots: 2,
        bound: 3,
        healthy: 2,
        down: 1,
        full: 2,
        maxFreeSlots: 1,
      });
    });

    it('fills exactly 10 x 50 slots from 1,000 concurrent assigns and refuses the other 500 as all full', async () => {
      const ids = Array.from({ length: 10 }, (_, i) => `p${String(i).padStart(2, '0')}`);
      await proxies(ids, 'oci-fra', 50);
      await concurrentFill(scheduler);
    });
  });

  async function concurrentFill(target: ProxyScheduler): Promise<void> {
    const results = await Promise.allSettled(
      Array.from({ length: 1_000 }, (_, i) =>
        target.assign({ id: `t${i}`, platformId: 'oci-fra', mountSlots: 1 }),
      ),
    );
    const placed = results.filter((r) => r.status === 'fulfilled');
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as SyncproxyError] : []));
    expect(placed).toHaveLength(500);
    expect(refused).toHaveLength(500);
    for (const error of refused) {
      const { taskId } = error.details as { taskId: string };
      expect([error.code, error.message]).toEqual([
        'no-capacity',
        `assign refused: all 10 healthy proxies bound to platform oci-fra are full: task ${taskId} needs 1 mount slot, the most free on one proxy is 0 (0 down)`,
      ]);
    }
    const loads = (await target.listProxies()).map((p) => p.load);
    expect(loads).toEqual(
      Array.from({ length: 10 }, () => ({ tasks: 50, mountSlotsUsed: 50, mountSlotsFree: 0 })),
    );
    expect(await target.listAssignments()).toHaveLength(500);
  }

  describe('assign with wait', () => {
    it('waits for a release to free slots, then places the task', async () => {
      await proxies(['p1'], 'oci-fra', 1);
      await scheduler.assign({ id: 't1', platformId: 'oci-fra', mountSlots: 1 });
      const waiting = scheduler.assign(
        { id: 't2', platformId: 'oci-fra', mountSlots: 1 },
        { waitMs: 60_000 },
      );
      await clock.advance(10_000);
      await scheduler.heartbeat('p1');
      await scheduler.release('t1');
      expect(await waiting).toEqual({
        task: { id: 't2', platformId: 'oci-fra', mountSlots: 1 },
        proxyId: 'p1',
        assignedAt: 10_000,
      });
    });

    it('waits for a newly bound proxy', async () => {
      await proxies(['p1'], 'oci-fra', 0);
      await scheduler.registerProxy({ id: 'p2' });
      const waiting = scheduler.assign({ id: 't1', platformId: 'oci-fra', mountSlots: 1 }, { waitMs: 5_000 });
      await scheduler.bind('p2', 'oci-fra');
      expect((await waiting).proxyId).toBe('p2');
    });

    it('serves waiting assigns oldest first', async () => {
      await proxies(['p1'], 'oci-fra', 1);
      await scheduler.assign({ id: 't0', platformId: 'oci-fra', mountSlots: 1 });
      const order: string[] = [];
      const w1 = scheduler
        .assign({ id: 't1', platformId: 'oci-fra', mountSlots: 1 }, { waitMs: 60_000 })
        .then((a) => {
          order.push(a.task.id);
        });
      const w2 = scheduler
        .assign({ id: 't2', platformId: 'oci-fra', mountSlots: 1 }, { waitMs: 60_000 })
        .then((a) => {
          order.push(a.task.id);
        });
      await scheduler.listProxies();
      await scheduler.release('t0');
      await w1;
      await scheduler.release('t1');
      await w2;
      expect(order).toEqual(['t1', 't2']);
    });

    it('gives up after waitMs of clock time with the reason', async () => {
      await proxies(['p1'], 'oci-fra', 1);
      await scheduler.assign({ id: 't1', platformId: 'oci-fra', mountSlots: 1 });
      const waiting = rejection(
        scheduler.assign({ id: 't2', platformId: 'oci-fra', mountSlots: 1 }, { waitMs: 5_000 }),
      );
      await clock.advance(5_000);
      const error = await waiting;
      expect(error.code).toBe('no-capacity');
      expect(error.message).toBe(
        'assign refused after waiting 5000 ms: all 1 healthy proxy bound to platform oci-fra is full: task t2 needs 1 mount slot, the most free on one proxy is 0 (0 down)',
      );
      expect(error.details).toMatchObject({ reason: 'all-full', waitedMs: 5_000 });
      expect(await scheduler.listAssignments()).toHaveLength(1);
    });

    it('stops waiting when the signal aborts', async () => {
      await proxies(['p1'], 'oci-fra', 0);
      const controller = new AbortController();
      const waiting = rejection(
        scheduler.assign(
          { id: 't1', platformId: 'oci-fra', mountSlots: 1 },
          { waitMs: 60_000, signal: controller.signal },
        ),
      );
      await scheduler.listProxies();
      controller.abort();
      const error = await waiting;
      expect([error.code, error.message]).toEqual(['aborted', 'assign aborted']);
      await scheduler.updateSettings('p1', { maxMountedDisks: 5 });
      expect(await scheduler.listAssignments()).toEqual([]);
    });

    it('rejects waiting assigns when the scheduler closes', async () => {
      await proxies(['p1'], 'oci-fra', 0);
      const waiting = rejection(
        scheduler.assign({ id: 't1', platformId: 'oci-fra', mountSlots: 1 }, { waitMs: 60_000 }),
      );
      await scheduler.listProxies();
      await scheduler.close();
      const error = await waiting;
      expect([error.code, error.message]).toEqual(['aborted', 'assign aborted: the scheduler was closed']);
    });

    it('reports no proxy bound when the wait for a platform without proxies ends', async () => {
      const waiting = rejection(
        scheduler.assign({ id: 't1', platformId: 'aws-sg', mountSlots: 0 }, { waitMs: 1_000 }),
      );
      await clock.advance(1_000);
      const error = await waiting;
      expect(error.message).toBe(
        'assign refused after waiting 1000 ms: no proxy is bound to platform aws-sg (bind one to it first)',
      );
    });
  });
}
