import { randomUUID } from 'node:crypto';
import {
  emptyState,
  type SchedulerEvent,
  type SchedulerState,
  type StateChange,
  type StateStore,
  type StateUpdate,
  SyncproxyError,
  syncStateIndex,
} from '@syncproxy/core';
import pg, { type Pool, type PoolClient } from 'pg';
import { ChangeFeed, noticePayload } from './change-feed.js';
import {
  type FailurePoint,
  isConnectionLost,
  isSerializationFailure,
  toStoreError,
} from './database-error.js';
import { migrate } from './migrations.js';
import { describeServer, type PostgresStateStoreOptions, parseOptions } from './options.js';
import { applyDelta, assignmentRow, type Delta, proxyRow, strandedRow } from './records.js';
import { type Statements, statements } from './sql.js';

// A serialization failure or deadlock re-runs the batch; the row lock makes them rare, so a few tries suffice.
const MAX_SERIALIZATION_RETRIES = 5;
// At most this many queued updates share one transaction (group commit).
const MAX_BATCH = 1_000;
// Every this many versions, removal markers older than PRUNE_KEEP versions go.
const PRUNE_EVERY = 1_024;
const PRUNE_KEEP = 8_192;

/** A {@link StateStore} on PostgreSQL, and what it knows of its connection. */
export interface PostgresStateStore extends StateStore {
  readonly kind: 'postgres';
  /** `host:port` of the server (never the credentials). */
  readonly server: string;
  /** The schema holding the tables. */
  readonly schema: string;
  /** True while other nodes' changes arrive by `LISTEN/NOTIFY` (false: polling). */
  readonly isListening: boolean;
}

/**
 * Opens the scheduler state in `schema` on PostgreSQL: creates or upgrades its
 * tables (once, under an advisory lock, however many nodes start together) and
 * loads the state. Schedulers on any number of nodes share it: every update is
 * one transaction that holds the state's row lock, so their operations apply
 * one after the other, as on one node.
 *
 * Throws a `network` error naming host and port when the server cannot be
 * reached, `auth` when it refuses the credentials.
 */
export async function createPostgresStateStore(
  options: PostgresStateStoreOptions,
): Promise<PostgresStateStore> {
  const parsed = parseOptions(options);
  const server = describeServer(parsed, options.pool);
  const schema = parsed.schema ?? 'syncproxy';
  let pool = options.pool;
  const ownsPool = pool === undefined;
  if (!pool) {
    const { maxConnections, connectTimeoutMs, ...connection } = parsed.connection ?? {};
    pool = new pg.Pool({
      ...connection,
      max: maxConnections ?? 10,
      connectionTimeoutMillis: connectTimeoutMs ?? 10_000,
    });
    // An idle connection the server dropped: the pool discards it; without a listener the process would crash.
    pool.on('error', () => undefined);
  }
  const store = new Store(
    pool,
    ownsPool,
    server,
    schema,
    parsed.pollIntervalMs ?? 1_000,
    parsed.notifications ?? true,
  );
  try {
    await store.open();
  } catch (error) {
    await store.close().catch(() => undefined);
    throw error;
  }
  return store;
}

interface Cached {
  state: SchedulerState;
  version: number;
}

type Job =
  | {
      kind: 'read';
      run: (state: SchedulerState) => unknown;
      resolve(value: unknown): void;
      reject(error: unknown): void;
    }
  | {
      kind: 'update';
      mutate: (state: SchedulerState) => StateUpdate<unknown>;
      resolve(value: unknown): void;
      reject(error: unknown): void;
    };

class Store implements PostgresStateStore {
  readonly kind = 'postgres' as const;
  readonly #pool: Pool;
  readonly #ownsPool: boolean;
  readonly #sql: Statements;
  readonly #origin = randomUUID();
  readonly #feed: ChangeFeed;
  readonly #queue: Job[] = [];
  #cached: Cached | undefined;
  #running = false;
  #closed = false;

