import type { PoolClient } from 'pg';

/** One schema change. Applied in order, each once, in its own transaction; never edited once released. */
export interface Migration {
  version: number;
  name: string;
  sql: (schema: string) => string;
}

/**
 * The schema. Every row carries `changed_in`, the state version that last
 * wrote it, and removals leave a row in `removed`: a node brings its cached
 * state up to date by reading only what changed since its version, through
 * the `changed_in` indexes, however many proxies there are.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'scheduler state',
    sql: (s) => `
      CREATE TABLE ${s}.scheduler_meta (
        id int PRIMARY KEY CHECK (id = 1),
        version bigint NOT NULL,
        pruned_below bigint NOT NULL
      );
      INSERT INTO ${s}.scheduler_meta (id, version, pruned_below) VALUES (1, 0, 0);
      CREATE TABLE ${s}.proxies (
        id text PRIMARY KEY,
        name text NOT NULL,
        address text,
        http_timeout_sec int NOT NULL,
        max_mounted_disks int NOT NULL,
        registered_at double precision NOT NULL,
        last_heartbeat_at double precision NOT NULL,
        health text NOT NULL CHECK (health IN ('healthy', 'down')),
        bindings jsonb NOT NULL,
        tasks int NOT NULL CHECK (tasks >= 0),
        mount_slots_used int NOT NULL,
        changed_in bigint NOT NULL,
        -- The last line of defence against overbooking: no write can commit a proxy beyond its slots.
        CONSTRAINT proxies_slots_within_max CHECK (mount_slots_used >= 0 AND mount_slots_used <= max_mounted_disks)
      );
      CREATE INDEX proxies_changed_in ON ${s}.proxies (changed_in);
      CREATE TABLE ${s}.assignments (
        task_id text PRIMARY KEY,
        proxy_id text NOT NULL REFERENCES ${s}.proxies (id),
        task jsonb NOT NULL,
        assigned_at double precision NOT NULL,
        failed_over_from text,
        changed_in bigint NOT NULL
      );
      CREATE INDEX assignments_changed_in ON ${s}.assignments (changed_in);
      CREATE INDEX assignments_proxy_id ON ${s}.assignments (proxy_id);
      CREATE TABLE ${s}.stranded (
        task_id text PRIMARY KEY,
        task jsonb NOT NULL,
        from_proxy_id text NOT NULL,
        since double precision NOT NULL,
        reason text NOT NULL,
        changed_in bigint NOT NULL
      );
      CREATE INDEX stranded_changed_in ON ${s}.stranded (changed_in);
      CREATE TABLE ${s}.removed (
        kind text NOT NULL CHECK (kind IN ('proxy', 'assignment', 'stranded')),
        id text NOT NULL,
        changed_in bigint NOT NULL,
        PRIMARY KEY (kind, id)
      );
      CREATE INDEX removed_changed_in ON ${s}.removed (changed_in);
    `,
  },
];

/** The newest schema version this package knows. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

/**
 * Brings `schema` to {@link SCHEMA_VERSION}. Nodes starting together queue on
 * one transaction-scoped advisory lock (keyed by the schema name), so each
 * migration runs exactly once; a node that finds them applied does nothing.
 * Returns the versions this call applied.
 */
export async function migrate(client: PoolClient, schema: string): Promise<number[]> {
  const applied: number[] = [];
  await client.query('BEGIN');
  try {
    await client.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`syncproxy-migrations:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${schema}.schema_migrations (
         version int PRIMARY KEY,
         name text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
    const done = await client.query<{ version: number }>(`SELECT version FROM ${schema}.schema_migrations`);
    const have = new Set(done.rows.map((r) => r.version));
    const newer = [...have].filter((v) => v > SCHEMA_VERSION);
    if (newer.length > 0) {
      throw Object.assign(
        new Error(
          `schema ${schema} is at version ${Math.max(...newer)}, newer than this package's ${SCHEMA_VERSION}: upgrade @syncproxy/state-postgres`,
        ),
        { code: 'SYNCPROXY_SCHEMA_NEWER' },
      );
    }
    for (const m of MIGRATIONS) {
      if (have.has(m.version)) continue;
      await client.query(m.sql(schema));
      await client.query(`INSERT INTO ${schema}.schema_migrations (version, name) VALUES ($1, $2)`, [
        m.version,
        m.name,
      ]);
      applied.push(m.version);
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
  return applied;
}
