import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  acquireMountSlot,
  createLocalMountSlots,
  createManualClock,
  createProxyScheduler,
  type ManualClock,
  mountSlotsFromScheduler,
  type ProxyScheduler,
} from '../../src/index.js';

const request = (diskId: string) => ({ platform: 'oracle', diskId });

describe('createLocalMountSlots', () => {
  it('refuses the slot above the limit with no-capacity naming the limit', async () => {
    const slots = createLocalMountSlots({ maxMountedDisks: 2 });
    const a = await slots.acquire(request('d1'));
    await slots.acquire(request('d2'));
    const error = await slots.acquire(request('d3')).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'no-capacity',
      retryable: true,
      message:
        'no mount slot for disk d3 of platform oracle: all 2 mount slots of this proxy are in use (maxMountedDisks 2); close readers or raise maxMountedDisks',
    });
    await a.release();
    await a.release();
    expect(slots.inUse).toBe(1);
  });

  it('hands a released slot to the first waiter, and times a waiter out on the clock', async () => {
    const clock = createManualClock();
    const slots = createLocalMountSlots({ maxMountedDisks: 1, waitMs: 1000, clock });
    const held = await slots.acquire(request('d1'));
    const first = slots.acquire(request('d2'));
    const second = slots.acquire(request('d3'));
    second.catch(() => {});
    expect(slots.waiting).toBe(2);
    await held.release();
    const granted = await first;
    expect(slots.inUse).toBe(1);
    await clock.advance(1000);
    await expect(second).rejects.toMatchObject({
      code: 'no-capacity',
      message:
        'no mount slot for disk d3 of platform oracle: all 1 mount slots of this proxy are in use (maxMountedDisks 1) after waiting 1000 ms; close readers or raise maxMountedDisks',
    });
    await granted.release();
    expect(slots.inUse).toBe(0);
    expect(slots.waiting).toBe(0);
  });

  it('stops a wait with aborted when the signal aborts', async () => {
    const slots = createLocalMountSlots({ maxMountedDisks: 1, waitMs: 60_000, clock: createManualClock() });
    await slots.acquire(request('d1'));
    const controller = new AbortController();
    const waiting = slots.acquire({ ...request('d2'), signal: controller.signal });
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'aborted' });
    expect(slots.waiting).toBe(0);
  });

  it('acquireMountSlot uses the given provider, else one process-wide default of 50', async () => {
    const slots = createLocalMountSlots({ maxMountedDisks: 1 });
    const slot = await acquireMountSlot(slots, request('d1'));
    expect(slots.inUse).toBe(1);
    await slot.release();
    const held = [];
    for (let i = 0; i < 50; i++) held.push(await acquireMountSlot(undefined, request(`d${i}`)));
    await expect(acquireMountSlot(undefined, request('d50'))).rejects.toMatchObject({ code: 'no-capacity' });
    for (const s of held) await s.release();
  });
});

describe('mountSlotsFromScheduler', () => {
  let clock: ManualClock;
  let scheduler: ProxyScheduler;
  beforeEach(async () => {
    clock = createManualClock();
    scheduler = createProxyScheduler({ clock });
    await scheduler.registerProxy({ id: 'p1', settings: { maxMountedDisks: 1 } });
    await scheduler.bind('p1', 'oci-fra');
  });
  afterEach(() => scheduler.close());

  it('counts each slot on the proxy and gives it back on release', async () => {
    const slots = mountSlotsFromScheduler(scheduler, { platformId: 'oci-fra', proxyId: 'p1' });
    const slot = await slots.acquire(request('vol-1'));
    expect(slot.proxyId).toBe('p1');
    expect((await scheduler.getProxy('p1')).load).toEqual({ tasks: 1, mountSlotsUsed: 1, mountSlotsFree: 0 });
    await expect(slots.acquire(request('vol-2'))).rejects.toMatchObject({ code: 'no-capacity' });
    await slot.release();
    await slot.release();
    expect((await scheduler.getProxy('p1')).load).toEqual({ tasks: 0, mountSlotsUsed: 0, mountSlotsFree: 1 });
  });

  it('gives back a slot placed on another proxy than its own', async () => {
    await scheduler.registerProxy({ id: 'p0', settings: { maxMountedDisks: 5 } });
    await scheduler.bind('p0', 'oci-fra');
    await scheduler.registerProxy({ id: 'p2' });
    const slots = mountSlotsFromScheduler(scheduler, { platformId: 'oci-fra', proxyId: 'p2' });
    await expect(slots.acquire(request('vol-1'))).rejects.toMatchObject({
      code: 'no-capacity',
      message:
        'no mount slot for disk vol-1 on proxy p2: the scheduler placed it on proxy p0 (proxy p2 is full, down or not bound to platform oci-fra)',
    });
    expect(await scheduler.listAssignments()).toEqual([]);
  });
});
