import { createProxyScheduler, type SyncTask } from '@syncproxy/core';
import { createPostgresStateStore } from '@syncproxy/state-postgres';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NodeProcess } from './fixtures/node-process.js';
import { freshSchema, type PostgresServer, startPostgres, stopPostgres } from './fixtures/postgres-server.js';

let server: PostgresServer;
const nodes: NodeProcess[] = [];
beforeAll(async () => {
  server = await startPostgres();
});
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});
afterAll(async () => {
  await stopPostgres(server);
});

async function startNode(
  schema: string,
  options: { heartbeatTimeoutMs?: number; heartbeats?: string[] } = {},
) {
  const node = new NodeProcess();
  nodes.push(node);
  await node.request({
    op: 'init',
    connection: { ...server.connection, maxConnections: 4 },
    schema,
    heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? 3_600_000,
    heartbeats: options.heartbeats ?? [],
    heartbeatEveryMs: 200,
  });
  return node;
}

const ids = (n: number, prefix = 'p') =>
  Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(2, '0')}`);
const tasks = (prefix: string, n: number, extra: Partial<SyncTask> = {}): SyncTask[] =>
  Array.from({ length: n }, (_, i) => ({
    id: `${prefix}${i}`,
    platformId: 'oci-fra',
    mountSlots: 1,
    ...extra,
  }));

/** The state as one more node sees it, and the rows' own consistency: counters equal to the assignments they count. */
async function inspect(schema: string) {
  const store = await createPostgresStateStore({ connection: server.connection, schema });
  const scheduler = createProxyScheduler({ store, heartbeatTimeoutMs: 3_600_000 });
  const proxies = await scheduler.listProxies();
  const assignments = await scheduler.listAssignments();
  await scheduler.close();
  await store.close();
  const client = new pg.Client(server.connection);
  await client.connect();
  const mismatched = await client.query(
    `SELECT p.id FROM ${schema}.proxies p
       LEFT JOIN (SELECT proxy_id, count(*)::int AS n, sum((task->>'mountSlots')::int)::int AS slots
                  FROM ${schema}.assignments GROUP BY proxy_id) a ON a.proxy_id = p.id
      WHERE p.tasks <> coalesce(a.n, 0) OR p.mount_slots_used <> coalesce(a.slots, 0)`,
  );
  await client.end();
  return { proxies, assignments, mismatched: mismatched.rows.map((r) => r.id as string) };
}

describe('schedulers in several processes on one database', () => {
  it('fills exactly 10 x 50 slots from 1,000 concurrent assigns through two processes; the other 500 are all full', async () => {
    const schema = freshSchema('fill');
    const [a, b] = [await startNode(schema), await startNode(schema)];
    await a!.request({ op: 'register', ids: ids(10), platformId: 'oci-fra', maxMountedDisks: 50 });
    const all = tasks('t', 1_000);
    await Promise.all([
      a!.request({ op: 'assign', tasks: all.filter((_, i) => i % 2 === 0) }),
      b!.request({ op: 'assign', tasks: all.filter((_, i) => i % 2 === 1) }),
    ]);
    const acks = [...a!.acks(), ...b!.acks()];
    expect(acks).toHaveLength(1_000);
    expect(acks.filter((r) => r.proxyId !== undefined)).toHaveLength(500);
    const refused = acks.filter((r) => r.error !== undefined);
    expect(refused.map((r) => [r.error?.code, r.error?.reason])).toEqual(
      Array(500).fill(['no-capacity', 'all-full']),
    );
    expect(refused[0]?.error?.message).toBe(
      `assign refused: all 10 healthy proxies bound to platform oci-fra are full: task ${refused[0]?.taskId} needs 1 mount slot, the most free on one proxy is 0 (0 down)`,
    );
    // Which process placed how many depends on scheduling (on a loaded machine one may finish
    // first); what must hold is the total, checked above, and the stored loads below.
    const state = await inspect(schema);
    expect(state.proxies.map((p) => p.load)).toEqual(
      Array(10).fill({ tasks: 50, mountSlotsUsed: 50, mountSlotsFree: 0 }),
    );
    expect(state.assignments).toHaveLength(500);
    expect(state.mismatched).toEqual([]);
  });

  it('loses and doubles no assignment when one process is SIGKILLed in the middle of its assigns, 10 times', async () => {
    const schema = freshSchema('kill');
    const steady = await startNode(schema);
    await steady.request({ op: 'register', ids: ids(10), platformId: 'oci-fra', maxMountedDisks: 150 });
    const sent = new Map<string, SyncTask>();
    // The next victim starts while this round runs: a node takes a second or two to start.
    let nextVictim = startNode(schema);
    for (let round = 0; round < 10; round++) {
      const victim = await nextVictim;
      if (round < 9) nextVictim = startNode(schema);
      const mine = tasks(`k${round}-`, 100, { checkpointRef: `ckpt/${round}` });
      const theirs = tasks(`s${round}-`, 40);
      for (const t of [...mine, ...theirs]) sent.set(t.id, t);
      const someAcked = victim.next((r) => r.type === 'ack' && victim.acks().length >= 5);
      victim.send({ op: 'assign', tasks: mine, oneByOne: true });
      const steadyDone = steady.request({ op: 'assign', tasks: theirs });
      await someAcked;
      await victim.kill();
      await steadyDone;
      // What the killed node acknowledged must be there; what it did not may or may not be, but whole.
      const acked = victim.acks().filter((r) => r.proxyId !== undefined);
      expect(acked.length).toBeGreaterThanOrEqual(5);
      expect(acked.length).toBeLessThan(100);
      const state = await inspect(schema);
      const byTask = new Map(state.assignments.map((x) => [x.task.id, x]));
      for (const ack of acked) expect(byTask.get(ack.taskId)?.proxyId).toBe(ack.proxyId);
      expect(state.mismatched).toEqual([]);
    }
    const state = await inspect(schema);
    for (const ack of steady.acks()) expect(ack.proxyId).toBeDefined();
    const byTask = new Map(state.assignments.map((x) => [x.task.id, x]));
    for (const ack of steady.acks()) expect(byTask.get(ack.taskId)?.proxyId).toBe(ack.proxyId);
    // A replay of the committed operations: each stored assignment, applied to empty proxies, gives the stored loads.
    const replay = new Map(state.proxies.map((p) => [p.id, { tasks: 0, mountSlotsUsed: 0 }]));
    for (const x of state.assignments) {
      expect(x.task).toEqual(sent.get(x.task.id));
      const load = replay.get(x.proxyId)!;
      load.tasks += 1;
      load.mountSlotsUsed += x.task.mountSlots;
    }
    expect(
      state.proxies.map((p) => ({ tasks: p.load.tasks, mountSlotsUsed: p.load.mountSlotsUsed })),
    ).toEqual([...replay.values()]);
    expect(new Set(state.assignments.map((x) => x.task.id)).size).toBe(state.assignments.length);
  });

  it('fails a silent proxy over exactly once while 3 processes watch, every moved task keeping its checkpoint', async () => {
    const schema = freshSchema('failover');
    const timeout = 3_000;
    // All three watch from the start; one of them also heart-beats p2 and p3 (p1 stays silent).
    const watchers = [
      await startNode(schema, { heartbeatTimeoutMs: timeout, heartbeats: ['p2', 'p3'] }),
      await startNode(schema, { heartbeatTimeoutMs: timeout }),
      await startNode(schema, { heartbeatTimeoutMs: timeout }),
    ];
    const setup = watchers[0]!;
    await setup.request({ op: 'register', ids: ['p1'], platformId: 'oci-fra', maxMountedDisks: 50 });
    await setup.request({
      op: 'assign',
      tasks: tasks('t', 6).map((t) => ({ ...t, checkpointRef: `ckpt/${t.id}` })),
    });
    await setup.request({ op: 'register', ids: ['p2', 'p3'], platformId: 'oci-fra', maxMountedDisks: 50 });
    await Promise.all(
      watchers.map((n) =>
        n.events().some((e) => e.type === 'failed-over')
          ? undefined
          : n.next((r) => r.type === 'event' && r.event.type === 'failed-over', 30_000),
      ),
    );
    const stats = await Promise.all(watchers.map((n) => n.request({ op: 'stats' })));
    const decided = stats.map((s) => (s.type === 'stats' ? s.failoversDecided : -1));
    expect(decided.reduce((x, y) => x + y, 0)).toBe(1);
    // Every node heard of it once: the one that decided from its own commit, the others by NOTIFY.
    for (const n of watchers) expect(n.events().filter((e) => e.type === 'failed-over')).toHaveLength(1);
    for (const s of stats) expect(s.type === 'stats' && s.isListening).toBe(true);
    const state = await inspect(schema);
    expect(state.assignments.map((x) => [x.task.id, x.task.checkpointRef, x.failedOverFrom])).toEqual(
      ['t0', 't1', 't2', 't3', 't4', 't5'].map((id) => [id, `ckpt/${id}`, 'p1']),
    );
    expect(new Set(state.assignments.map((x) => x.proxyId))).toEqual(new Set(['p2', 'p3']));
    expect(state.proxies.find((p) => p.id === 'p1')?.health).toBe('down');
  });
});
