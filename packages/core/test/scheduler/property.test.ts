import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createFileStateStore,
  createManualClock,
  createMemoryStateStore,
  createProxyScheduler,
  type ProxyInfo,
  type ProxyScheduler,
  type StateStore,
  SyncproxyError,
} from '@syncproxy/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const TIMEOUT = 30_000;
const PROXIES = ['p0', 'p1', 'p2', 'p3', 'p4'];
const PLATFORMS = ['aws-sg', 'oci-fra', 'hcs-1'];
const TASKS = Array.from({ length: 12 }, (_, i) => `t${i}`);

type Op =
  | { op: 'register'; proxy: number; maxMountedDisks: number }
  | { op: 'bind' | 'unbind'; proxy: number; platform: number }
  | { op: 'remove' | 'heartbeat'; proxy: number }
  | { op: 'assign'; task: number; platform: number; mountSlots: number }
  | { op: 'release'; task: number }
  | { op: 'advance'; ms: number };

const proxy = fc.nat(PROXIES.length - 1);
const platform = fc.nat(PLATFORMS.length - 1);
const task = fc.nat(TASKS.length - 1);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({ op: fc.constant('register' as const), proxy, maxMountedDisks: fc.nat(6) }),
    weight: 2,
  },
  { arbitrary: fc.record({ op: fc.constant('bind' as const), proxy, platform }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('unbind' as const), proxy, platform }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('remove' as const), proxy }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('heartbeat' as const), proxy }), weight: 6 },
  {
    arbitrary: fc.record({ op: fc.constant('assign' as const), task, platform, mountSlots: fc.nat(3) }),
    weight: 6,
  },
  { arbitrary: fc.record({ op: fc.constant('release' as const), task }), weight: 2 },
  {
    arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 20_000 }) }),
    weight: 2,
  },
);

/** Most sequences start from a few registered, bound proxies, so that assigns and failovers have something to work on. */
const setupArb = fc.array(
  fc.record({ maxMountedDisks: fc.nat(6), bindings: fc.subarray([0, 1, 2]), registered: fc.boolean() }),
  { minLength: PROXIES.length, maxLength: PROXIES.length },
);

function setupOps(setup: { maxMountedDisks: number; bindings: number[]; registered: boolean }[]): Op[] {
  return setup.flatMap((p, i) =>
    p.registered
      ? [
          { op: 'register' as const, proxy: i, maxMountedDisks: p.maxMountedDisks },
          ...p.bindings.map((platform) => ({ op: 'bind' as const, proxy: i, platform })),
        ]
      : [],
  );
}

/** The proxy the placement rule picks from a snapshot: healthy, bound, enough free slots, least loaded, lowest id. */
function expectedPick(proxies: ProxyInfo[], platformId: string, mountSlots: number): ProxyInfo | undefined {
  const eligible = proxies.filter(
    (p) => p.health === 'healthy' && p.bindings.includes(platformId) && p.load.mountSlotsFree >= mountSlots,
  );
  eligible.sort(
    (a, b) =>
      a.load.tasks - b.load.tasks || a.load.mountSlotsUsed - b.load.mountSlotsUsed || (a.id < b.id ? -1 : 1),
  );
  return eligible[0];
}

async function checkInvariants(scheduler: ProxyScheduler): Promise<void> {
  const proxies = await scheduler.listProxies();
  const assignments = await scheduler.listAssignments();
  const stranded = await scheduler.listStranded();
  const byId = new Map(proxies.map((p) => [p.id, p]));
  for (const a of assignments) {
    const holder = byId.get(a.proxyId);
    // Never on an unknown, unbound or down proxy.
    expect(holder?.health).toBe('healthy');
    expect(holder?.bindings).toContain(a.task.platformId);
  }
  for (const p of proxies) {
    const mine = assignments.filter((a) => a.proxyId === p.id);
    const used = mine.reduce((sum, a) => sum + a.task.mountSlots, 0);
    // Never overbooked, and the kept counters agree with the assignments.
    expect(used).toBeLessThanOrEqual(p.settings.maxMountedDisks);
    expect(p.load).toEqual({
      tasks: mine.length,
      mountSlotsUsed: used,
      mountSlotsFree: p.settings.maxMountedDisks - used,
    });
  }
  const assigned = new Set(assignments.map((a) => a.task.id));
  for (const s of stranded) expect(assigned.has(s.task.id)).toBe(false);
}

/** What the generated sequences exercised, so a weak generator shows up as a failure rather than a vacuous pass. */
const seen = new Map<string, number>();
const note = (what: string, n = 1): void => {
  seen.set(what, (seen.get(what) ?? 0) + n);
};

