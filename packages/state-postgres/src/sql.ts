/**
 * The store's statements, for one schema. Each is one round trip; a write
 * batch is four: lock, read the delta, write, commit.
 */
export interface Statements {
  /** Takes the state's row lock: every writer on every node queues here, so no two overbook a proxy. */
  lock: string;
  /** Everything changed since `$1` (all of it for -1), with the version it is as of, in one snapshot. */
  delta: string;
  /** Writes one batch's records, removals and version, and notifies the other nodes on commit. */
  write: string;
  /** Drops removal markers older than `$1`: a node that far behind reloads everything. */
  prune: string;
  channel: string;
}

export function statements(s: string): Statements {
  const changedSince = (table: string, alias: string) =>
    `(SELECT coalesce(jsonb_agg(to_jsonb(${alias}) - 'changed_in'), '[]'::jsonb) FROM ${s}.${table} ${alias} WHERE ${alias}.changed_in > $1)`;
  return {
    lock: `BEGIN; SELECT version FROM ${s}.scheduler_meta WHERE id = 1 FOR UPDATE`,
    delta: `SELECT m.version::float8 AS version, m.pruned_below::float8 AS pruned_below,
        (SELECT coalesce(jsonb_agg(jsonb_build_object('kind', r.kind, 'id', r.id)), '[]'::jsonb)
           FROM ${s}.removed r WHERE r.changed_in > $1) AS removed,
        ${changedSince('proxies', 'p')} AS proxies,
        ${changedSince('assignments', 'a')} AS assignments,
        ${changedSince('stranded', 'x')} AS stranded
      FROM ${s}.scheduler_meta m WHERE m.id = 1`,
    write: `WITH
      up_p AS (
        INSERT INTO ${s}.proxies AS t (id, name, address, http_timeout_sec, max_mounted_disks, registered_at,
          last_heartbeat_at, health, bindings, tasks, mount_slots_used, changed_in)
        SELECT r.id, r.name, r.address, r.http_timeout_sec, r.max_mounted_disks, r.registered_at,
          r.last_heartbeat_at, r.health, r.bindings, r.tasks, r.mount_slots_used, $7
        FROM jsonb_to_recordset($1::jsonb) AS r(id text, name text, address text, http_timeout_sec int,
          max_mounted_disks int, registered_at float8, last_heartbeat_at float8, health text, bindings jsonb,
          tasks int, mount_slots_used int)
        ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, address = EXCLUDED.address,
          http_timeout_sec = EXCLUDED.http_timeout_sec, max_mounted_disks = EXCLUDED.max_mounted_disks,
          registered_at = EXCLUDED.registered_at, last_heartbeat_at = EXCLUDED.last_heartbeat_at,
          health = EXCLUDED.health, bindings = EXCLUDED.bindings, tasks = EXCLUDED.tasks,
          mount_slots_used = EXCLUDED.mount_slots_used, changed_in = EXCLUDED.changed_in
        RETURNING 1),
      up_a AS (
        INSERT INTO ${s}.assignments AS t (task_id, proxy_id, task, assigned_at, failed_over_from, changed_in)
        SELECT r.task_id, r.proxy_id, r.task, r.assigned_at, r.failed_over_from, $7
        FROM jsonb_to_recordset($3::jsonb) AS r(task_id text, proxy_id text, task jsonb, assigned_at float8,
          failed_over_from text)
        ON CONFLICT (task_id) DO UPDATE SET proxy_id = EXCLUDED.proxy_id, task = EXCLUDED.task,
          assigned_at = EXCLUDED.assigned_at, failed_over_from = EXCLUDED.failed_over_from,
          changed_in = EXCLUDED.changed_in
        RETURNING 1),
      up_s AS (
        INSERT INTO ${s}.stranded AS t (task_id, task, from_proxy_id, since, reason, changed_in)
        SELECT r.task_id, r.task, r.from_proxy_id, r.since, r.reason, $7
        FROM jsonb_to_recordset($5::jsonb) AS r(task_id text, task jsonb, from_proxy_id text, since float8,
          reason text)
        ON CONFLICT (task_id) DO UPDATE SET task = EXCLUDED.task, from_proxy_id = EXCLUDED.from_proxy_id,
          since = EXCLUDED.since, reason = EXCLUDED.reason, changed_in = EXCLUDED.changed_in
        RETURNING 1),
      del_a AS (DELETE FROM ${s}.assignments WHERE task_id = ANY($4::text[]) RETURNING 1),
      del_s AS (DELETE FROM ${s}.stranded WHERE task_id = ANY($6::text[]) RETURNING 1),
      del_p AS (DELETE FROM ${s}.proxies WHERE id = ANY($2::text[]) RETURNING 1),
      tomb AS (
        INSERT INTO ${s}.removed (kind, id, changed_in)
        SELECT 'proxy', unnest($2::text[]), $7
        UNION ALL SELECT 'assignment', unnest($4::text[]), $7
        UNION ALL SELECT 'stranded', unnest($6::text[]), $7
        ON CONFLICT (kind, id) DO UPDATE SET changed_in = EXCLUDED.changed_in
        RETURNING 1),
      meta AS (UPDATE ${s}.scheduler_meta SET version = $7 WHERE id = 1 RETURNING 1)
      SELECT pg_notify($8, $9)`,
    prune: `WITH gone AS (DELETE FROM ${s}.removed WHERE changed_in < $1 RETURNING 1)
      UPDATE ${s}.scheduler_meta SET pruned_below = greatest(pruned_below, $1) WHERE id = 1`,
    channel: `syncproxy_state_${s}`,
  };
}
