import { createManualClock, type ProxyScheduler, type SchedulerEvent } from '@syncproxy/core';
import { describe, expect, it } from 'vitest';
import { rejection, type SchedulerSuiteContext } from './suite-context.js';

/** Registration, settings, bindings and the unbind and delete rules. */
export function describeRules(suite: SchedulerSuiteContext): void {
  async function setup(): Promise<{ scheduler: ProxyScheduler; events: SchedulerEvent[] }> {
    const scheduler = await suite.newScheduler({
      clock: createManualClock(1_000),
      heartbeatTimeoutMs: 30_000,
    });
    const events: SchedulerEvent[] = [];
    scheduler.on((e) => events.push(e));
    return { scheduler, events };
  }

  describe('proxy registration and settings', () => {
    it('registers a proxy with the products defaults: 600 s HTTP timeout, 50 mount slots', async () => {
      const { scheduler } = await setup();
      const info = await scheduler.registerProxy({ id: 'p1', address: '10.0.0.5' });
      expect(info).toEqual({
        id: 'p1',
        name: 'p1',
        address: '10.0.0.5',
        settings: { httpTimeoutSec: 600, maxMountedDisks: 50 },
        health: 'healthy',
        registeredAt: 1_000,
        lastHeartbeatAt: 1_000,
        bindings: [],
        load: { tasks: 0, mountSlotsUsed: 0, mountSlotsFree: 50 },
        warnings: [],
      });
      expect(await scheduler.getProxy('p1')).toEqual(info);
    });

    it('accepts maxMountedDisks up to 150 without force and without a warning', async () => {
      const { scheduler } = await setup();
      const info = await scheduler.registerProxy({
        id: 'p1',
        settings: { maxMountedDisks: 150, httpTimeoutSec: 1200 },
      });
      expect(info.settings).toEqual({ httpTimeoutSec: 1200, maxMountedDisks: 150 });
      expect(info.warnings).toEqual([]);
    });

    it('refuses maxMountedDisks above 150 unless forced', async () => {
      const { scheduler } = await setup();
      const error = await rejection(
        scheduler.registerProxy({ id: 'p1', settings: { maxMountedDisks: 151 } }),
      );
      expect(error.code).toBe('config');
      expect(error.message).toBe(
        'invalid proxy settings: maxMountedDisks: 151 is above the recommended maximum of 150 (it needs a bigger proxy); pass { force: true } to accept it',
      );
      expect(await scheduler.listProxies()).toEqual([]);
    });

    it('accepts maxMountedDisks above 150 when forced, and the proxy carries a warning', async () => {
      const { scheduler } = await setup();
      const info = await scheduler.registerProxy({
        id: 'p1',
        settings: { maxMountedDisks: 200 },
        force: true,
      });
      expect(info.settings.maxMountedDisks).toBe(200);
      expect(info.load.mountSlotsFree).toBe(200);
      expect(info.warnings).toEqual([
        {
          code: 'mount-slots-above-recommended',
          message:
            'maxMountedDisks 200 is above the recommended maximum of 150: the proxy needs the CPU, memory and attach limits for it',
        },
      ]);
    });

    it('refuses maxMountedDisks above 1024 even when forced', async () => {
      const { scheduler } = await setup();
      const error = await rejection(
        scheduler.registerProxy({ id: 'p1', settings: { maxMountedDisks: 1025 }, force: true }),
      );
      expect(error.code).toBe('config');
      expect(error.message).toBe(
        'invalid proxy registration: settings.maxMountedDisks: must be at most 1024, even with force',
      );
    });

    it.each([
      [{ httpTimeoutSec: 0 }, 'invalid proxy settings: httpTimeoutSec: Too small: expected number to be >=1'],
      [{ httpTimeoutSec: 86_401 }, 'invalid proxy settings: httpTimeoutSec: must be at most 86400 (one day)'],
      [
        { httpTimeoutSec: 1.5 },
        'invalid proxy settings: httpTimeoutSec: Invalid input: expected int, received number',
      ],
      [
        { maxMountedDisks: -1 },
        'invalid proxy settings: maxMountedDisks: Too small: expected number to be >=0',
      ],
      [{ retries: 3 }, 'invalid proxy settings: (root): Unrecognized key: "retries"'],
    ])('updateSettings refuses %j', async (patch, message) => {
      const { scheduler } = await setup();
      await scheduler.registerProxy({ id: 'p1' });
      const error = await rejection(scheduler.updateSettings('p1', patch as never));
      expect(error.code).toBe('config');
      expect(error.message).toBe(message);
      expect((await scheduler.getProxy('p1')).settings).toEqual({ httpTimeoutSec: 600, maxMountedDisks: 50 });
    });

    it('updateSettings changes only the fields given; above 150 needs force', async () => {
      const { scheduler } = await setup();
      await scheduler.registerProxy({ id: 'p1' });
      expect((await scheduler.updateSettings('p1', { httpTimeoutSec: 900 })).settings).toEqual({
        httpTimeoutSec: 900,
        maxMountedDisks: 50,
      });
      const refused = await rejection(scheduler.updateSettings('p1', { maxMountedDisks: 300 }));
      expect(refused.code).toBe('config');
      const forced = await scheduler.updateSettings('p1', { maxMountedDisks: 300 }, { force: true });
      expect(forced.settings).toEqual({ httpTimeoutSec: 900, maxMountedDisks: 300 });
      expect(forced.warnings.map((w) => w.code)).toEqual(['mount-slots-above-recommended']);
    });

    it('refuses to lower maxMountedDisks below the slots in use', async () => {
      const { scheduler } = await setup();
      await scheduler.registerProxy({ id: 'p1' });
      await scheduler.bind('p1', 'oci-fra');
      await scheduler.assign({ id: 't1', platformId: 'oci-fra', mountSlots: 3 });
      const error = await rejection(scheduler.updateSettings('p1', { maxMountedDisks: 2 }));
      expect(error.code).toBe('conflict');
      expect(error.message).toBe(
        'update refused: proxy p1 has 3 mount slots in use, more than the new maxMountedDisks 2 (release tasks first)',
      );
      expect((await scheduler.updateSettings('p1', { maxMountedDisks: 3 })).load).toEqual({
        tasks: 1,
        mountSlotsUsed: 3,
        mountSlotsFree: 0,
      });
    });

    it('refuses a second registration of the same id', async () => {
      const { scheduler } = await setup();
      await scheduler.registerProxy({ id: 'p1', name: 'proxy one' });
      const error = await rejection(scheduler.registerProxy({ id: 'p1' }));
      expect(error.code).toBe('conflict');
      expect(error.message).toBe(
        'register refused: proxy p1 is already registered (as "proxy one"); update its settings, or remove it first',
      );
    });

    it.each([
      [
        '',
        'invalid proxy registration: id: Too small: expected string to have >=1 characters; id: must start with a letter or digit and hold only letters, digits and . _ : @ -',
      ],
      [
        '-p1',
        'invalid proxy registration: id: must start with a letter or digit and hold only letters, digits and . _ : @ -',
      ],
      [
        'p 1',
        'invalid proxy registration: id: must start with a letter or digit and hold only letters, digits and . _ : @ -',
      ],
      ['x'.repeat(129), 'invalid proxy registration: id: Too big: expected string to have <=128 characters'],
    ])('refuses the proxy id %j', async (id, message) => {
      const { scheduler } = await setup();
      const error = await rejection(scheduler.registerProxy({ id }));
      expect(error.code).toBe('config');
      expect(error.message).toBe(message);
    });

    it('says which proxy is unknown, with a not-found error', async () => {
      const { scheduler } = await setup();
      const cases: [Promise<unknown>, string][] = [
        [scheduler.getProxy('ghost'), 'no proxy ghost is registered'],
        [scheduler.heartbeat('ghost'), 'heartbeat refused: no proxy ghost is registered'],
        [scheduler.bind('ghost', 'aws-sg'), 'bind refused: no proxy ghost is registered'],
        [scheduler.unbind('ghost', 'aws-sg'), 'unbind refused: no proxy ghost is registered'],
        [scheduler.removeProxy('ghost'), 'remove refused: no proxy ghost is registered'],
        [scheduler.updateSettings('ghost', {}), 'update refused: no proxy ghost is registered'],
        [scheduler.release('t9'), 'release refused: task t9 is not assigned'],
        [scheduler.getAssignment('t9'), 'task t9 is not assigned'],
      ];
      for (const [promise, message] of cases) {
        const error = await rejection(promise);
        expect([error.code, error.message]).toEqual(['not-found', message]);
      }
    });
  });

  describe('bindings', () => {
    it('binds one proxy to many platforms and many proxies to one platform', async () => {
      const { scheduler } = await setup();
      await scheduler.registerProxy({ id: 'p1' });
      await scheduler.registerProxy({ id: 'p2' });
      await scheduler.bind('p1', 'vmware-dc1');
      await scheduler.bind('p1', 'aws-sg');
      await scheduler.bind('p2', 'aws-sg');
      await scheduler.bind('p1', 'aws-sg');
      const proxies = await scheduler.listProxies();
      expect(proxies.map((p) => [p.id, p.bindings])).toEqual([
        ['p1', ['aws-sg', 'vmware-dc1']],
        ['p2', ['aws-sg']],
      ]);
    });

    it('refuses to unbind a proxy from a platform it has tasks of, naming the count', async () => {
      const { scheduler } = await setup();
      await scheduler.registerProxy({ id: 'p1' });
      await scheduler.bind('p1', 'aws-sg');
      await scheduler.bind('p1', 'vmware-dc1');
      for (const id of ['t1', 't2', 't3'])
        await scheduler.assign({ id, platformId: 'aws-sg', mountSlots: 0 });
      const error = await rejection(scheduler.unbind('p1', 'aws-sg'));
      expect(error.code).toBe('conflict');
      expect(error.message).toBe(
        'unbind refused: proxy p1 has 3 tasks on platform aws-sg (release them first)',
      );
      expect(error.details).toEqual({ proxyId: 'p1', platformId: 'aws-sg', tasks: 3 });
      // Tasks of one platform do not hold the binding of another.
      await scheduler.unbind('p1', 'vmware-dc1');
      await scheduler.release('t1');
      await scheduler.release('t2');
      const one = await rejection(scheduler.unbind('p1', 'aws-sg'));
      expect(one.message).toBe('unbind refused: proxy p1 has 1 task on platform aws-sg (release them first)');
      await scheduler.release('t3');
      await scheduler.unbind('p1', 'aws-sg');
      expect((await scheduler.getProxy('p1')).bindings).toEqual([]);
    });

    it('refuses to unbind a platform the proxy is not bound to', async () => {
      const { scheduler } = await setup();
      await scheduler.registerProxy({ id: 'p1' });
      const error = await rejection(scheduler.unbind('p1', 'aws-sg'));
      expect([error.code, error.message]).toEqual([
        'not-found',
        'unbind refused: proxy p1 is not bound to platform aws-sg',
      ]);
    });

    it('refuses to remove a proxy that has any binding, naming them', async () => {
      const { scheduler } = await setup();
      await scheduler.registerProxy({ id: 'p1' });
      await scheduler.bind('p1', 'oci-fra');
      await scheduler.bind('p1', 'aws-sg');
      const two = await rejection(scheduler.removeProxy('p1'));
      expect(two.code).toBe('conflict');
      expect(two.message).toBe(
        'remove refused: proxy p1 is bound to 2 platforms (aws-sg, oci-fra); unbind them first',
      );
      await scheduler.unbind('p1', 'aws-sg');
      const one = await rejection(scheduler.removeProxy('p1'));
      expect(one.message).toBe('remove refused: proxy p1 is bound to 1 platform (oci-fra); unbind it first');
      await scheduler.unbind('p1', 'oci-fra');
      await scheduler.removeProxy('p1');
      expect(await scheduler.listProxies()).toEqual([]);
    });
  });

  describe('events', () => {
    it('publishes assigned and released with the assignment', async () => {
      const { scheduler, events } = await setup();
      await scheduler.registerProxy({ id: 'p1' });
      await scheduler.bind('p1', 'oci-fra');
      const task = { id: 't1', platformId: 'oci-fra', mountSlots: 2, checkpointRef: 'ckpt/t1' };
      const assignment = await scheduler.assign(task);
      expect(assignment).toEqual({ task, proxyId: 'p1', assignedAt: 1_000 });
      await scheduler.release('t1');
      expect(events).toEqual([
        { type: 'assigned', assignment },
        { type: 'released', assignment },
      ]);
    });

    it('keeps publishing to other listeners when one throws, and stops after unsubscribe', async () => {
      const { scheduler, events } = await setup();
      const unsubscribe = scheduler.on(() => {
        throw new Error('listener bug');
      });
      await scheduler.registerProxy({ id: 'p1' });
      await scheduler.bind('p1', 'aws-sg');
      await scheduler.assign({ id: 't1', platformId: 'aws-sg', mountSlots: 0 });
      unsubscribe();
      const seen: string[] = [];
      const off = scheduler.on((e) => seen.push(e.type));
      off();
      await scheduler.release('t1');
      expect(events.map((e) => e.type)).toEqual(['assigned', 'released']);
      expect(seen).toEqual([]);
    });

    it('hands out copies: changing a returned assignment does not change the state', async () => {
      const { scheduler } = await setup();
      await scheduler.registerProxy({ id: 'p1' });
      await scheduler.bind('p1', 'aws-sg');
      const assignment = await scheduler.assign({ id: 't1', platformId: 'aws-sg', mountSlots: 0 });
      assignment.proxyId = 'p9';
      assignment.task.mountSlots = 40;
      const info = await scheduler.getProxy('p1');
      info.bindings.push('x');
      expect(await scheduler.getAssignment('t1')).toEqual({
        task: { id: 't1', platformId: 'aws-sg', mountSlots: 0 },
        proxyId: 'p1',
        assignedAt: 1_000,
      });
      expect((await scheduler.getProxy('p1')).bindings).toEqual(['aws-sg']);
    });

    it('refuses every call after close with an aborted error', async () => {
      const { scheduler } = await setup();
      await scheduler.close();
      const error = await rejection(scheduler.listProxies());
      expect([error.code, error.message]).toEqual(['aborted', 'proxy scheduler is closed']);
    });
  });
}