async function runSequence(
  scheduler: ProxyScheduler,
  advance: (ms: number) => Promise<void>,
  ops: Op[],
): Promise<void> {
  const off = scheduler.on((e) => {
    if (e.type === 'failed-over') {
      note('moved', e.moved.length);
      note('stranded', e.stranded.length);
    }
  });
  for (const step of ops) {
    const before = await scheduler.listProxies();
    try {
      switch (step.op) {
        case 'register':
          await scheduler.registerProxy({
            id: PROXIES[step.proxy]!,
            settings: { maxMountedDisks: step.maxMountedDisks },
          });
          break;
        case 'bind':
          await scheduler.bind(PROXIES[step.proxy]!, PLATFORMS[step.platform]!);
          break;
        case 'unbind': {
          const id = PROXIES[step.proxy]!;
          const platformId = PLATFORMS[step.platform]!;
          const held = (await scheduler.listAssignments({ proxyId: id, platformId })).length;
          await scheduler.unbind(id, platformId);
          expect(held).toBe(0);
          break;
        }
        case 'remove': {
          const id = PROXIES[step.proxy]!;
          await scheduler.removeProxy(id);
          expect(before.find((p) => p.id === id)?.bindings).toEqual([]);
          break;
        }
        case 'heartbeat':
          await scheduler.heartbeat(PROXIES[step.proxy]!);
          break;
        case 'assign': {
          const platformId = PLATFORMS[step.platform]!;
          const expected = expectedPick(before, platformId, step.mountSlots);
          try {
            const assignment = await scheduler.assign({
              id: TASKS[step.task]!,
              platformId,
              mountSlots: step.mountSlots,
            });
            expect(assignment.proxyId).toBe(expected?.id);
            note('assigned');
          } catch (error) {
            if (SyncproxyError.hasCode(error, 'no-capacity')) {
              expect(expected).toBeUndefined();
              note(String(error.details?.reason));
            }
            throw error;
          }
          break;
        }
        case 'release':
          await scheduler.release(TASKS[step.task]!);
          break;
        case 'advance':
          await advance(step.ms);
          break;
      }
    } catch (error) {
      // Refusals are part of the rules; anything else is a bug.
      if (!SyncproxyError.hasCode(error, 'conflict', 'not-found', 'no-capacity')) throw error;
      if (SyncproxyError.hasCode(error, 'conflict') && step.op === 'unbind') {
        const held = (
          await scheduler.listAssignments({
            proxyId: PROXIES[step.proxy]!,
            platformId: PLATFORMS[step.platform]!,
          })
        ).length;
        expect(held).toBeGreaterThan(0);
      }
      if (SyncproxyError.hasCode(error, 'conflict') && step.op === 'remove') {
        expect(before.find((p) => p.id === PROXIES[step.proxy])?.bindings.length).toBeGreaterThan(0);
      }
    }
    await checkInvariants(scheduler);
  }
  off();
}

async function withStore<T>(kind: 'memory' | 'file', fn: (store: StateStore) => Promise<T>): Promise<T> {
  if (kind === 'memory') return fn(createMemoryStateStore());
  const dir = await mkdtemp(join(tmpdir(), 'syncproxy-prop-'));
  const store = createFileStateStore({ path: join(dir, 'state.json') });
  try {
    return await fn(store);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

describe('scheduler properties', () => {
  it.each([
    ['memory', 150],
    ['file', 12],
  ] as const)(
    'random register/bind/unbind/assign/release/heartbeat/clock sequences never overbook, never use an unbound or down proxy, always pick the least loaded (%s store)',
    async (kind, numRuns) => {
      await fc.assert(
        fc.asyncProperty(setupArb, fc.array(opArb, { minLength: 30, maxLength: 80 }), async (setup, ops) => {
          await withStore(kind, async (store) => {
            const clock = createManualClock(0);
            const scheduler = createProxyScheduler({ store, clock, heartbeatTimeoutMs: TIMEOUT });
            try {
              await runSequence(scheduler, (ms) => clock.advance(ms), [...setupOps(setup), ...ops]);
            } finally {
              await scheduler.close();
            }
          });
        }),
        { numRuns },
      );
      if (kind === 'memory') {
        for (const what of ['assigned', 'moved', 'stranded', 'no-proxy-bound', 'all-down', 'all-full']) {
          expect(seen.get(what) ?? 0, what).toBeGreaterThan(0);
        }
      }
    },
  );

  it('balanced assignment keeps the task counts of eligible proxies within one of each other', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.nat(1), { minLength: 1, maxLength: 80 }),
        async (proxyCount, slots) => {
          const scheduler = createProxyScheduler({
            clock: createManualClock(0),
            heartbeatTimeoutMs: TIMEOUT,
          });
          for (let i = 0; i < proxyCount; i++) {
            await scheduler.registerProxy({ id: `p${i}`, settings: { maxMountedDisks: 80 } });
            await scheduler.bind(`p${i}`, 'oci-fra');
          }
          for (const [i, mountSlots] of slots.entries()) {
            await scheduler.assign({ id: `t${i}`, platformId: 'oci-fra', mountSlots });
            const tasks = (await scheduler.listProxies()).map((p) => p.load.tasks);
            expect(Math.max(...tasks) - Math.min(...tasks)).toBeLessThanOrEqual(1);
          }
          await scheduler.close();
        },
      ),
      { numRuns: 100 },
    );
  });

  it('when slots run out, the proxies that can still take the task stay within one task of each other', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 2, maxLength: 6 }),
        async (capacities) => {
          const scheduler = createProxyScheduler({
            clock: createManualClock(0),
            heartbeatTimeoutMs: TIMEOUT,
          });
          for (const [i, max] of capacities.entries()) {
            await scheduler.registerProxy({ id: `p${i}`, settings: { maxMountedDisks: max } });
            await scheduler.bind(`p${i}`, 'hcs-1');
          }
          const total = capacities.reduce((a, b) => a + b, 0);
          for (let i = 0; i < total; i++) {
            await scheduler.assign({ id: `t${i}`, platformId: 'hcs-1', mountSlots: 1 });
            const proxies = await scheduler.listProxies();
            const open = proxies.filter((p) => p.load.mountSlotsFree > 0).map((p) => p.load.tasks);
            if (open.length > 0) expect(Math.max(...open) - Math.min(...open)).toBeLessThanOrEqual(1);
          }
          const refused = await scheduler
            .assign({ id: 'extra', platformId: 'hcs-1', mountSlots: 1 })
            .catch((e: unknown) => e);
          expect(SyncproxyError.hasCode(refused, 'no-capacity')).toBe(true);
          await scheduler.close();
        },
      ),
      { numRuns: 100 },
    );
  });
});
