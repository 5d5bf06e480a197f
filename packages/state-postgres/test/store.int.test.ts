import { inspect } from 'node:util';
import {
  createProxyScheduler,
  type ProxyScheduler,
  type SchedulerEvent,
  SyncproxyError,
} from '@syncproxy/core';
import { createPostgresStateStore, type PostgresStateStore } from '@syncproxy/state-postgres';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { statements } from '../src/sql.js';
import { freshSchema, type PostgresServer, startPostgres, stopPostgres } from './fixtures/postgres-server.js';

let server: PostgresServer;
const open: { close(): Promise<void> }[] = [];
beforeAll(async () => {
  server = await startPostgres();
});
afterEach(async () => {
  for (const x of open.splice(0).reverse()) await x.close();
});
afterAll(async () => {
  await stopPostgres(server);
});

async function rejection(promise: Promise<unknown>): Promise<SyncproxyError> {
  try {
    await promise;
  } catch (error) {
    if (SyncproxyError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

async function store(schema: string, extra: { notifications?: boolean; pollIntervalMs?: number } = {}) {
  const s = await createPostgresStateStore({
    connection: { ...server.connection, maxConnections: 4 },
    schema,
    ...extra,
  });
  open.push(s);
  return s;
}

function scheduler(s: PostgresStateStore): ProxyScheduler {
  const x = createProxyScheduler({ store: s, heartbeatTimeoutMs: 3_600_000 });
  open.push(x);
  return x;
}

async function sql<T extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client(server.connection);
  await client.connect();
  try {
    return (await client.query<T>(text, params)).rows;
  } finally {
    await client.end();
  }
}

describe('database faults', () => {
  it('a connection terminated mid-transaction gives a retryable network error, nothing applied; the retry books once', async () => {
    const schema = freshSchema('kill');
    const s = scheduler(await store(schema));
    await s.registerProxy({ id: 'p1', settings: { maxMountedDisks: 1 } });
    await s.bind('p1', 'oci-fra');
    // Hold p1's row so the store's transaction stops inside its write, after BEGIN, the lock and the read.
    const blocker = new pg.Client(server.connection);
    await blocker.connect();
    await blocker.query(`BEGIN; SELECT * FROM ${schema}.proxies WHERE id = 'p1' FOR UPDATE`);
    const attempt = rejection(s.assign({ id: 't1', platformId: 'oci-fra', mountSlots: 1 }));
    let pid: number | undefined;
    while (pid === undefined) {
      const rows = await sql<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`,
        [`%INSERT INTO ${schema}.proxies%`],
      );
      pid = rows[0]?.pid;
      if (pid === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    await sql('SELECT pg_terminate_backend($1)', [pid]);
    const error = await attempt;
    await blocker.query('ROLLBACK');
    await blocker.end();
    expect([error.code, error.retryable]).toEqual(['network', true]);
    expect(error.message).toBe(
      `scheduler state on PostgreSQL 127.0.0.1:${server.port}: connection lost during a scheduler update (57P01); it was not applied: retry it`,
    );
    expect(inspect(error, { depth: 10 })).not.toContain(server.password);
    expect(await sql(`SELECT task_id FROM ${schema}.assignments`)).toEqual([]);
    expect((await s.assign({ id: 't1', platformId: 'oci-fra', mountSlots: 1 })).proxyId).toBe('p1');
    expect((await s.getProxy('p1')).load).toEqual({ tasks: 1, mountSlotsUsed: 1, mountSlotsFree: 0 });
    expect(await sql(`SELECT task_id, proxy_id FROM ${schema}.assignments`)).toEqual([
      { task_id: 't1', proxy_id: 'p1' },
    ]);
    expect(await sql(`SELECT tasks, mount_slots_used FROM ${schema}.proxies`)).toEqual([
      { tasks: 1, mount_slots_used: 1 },
    ]);
  });

  it('a server that is down at start-up gives a network error naming host and port, never the password', async () => {
    const down = await import('node:net').then(
      (net) =>
        new Promise<number>((resolve) => {
          const probe = net.createServer().listen(0, '127.0.0.1', () => {
            const { port } = probe.address() as { port: number };
            probe.close(() => resolve(port));
          });
        }),
    );
    for (const connection of [
      { host: '127.0.0.1', port: down, user: 'syncproxy', password: 'not-shown-3b8e', database: 'postgres' },
      { connectionString: `postgres://syncproxy:not-shown-3b8e@127.0.0.1:${down}/postgres` },
    ]) {
      const error = await rejection(createPostgresStateStore({ connection, schema: 'syncproxy' }));
      expect([error.code, error.retryable, error.message]).toEqual([
        'network',
        true,
        `cannot connect to PostgreSQL at 127.0.0.1:${down} for the scheduler state (ECONNREFUSED): is the server running and reachable from here?`,
      ]);
      expect(inspect(error, { depth: 10 })).not.toContain('not-shown-3b8e');
    }
  });

  it('refused credentials give an auth error without the password', async () => {
    const error = await rejection(
      createPostgresStateStore({
        connection: { ...server.connection, password: 'wrong-pw-91c2' },
        schema: 'syncproxy',
      }),
    );
    expect([error.code, error.retryable, error.message]).toEqual([
      'auth',
      false,
      `PostgreSQL at 127.0.0.1:${server.port} refused the credentials of the scheduler state store (28P01): check user and password`,
    ]);
    expect(inspect(error, { depth: 10 })).not.toContain('wrong-pw-91c2');
    expect(inspect(error, { depth: 10 })).not.toContain(server.password);
  });

  it('refuses options with both a pool and a connection, or neither, naming them', async () => {
    const error = await rejection(createPostgresStateStore({ schema: 'x' }));
    expect([error.code, error.message]).toEqual([
      'config',
      'invalid postgres state store options: give exactly one of pool and connection',
    ]);
    const bad = await rejection(
      createPostgresStateStore({ connection: server.connection, schema: 'Bad-Name' }),
    );
    expect(bad.code).toBe('config');
    expect(bad.message).toContain('schema: must be a lower-case SQL identifier');
  });
});

describe('a pool the product owns', () => {
  it('serves the store, and stays open after the store closes', async () => {
    const pool = new pg.Pool({ ...server.connection, max: 3 });
    pool.on('error', () => undefined);
    const schema = freshSchema('pool');
    const s = await createPostgresStateStore({ pool, schema });
    expect(s.server).toBe(`127.0.0.1:${server.port}`);
    const x = createProxyScheduler({ store: s });
    await x.registerProxy({ id: 'p1' });
    await x.close();
    await s.close();
    expect((await pool.query(`SELECT id FROM ${schema}.proxies`)).rows).toEqual([{ id: 'p1' }]);
    await pool.end();
  });
});

describe('schema', () => {
  it('migrates once when 8 nodes start together on an empty database', async () => {
    const schema = freshSchema('mig');
    const stores = await Promise.all(Array.from({ length: 8 }, () => store(schema)));
    expect(stores).toHaveLength(8);
    expect(await sql(`SELECT version, name FROM ${schema}.schema_migrations`)).toEqual([
      { version: 1, name: 'scheduler state' },
    ]);
  });

  it('refuses a schema newer than the package knows', async () => {
    const schema = freshSchema('newer');
    await (await store(schema)).close();
    await sql(`INSERT INTO ${schema}.schema_migrations (version, name) VALUES (99, 'future')`);
    const error = await rejection(createPostgresStateStore({ connection: server.connection, schema }));
    expect([error.code, error.message]).toEqual([
      'unsupported',
      `PostgreSQL at 127.0.0.1:${server.port}: schema ${schema} is at version 99, newer than this package's 1: upgrade @syncproxy/state-postgres`,
    ]);
  });

  it('finds what changed since a version through the changed_in indexes, not a scan', async () => {
    const schema = freshSchema('plan');
    const s = scheduler(await store(schema));
    await Promise.all(Array.from({ length: 3_000 }, (_, i) => s.registerProxy({ id: `p${i}` })));
    await s.bind('p7', 'aws-sg');
    await sql(`ANALYZE ${schema}.proxies; ANALYZE ${schema}.removed; ANALYZE ${schema}.assignments`);
    const [{ version }] = (await sql<{ version: string }>(
      `SELECT version FROM ${schema}.scheduler_meta`,
    )) as [{ version: string }];
    const plan = await sql<{ 'QUERY PLAN': unknown }>(`EXPLAIN (FORMAT JSON) ${statements(schema).delta}`, [
      Number(version) - 1,
    ]);
    const text = JSON.stringify(plan);
    expect(text).toContain('"Index Name":"proxies_changed_in"');
    expect(text).not.toMatch(
      /"Node Type":"Seq Scan","Parent Relationship":"[^"]*","Parallel Aware":false,"Async Capable":false,"Relation Name":"proxies"/,
    );
  });
});

