import { z } from 'zod';
import type { Assignment, ProxyRecord, SchedulerState, StrandedTask } from '../contracts/scheduler.js';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import { idSchema, syncTaskSchema } from './input.js';
import { HARD_MAX_MOUNTED_DISKS, MAX_HTTP_TIMEOUT_SEC } from './settings.js';

export const STATE_FORMAT = 'syncproxy-scheduler-state';
export const STATE_VERSION = 1;

export function emptyState(): SchedulerState {
  return { proxies: new Map(), assignments: new Map(), stranded: new Map() };
}

const time = z.number().finite();

const proxyJson = z.object({
  id: idSchema,
  name: z.string(),
  address: z.string().optional(),
  settings: z.object({
    httpTimeoutSec: z.number().int().min(1).max(MAX_HTTP_TIMEOUT_SEC),
    maxMountedDisks: z.number().int().min(0).max(HARD_MAX_MOUNTED_DISKS),
  }),
  registeredAt: time,
  lastHeartbeatAt: time,
  health: z.enum(['healthy', 'down']),
  bindings: z.array(idSchema),
});

const assignmentJson = z.object({
  task: syncTaskSchema,
  proxyId: idSchema,
  assignedAt: time,
  failedOverFrom: idSchema.optional(),
});

const strandedJson = z.object({
  task: syncTaskSchema,
  fromProxyId: idSchema,
  since: time,
  reason: z.string(),
});

const stateJson = z.object({
  format: z.literal(STATE_FORMAT),
  version: z.literal(STATE_VERSION),
  proxies: z.array(proxyJson),
  assignments: z.array(assignmentJson),
  stranded: z.array(strandedJson),
});

/**
 * The JSON text of a state. Load counters are left out: they are derived from
 * the assignments, and {@link parseStateJson} recomputes them.
 */
export function stateToJson(state: Readonly<SchedulerState>): string {
  const proxies = [...state.proxies.values()].map(({ tasks: _t, mountSlotsUsed: _m, ...rest }) => rest);
  return `${JSON.stringify(
    {
      format: STATE_FORMAT,
      version: STATE_VERSION,
      proxies,
      assignments: [...state.assignments.values()],
      stranded: [...state.stranded.values()],
    },
    null,
    1,
  )}\n`;
}

/**
 * Parses the text {@link stateToJson} wrote. Throws an `integrity` error when
 * it is not a scheduler state or contradicts itself (an assignment on an
 * unknown proxy, a task listed twice, slots beyond a proxy's maximum).
 */
export function parseStateJson(text: string, source: string): SchedulerState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw corrupt(source, `not JSON (${(error as Error).message})`, error);
  }
  const parsed = stateJson.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw corrupt(source, `${first?.path.map(String).join('.') || '(root)'}: ${first?.message ?? 'invalid'}`);
  }
  const state = emptyState();
  for (const p of parsed.data.proxies) {
    if (state.proxies.has(p.id)) throw corrupt(source, `proxy ${p.id} is listed twice`);
    const record: ProxyRecord = {
      id: p.id,
      name: p.name,
      settings: { ...p.settings },
      registeredAt: p.registeredAt,
      lastHeartbeatAt: p.lastHeartbeatAt,
      health: p.health,
      bindings: [...new Set(p.bindings)].sort(),
      tasks: 0,
      mountSlotsUsed: 0,
    };
    if (p.address !== undefined) record.address = p.address;
    state.proxies.set(p.id, record);
  }
  for (const a of parsed.data.assignments) {
    const proxy = state.proxies.get(a.proxyId);
    if (!proxy) throw corrupt(source, `task ${a.task.id} is assigned to unknown proxy ${a.proxyId}`);
    if (state.assignments.has(a.task.id)) throw corrupt(source, `task ${a.task.id} is assigned twice`);
    proxy.tasks += 1;
    proxy.mountSlotsUsed += a.task.mountSlots;
    if (proxy.mountSlotsUsed > proxy.settings.maxMountedDisks) {
      throw corrupt(
        source,
        `proxy ${proxy.id} holds more mount slots than its maximum ${proxy.settings.maxMountedDisks}`,
      );
    }
    const assignment: Assignment = { task: a.task, proxyId: a.proxyId, assignedAt: a.assignedAt };
    if (a.failedOverFrom !== undefined) assignment.failedOverFrom = a.failedOverFrom;
    state.assignments.set(a.task.id, assignment);
  }
  for (const s of parsed.data.stranded) {
    if (state.assignments.has(s.task.id) || state.stranded.has(s.task.id)) {
      throw corrupt(source, `task ${s.task.id} is both stranded and assigned, or stranded twice`);
    }
    const stranded: StrandedTask = {
      task: s.task,
      fromProxyId: s.fromProxyId,
      since: s.since,
      reason: s.reason,
    };
    state.stranded.set(s.task.id, stranded);
  }
  return state;
}

function corrupt(source: string, why: string, cause?: unknown): SyncproxyError {
  return new SyncproxyError(
    `scheduler state ${source} is not valid: ${why} (restore it from a backup, or move it away to start empty)`,
    { code: 'integrity', retryable: false, cause, details: { source } },
  );
}