  constructor(
    pool: Pool,
    ownsPool: boolean,
    readonly server: string,
    readonly schema: string,
    pollIntervalMs: number,
    notifications: boolean,
  ) {
    this.#pool = pool;
    this.#ownsPool = ownsPool;
    this.#sql = statements(schema);
    this.#feed = new ChangeFeed({
      pool,
      channel: this.#sql.channel,
      origin: this.#origin,
      pollIntervalMs,
      notifications,
      readVersion: async () => {
        const r = await this.#pool.query<{ version: string }>(
          `SELECT version FROM ${schema}.scheduler_meta WHERE id = 1`,
        );
        return Number(r.rows[0]?.version ?? 0);
      },
    });
  }

  get isListening(): boolean {
    return this.#feed.isListening;
  }

  async open(): Promise<void> {
    const client = await this.#connect('connect');
    try {
      await migrate(client, this.schema);
    } catch (error) {
      client.release(isConnectionLost(error));
      if ((error as { code?: unknown }).code === 'SYNCPROXY_SCHEMA_NEWER') {
        throw new SyncproxyError(`PostgreSQL at ${this.server}: ${(error as Error).message}`, {
          code: 'unsupported',
          retryable: false,
          details: { server: this.server, schema: this.schema },
        });
      }
      throw toStoreError(error, { server: this.server, operation: 'schema migration', at: 'before-commit' });
    }
    client.release();
    await this.read(() => undefined);
  }

  read<T>(view: (state: Readonly<SchedulerState>) => T): Promise<T> {
    return this.#enqueue<T>({ kind: 'read', run: view } as Omit<Job, 'resolve' | 'reject'>);
  }

  update<T>(mutate: (state: SchedulerState) => StateUpdate<T>): Promise<T> {
    return this.#enqueue<T>({ kind: 'update', mutate } as Omit<Job, 'resolve' | 'reject'>);
  }

  watch(listener: (change: StateChange) => void): () => void {
    return this.#feed.watch(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#feed.stop();
    for (const job of this.#queue.splice(0)) job.reject(closedError());
    if (this.#ownsPool) await this.#pool.end().catch(() => undefined);
  }

  #enqueue<T>(job: Omit<Job, 'resolve' | 'reject'>): Promise<T> {
    if (this.#closed) return Promise.reject(closedError());
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ ...job, resolve, reject } as Job);
      if (!this.#running) void this.#drain();
    });
  }

  /**
   * One job at a time in this process, so the cached state is only ever seen
   * between transactions; consecutive updates share one transaction.
   */
  async #drain(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const head = this.#queue[0] as Job;
        if (head.kind === 'read') {
          this.#queue.shift();
          await this.#runRead(head);
          continue;
        }
        let n = 0;
        while (n < this.#queue.length && n < MAX_BATCH && this.#queue[n]?.kind === 'update') n += 1;
        const batch = this.#queue.splice(0, n) as Extract<Job, { kind: 'update' }>[];
        await this.#runBatch(batch);
      }
    } finally {
      this.#running = false;
    }
  }

  async #runRead(job: Extract<Job, { kind: 'read' }>): Promise<void> {
    let state: SchedulerState;
    try {
      state = await this.#refresh(this.#pool, 'read');
    } catch (error) {
      job.reject(toStoreError(error, { server: this.server, operation: 'read', at: 'read' }));
      return;
    }
    try {
      job.resolve(job.run(state));
    } catch (error) {
      job.reject(error);
    }
  }

  /**
   * Brings the cached state up to the committed version through the
   * `changed_in` indexes. For an update, the same round trip opens the
   * transaction and takes the row lock first (simple-query protocol: the
   * version goes in as a literal, it is a number), so the delta it reads is
   * the state no other node can change until COMMIT.
   */
  async #refresh(db: Pool | PoolClient, why: 'read' | 'update'): Promise<SchedulerState> {
    const cached = this.#cached;
    const since = cached ? cached.version : -1;
    let row: (Delta & { pruned_below: number }) | undefined;
    if (why === 'update') {
      const results = (await db.query(
        `${this.#sql.lock}; ${this.#sql.delta.replaceAll('$1', String(Math.trunc(since)))}`,
      )) as unknown as pg.QueryResult<Delta & { pruned_below: number }>[];
      row = results[results.length - 1]?.rows[0];
    } else {
      row = (await db.query<Delta & { pruned_below: number }>(this.#sql.delta, [since])).rows[0];
    }
    if (!row) throw new Error(`${this.schema}.scheduler_meta has no row: the schema was damaged`);
    const delta: Delta = { ...row, prunedBelow: row.pruned_below };
    if (cached && (since < delta.prunedBelow || delta.version < since)) {
      // Too far behind (markers pruned) or the database went back in time (restored): start from scratch.
      this.#cached = undefined;
      if (why === 'update') await db.query('ROLLBACK');
      return this.#refresh(db, why);
    }
    if (!cached) {
      const state = emptyState();
      applyDelta(state, delta);
      this.#cached = { state, version: delta.version };
      return state;
    }
    if (delta.version !== cached.version) {
      syncStateIndex(cached.state, applyDelta(cached.state, delta));
      cached.version = delta.version;
    }
    return cached.state;
  }

  async #runBatch(batch: Extract<Job, { kind: 'update' }>[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.#tryBatch(batch);
      if (outcome.ok) {
        for (const settle of outcome.settle) settle();
        return;
      }
      if (isSerializationFailure(outcome.error) && attempt < MAX_SERIALIZATION_RETRIES) continue;
      const error = toStoreError(outcome.error, {
        server: this.server,
        operation: batch.length === 1 ? 'a scheduler update' : `${batch.length} scheduler updates`,
        at: outcome.at,
      });
      for (const job of batch) job.reject(error);
      return;
    }
  }

  async #tryBatch(
    batch: Extract<Job, { kind: 'update' }>[],
  ): Promise<{ ok: true; settle: (() => void)[] } | { ok: false; error: unknown; at: FailurePoint }> {
    let client: PoolClient;
    try {
      client = await this.#connect('before-commit');
    } catch (error) {
      return { ok: false, error, at: 'before-commit' };
    }
    let at: FailurePoint = 'before-commit';
    let broken = false;
    try {
      const state = await this.#refresh(client, 'update');
      const settle: (() => void)[] = [];
      const touchedProxies = new Set<string>();
      const touchedTasks = new Set<string>();
      const events: SchedulerEvent[] = [];
      let everything = false;
      let changed = false;
      let capacityGrew = false;
      for (const job of batch) {
        let update: StateUpdate<unknown>;
        try {
          update = job.mutate(state);
        } catch (error) {
          settle.push(() => job.reject(error));
          continue;
        }
        settle.push(() => job.resolve(update.result));
        if (!update.changed) continue;
        changed = true;
        if (update.touched) {
          for (const id of update.touched.proxies) touchedProxies.add(id);
          for (const id of update.touched.tasks) touchedTasks.add(id);
        } else everything = true;
        if (update.notice) {
          events.push(...update.notice.events);
          capacityGrew ||= update.notice.capacityGrew;
        }
      }
      if (!changed) {
        await client.query('COMMIT');
        return { ok: true, settle };
      }
      // The cache now holds uncommitted changes: until COMMIT returns, any failure must drop it.
      const version = (this.#cached?.version ?? 0) + 1;
      if (everything) await this.#touchEverything(client, state, touchedProxies, touchedTasks);
      await client.query(
        this.#sql.write,
        this.#writeParams(state, touchedProxies, touchedTasks, version, events, capacityGrew),
      );
      if (version % PRUNE_EVERY === 0) await client.query(this.#sql.prune, [version - PRUNE_KEEP]);
      at = 'during-commit';
      await client.query('COMMIT');
      if (this.#cached) this.#cached.version = version;
      this.#feed.committed(version);
      return { ok: true, settle };
    } catch (error) {
      this.#cached = undefined;
      broken = isConnectionLost(error);
      if (!broken) await client.query('ROLLBACK').catch(() => undefined);
      return { ok: false, error, at };
    } finally {
      client.release(broken);
    }
  }

  /** For an update that did not say what it touched: every record now, and every record stored. */
  async #touchEverything(
    client: PoolClient,
    state: SchedulerState,
    proxies: Set<string>,
    tasks: Set<string>,
  ): Promise<void> {
    for (const id of state.proxies.keys()) proxies.add(id);
    for (const id of state.assignments.keys()) tasks.add(id);
    for (const id of state.stranded.keys()) tasks.add(id);
    const r = await client.query<{ kind: string; id: string }>(
      `SELECT 'proxy' AS kind, id FROM ${this.schema}.proxies
       UNION ALL SELECT 'task', task_id FROM ${this.schema}.assignments
       UNION ALL SELECT 'task', task_id FROM ${this.schema}.stranded`,
    );
    for (const { kind, id } of r.rows) (kind === 'proxy' ? proxies : tasks).add(id);
  }

  #writeParams(
    state: SchedulerState,
    touchedProxies: Set<string>,
    touchedTasks: Set<string>,
    version: number,
    events: SchedulerEvent[],
    capacityGrew: boolean,
  ): unknown[] {
    const proxies = [];
    const goneProxies: string[] = [];
    for (const id of touchedProxies) {
      const p = state.proxies.get(id);
      if (p) proxies.push(proxyRow(p));
      else goneProxies.push(id);
    }
    const assignments = [];
    const goneAssignments: string[] = [];
    const stranded = [];
    const goneStranded: string[] = [];
    for (const id of touchedTasks) {
      const a = state.assignments.get(id);
      if (a) assignments.push(assignmentRow(a));
      else goneAssignments.push(id);
      const s = state.stranded.get(id);
      if (s) stranded.push(strandedRow(s));
      else goneStranded.push(id);
    }
    return [
      JSON.stringify(proxies),
      goneProxies,
      JSON.stringify(assignments),
      goneAssignments,
      JSON.stringify(stranded),
      goneStranded,
      version,
      this.#sql.channel,
      noticePayload({ origin: this.#origin, version, capacityGrew, events }),
    ];
  }

  /** A pooled connection, with a listener so a server that drops it mid-transaction does not crash the process. */
  async #connect(at: FailurePoint): Promise<PoolClient> {
    let client: PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw toStoreError(error, {
        server: this.server,
        operation: 'connect',
        at: at === 'before-commit' && this.#cached ? 'before-commit' : 'connect',
      });
    }
    if (client.listenerCount('error') === 0) client.on('error', () => undefined);
    return client;
  }
}

function closedError(): SyncproxyError {
  return new SyncproxyError('postgres state store is closed', { code: 'aborted', retryable: false });
}
