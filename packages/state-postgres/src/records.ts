import type { Assignment, ProxyRecord, SchedulerState, StrandedTask, SyncTask } from '@syncproxy/core';

/** A proxies row as `jsonb_to_recordset` reads it and `jsonb_agg` returns it. */
export interface ProxyRow {
  id: string;
  name: string;
  address: string | null;
  http_timeout_sec: number;
  max_mounted_disks: number;
  registered_at: number;
  last_heartbeat_at: number;
  health: 'healthy' | 'down';
  bindings: string[];
  tasks: number;
  mount_slots_used: number;
}

export interface AssignmentRow {
  task_id: string;
  proxy_id: string;
  task: SyncTask;
  assigned_at: number;
  failed_over_from: string | null;
}

export interface StrandedRow {
  task_id: string;
  task: SyncTask;
  from_proxy_id: string;
  since: number;
  reason: string;
}

export function proxyRow(p: ProxyRecord): ProxyRow {
  return {
    id: p.id,
    name: p.name,
    address: p.address ?? null,
    http_timeout_sec: p.settings.httpTimeoutSec,
    max_mounted_disks: p.settings.maxMountedDisks,
    registered_at: p.registeredAt,
    last_heartbeat_at: p.lastHeartbeatAt,
    health: p.health,
    bindings: p.bindings,
    tasks: p.tasks,
    mount_slots_used: p.mountSlotsUsed,
  };
}

export function proxyRecord(r: ProxyRow): ProxyRecord {
  const record: ProxyRecord = {
    id: r.id,
    name: r.name,
    settings: { httpTimeoutSec: r.http_timeout_sec, maxMountedDisks: r.max_mounted_disks },
    registeredAt: r.registered_at,
    lastHeartbeatAt: r.last_heartbeat_at,
    health: r.health,
    bindings: r.bindings,
    tasks: r.tasks,
    mountSlotsUsed: r.mount_slots_used,
  };
  if (r.address !== null) record.address = r.address;
  return record;
}

export function assignmentRow(a: Assignment): AssignmentRow {
  return {
    task_id: a.task.id,
    proxy_id: a.proxyId,
    task: a.task,
    assigned_at: a.assignedAt,
    failed_over_from: a.failedOverFrom ?? null,
  };
}

export function assignmentRecord(r: AssignmentRow): Assignment {
  const a: Assignment = { task: r.task, proxyId: r.proxy_id, assignedAt: r.assigned_at };
  if (r.failed_over_from !== null) a.failedOverFrom = r.failed_over_from;
  return a;
}

export function strandedRow(s: StrandedTask): StrandedRow {
  return { task_id: s.task.id, task: s.task, from_proxy_id: s.fromProxyId, since: s.since, reason: s.reason };
}

export function strandedRecord(r: StrandedRow): StrandedTask {
  return { task: r.task, fromProxyId: r.from_proxy_id, since: r.since, reason: r.reason };
}

/** What changed since a version: removals first, then the rows as they are now. */
export interface Delta {
  version: number;
  prunedBelow: number;
  removed: { kind: 'proxy' | 'assignment' | 'stranded'; id: string }[];
  proxies: ProxyRow[];
  assignments: AssignmentRow[];
  stranded: StrandedRow[];
}

/**
 * Applies a delta to a cached state. A row present now wins over a removal in
 * the same delta (removed, then added again). Returns what changed, for the
 * scheduler's indexes.
 */
export function applyDelta(
  state: SchedulerState,
  delta: Delta,
): { proxies: Set<string>; tasks: Set<string> } {
  const proxies = new Set<string>();
  const tasks = new Set<string>();
  for (const { kind, id } of delta.removed) {
    if (kind === 'proxy') {
      state.proxies.delete(id);
      proxies.add(id);
    } else if (kind === 'assignment') {
      state.assignments.delete(id);
      tasks.add(id);
    } else {
      state.stranded.delete(id);
      tasks.add(id);
    }
  }
  for (const r of delta.proxies) {
    state.proxies.set(r.id, proxyRecord(r));
    proxies.add(r.id);
  }
  for (const r of delta.assignments) {
    state.assignments.set(r.task_id, assignmentRecord(r));
    tasks.add(r.task_id);
  }
  for (const r of delta.stranded) {
    state.stranded.set(r.task_id, strandedRecord(r));
    tasks.add(r.task_id);
  }
  return { proxies, tasks };
}