describe('other nodes', () => {
  it('see registrations, removals and re-registrations through the removal markers', async () => {
    const schema = freshSchema('rm');
    const a = scheduler(await store(schema));
    const b = scheduler(await store(schema));
    await a.registerProxy({ id: 'p1', name: 'first' });
    expect((await b.listProxies()).map((p) => p.name)).toEqual(['first']);
    await a.removeProxy('p1');
    expect(await b.listProxies()).toEqual([]);
    await a.registerProxy({ id: 'p1', name: 'second' });
    await a.bind('p1', 'aws-sg');
    expect((await b.listProxies()).map((p) => [p.name, p.bindings])).toEqual([['second', ['aws-sg']]]);
    // The unbind rule holds across nodes: b sees a's task and refuses.
    await a.assign({ id: 't1', platformId: 'aws-sg', mountSlots: 0 });
    expect((await rejection(b.unbind('p1', 'aws-sg'))).message).toBe(
      'unbind refused: proxy p1 has 1 task on platform aws-sg (release them first)',
    );
  });

  for (const notifications of [true, false]) {
    it(`hear of releases and wake their waiting assigns (${notifications ? 'LISTEN/NOTIFY' : 'polling fallback'})`, async () => {
      const schema = freshSchema(notifications ? 'listen' : 'poll');
      const storeA = await store(schema, { notifications, pollIntervalMs: 50 });
      const storeB = await store(schema, { notifications, pollIntervalMs: 50 });
      const a = scheduler(storeA);
      const b = scheduler(storeB);
      const heard: SchedulerEvent[] = [];
      b.on((e) => heard.push(e));
      await a.registerProxy({ id: 'p1', settings: { maxMountedDisks: 1 } });
      await a.bind('p1', 'oci-fra');
      await a.assign({ id: 't1', platformId: 'oci-fra', mountSlots: 1 });
      const waiting = b.assign({ id: 't2', platformId: 'oci-fra', mountSlots: 1 }, { waitMs: 30_000 });
      await new Promise((r) => setTimeout(r, 200));
      await a.release('t1');
      expect((await waiting).proxyId).toBe('p1');
      expect(storeB.isListening).toBe(notifications);
      const types = heard.map((e) => e.type);
      // With LISTEN, a's events reach b's listeners; polling only says "something changed".
      expect(types.filter((t) => t === 'released')).toHaveLength(notifications ? 1 : 0);
      expect(types.filter((t) => t === 'assigned')).toHaveLength(notifications ? 2 : 1);
    });
  }
});
