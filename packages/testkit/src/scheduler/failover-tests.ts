import {
  createManualClock,
  type ManualClock,
  type ProxyScheduler,
  type SchedulerEvent,
  type SyncTask,
} from '@syncproxy/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SchedulerSuiteContext } from './suite-context.js';

/** Heartbeats, proxies going down and their tasks moving. */
export function describeFailover(suite: SchedulerSuiteContext): void {
  const TIMEOUT = 30_000;
  let clock: ManualClock;
  let scheduler: ProxyScheduler;
  let events: SchedulerEvent[];

  beforeEach(async () => {
    clock = createManualClock(0);
    scheduler = await suite.newScheduler({ clock, heartbeatTimeoutMs: TIMEOUT });
    events = [];
    scheduler.on((e) => events.push(e));
  });
  afterEach(async () => {
    await scheduler.close();
  });

  /** Advances the clock in heartbeat periods, with only `alive` heart-beating. */
  async function runFor(ms: number, alive: string[], periodMs = 10_000): Promise<void> {
    for (let t = 0; t < ms; t += periodMs) {
      await clock.advance(Math.min(periodMs, ms - t));
      for (const id of alive) await scheduler.heartbeat(id);
    }
  }

  const task = (id: string, mountSlots = 1, platformId = 'oci-fra'): SyncTask => ({
    id,
    platformId,
    mountSlots,
    checkpointRef: `ckpt/${id}`,
  });

  describe('failover', () => {
    it('moves the tasks of a proxy that stops heart-beating to the other two within one timeout, keeping checkpoints', async () => {
      for (const id of ['p1', 'p2', 'p3']) {
        await scheduler.registerProxy({ id });
        await scheduler.bind(id, 'oci-fra');
      }
      for (let i = 0; i < 6; i++) await scheduler.assign(task(`t${i}`));
      expect((await scheduler.listAssignments({ proxyId: 'p3' })).map((a) => a.task.id)).toEqual([
        't2',
        't5',
      ]);
      events.length = 0;

      // p3's last heartbeat is at 0: the timer alone (no call to the scheduler) fails it over at exactly 30,000.
      await clock.advance(TIMEOUT - 1);
      await scheduler.heartbeat('p1');
      await scheduler.heartbeat('p2');
      expect(events).toEqual([]);
      await clock.advance(1);
      const moved = [
        { task: task('t2'), proxyId: 'p1', assignedAt: TIMEOUT, failedOverFrom: 'p3' },
        { task: task('t5'), proxyId: 'p2', assignedAt: TIMEOUT, failedOverFrom: 'p3' },
      ];
      expect(events).toEqual([
        { type: 'proxy-down', proxyId: 'p3', lastHeartbeatAt: 0 },
        { type: 'failed-over', fromProxyId: 'p3', moved, stranded: [] },
      ]);
      expect(await scheduler.listAssignments({ proxyId: 'p3' })).toEqual([]);
      expect(await scheduler.getAssignment('t2')).toEqual(moved[0]);
      expect((await scheduler.listProxies()).map((p) => [p.id, p.health, p.load.tasks])).toEqual([
        ['p1', 'healthy', 3],
        ['p2', 'healthy', 3],
        ['p3', 'down', 0],
      ]);
    });

    it('never assigns to a down proxy, and takes it back when it heart-beats again', async () => {
      for (const id of ['p1', 'p2']) {
        await scheduler.registerProxy({ id });
        await scheduler.bind(id, 'aws-sg');
      }
      await runFor(TIMEOUT, ['p1']);
      expect((await scheduler.getProxy('p2')).health).toBe('down');
      for (let i = 0; i < 3; i++)
        expect((await scheduler.assign(task(`t${i}`, 0, 'aws-sg'))).proxyId).toBe('p1');
      await scheduler.heartbeat('p2');
      expect(events.filter((e) => e.type === 'proxy-up')).toEqual([{ type: 'proxy-up', proxyId: 'p2' }]);
      expect((await scheduler.getProxy('p2')).health).toBe('healthy');
      expect((await scheduler.assign(task('t3', 0, 'aws-sg'))).proxyId).toBe('p2');
    });

    it('respects mount slots when moving, and lists the tasks that could not move as stranded', async () => {
      await scheduler.registerProxy({ id: 'p1', settings: { maxMountedDisks: 3 } });
      await scheduler.registerProxy({ id: 'p2', settings: { maxMountedDisks: 10 } });
      await scheduler.bind('p1', 'oci-fra');
      await scheduler.bind('p2', 'oci-fra');
      await scheduler.assign(task('a', 2));
      await scheduler.assign(task('b', 4));
      await scheduler.assign(task('c', 3));
      await scheduler.assign(task('d', 2));
      // p1: a(2); p2: b(4), c(3), d(2). Raised to 5, p1 has 3 free when p2 goes down: c fits, b and d do not.
      expect((await scheduler.listAssignments({ proxyId: 'p2' })).map((a) => a.task.id)).toEqual([
        'b',
        'c',
        'd',
      ]);
      await scheduler.updateSettings('p1', { maxMountedDisks: 5 });
      events.length = 0;
      await runFor(TIMEOUT, ['p1']);
      const failedOver = events.find((e) => e.type === 'failed-over');
      expect(failedOver).toEqual({
        type: 'failed-over',
        fromProxyId: 'p2',
        moved: [{ task: task('c', 3), proxyId: 'p1', assignedAt: TIMEOUT, failedOverFrom: 'p2' }],
        stranded: [task('b', 4), task('d', 2)],
      });
      expect((await scheduler.getProxy('p1')).load).toEqual({
        tasks: 2,
        mountSlotsUsed: 5,
        mountSlotsFree: 0,
      });
      expect(await scheduler.listStranded()).toEqual([
        {
          task: task('b', 4),
          fromProxyId: 'p2',
          since: TIMEOUT,
          reason:
            'all 1 healthy proxy bound to platform oci-fra is full: task b needs 4 mount slots, the most free on one proxy is 3 (1 down)',
        },
        {
          task: task('d', 2),
          fromProxyId: 'p2',
          since: TIMEOUT,
          reason:
            'all 1 healthy proxy bound to platform oci-fra is full: task d needs 2 mount slots, the most free on one proxy is 0 (1 down)',
        },
      ]);
      // A stranded task is assigned again like any other, and leaves the stranded list.
      await scheduler.release('a');
      expect((await scheduler.assign(task('d', 2))).proxyId).toBe('p1');
      await scheduler.release('b');
      expect(await scheduler.listStranded()).toEqual([]);
    });

    it('marks several silent proxies down before moving any task, so none moves onto a dying proxy', async () => {
      for (const id of ['p1', 'p2', 'p3']) {
        await scheduler.registerProxy({ id });
        await scheduler.bind(id, 'aws-sg');
      }
      for (let i = 0; i < 3; i++) await scheduler.assign(task(`t${i}`, 0, 'aws-sg'));
      await runFor(TIMEOUT, ['p3']);
      const moved = events.flatMap((e) =>
        e.type === 'failed-over' ? e.moved.map((a) => [a.task.id, a.proxyId]) : [],
      );
      expect(moved).toEqual([
        ['t0', 'p3'],
        ['t1', 'p3'],
      ]);
    });

    it('checkHealth fails over at once and reports what it did', async () => {
      await scheduler.registerProxy({ id: 'p1' });
      await scheduler.registerProxy({ id: 'p2' });
      await scheduler.bind('p1', 'aws-sg');
      await scheduler.bind('p2', 'aws-sg');
      await scheduler.assign(task('t0', 0, 'aws-sg'));
      expect(await scheduler.checkHealth()).toEqual({ down: [], moved: [], stranded: [] });
      // A clock without timers: the sweep happens when the scheduler is next used.
      let now = 0;
      const lazy = await suite.newScheduler({ clock: { now: () => now }, heartbeatTimeoutMs: TIMEOUT });
      await lazy.registerProxy({ id: 'p1' });
      await lazy.registerProxy({ id: 'p2' });
      await lazy.bind('p1', 'aws-sg');
      await lazy.bind('p2', 'aws-sg');
      await lazy.assign(task('t0', 0, 'aws-sg'));
      now = 20_000;
      await lazy.heartbeat('p2');
      now = TIMEOUT;
      expect(await lazy.checkHealth()).toEqual({
        down: ['p1'],
        moved: [{ task: task('t0', 0, 'aws-sg'), proxyId: 'p2', assignedAt: TIMEOUT, failedOverFrom: 'p1' }],
        stranded: [],
      });
      await lazy.close();
    });

    it('sees a proxy as down in reads as soon as its heartbeat time ran out', async () => {
      let now = 0;
      const lazy = await suite.newScheduler({ clock: { now: () => now }, heartbeatTimeoutMs: TIMEOUT });
      await lazy.registerProxy({ id: 'p1' });
      now = TIMEOUT - 1;
      expect((await lazy.getProxy('p1')).health).toBe('healthy');
      now = TIMEOUT;
      expect((await lazy.getProxy('p1')).health).toBe('down');
      await lazy.close();
    });

    it('a late heartbeat counts before the sweep: the proxy keeps its tasks', async () => {
      let now = 0;
      const lazy = await suite.newScheduler({ clock: { now: () => now }, heartbeatTimeoutMs: TIMEOUT });
      await lazy.registerProxy({ id: 'p1' });
      await lazy.registerProxy({ id: 'p2' });
      await lazy.bind('p1', 'aws-sg');
      await lazy.bind('p2', 'aws-sg');
      await lazy.assign(task('t0', 0, 'aws-sg'));
      now = TIMEOUT + 5;
      await lazy.heartbeat('p1');
      expect((await lazy.getAssignment('t0')).proxyId).toBe('p1');
      expect((await lazy.getProxy('p2')).health).toBe('down');
      await lazy.close();
    });
  });
}
