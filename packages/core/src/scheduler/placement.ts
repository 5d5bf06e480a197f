import type { ProxyRecord, SchedulerState, SyncTask } from '../contracts/scheduler.js';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import { PlacementIndex } from './placement-index.js';

export type NoCapacityReason = 'no-proxy-bound' | 'all-down' | 'all-full' | 'host-full';

/** The per-host connection limit of a platform (`ConnectorCapabilities.perHostLimits.maxConnections`), if any. */
export type HostLimitLookup = (platformId: string) => number | undefined;

/** Why a task fits nowhere, with the counts the message gives. */
export interface NoCapacity {
  reason: NoCapacityReason;
  /** Proxies bound to the task's platform. */
  bound: number;
  down: number;
  /** Healthy bound proxies without enough free mount slots. */
  full: number;
  /** The most free mount slots on one healthy bound proxy. */
  maxFreeSlots: number;
  /** Set for `host-full`: the task's platform host, its limit and the connections in use on it. */
  host?: { id: string; maxConnections: number; connections: number };
}

/**
 * The proxy a task goes to: healthy, bound to the task's platform, with enough
 * free mount slots, and the task's platform host under its connection limit;
 * of those the least loaded (fewest tasks, then fewest slots used), ties to the
 * lowest id so placement is reproducible. Found through the state's
 * {@link PlacementIndex}; only a refusal counts the proxies, for its message.
 */
export function pickProxy(
  state: SchedulerState,
  task: SyncTask,
  hostLimit: HostLimitLookup = () => undefined,
): ProxyRecord | NoCapacity {
  const index = PlacementIndex.of(state);
  const maxConnections = task.platformHost ? hostLimit(task.platformId) : undefined;
  if (task.platformHost && maxConnections !== undefined) {
    const connections = index.hostConnections(task.platformId, task.platformHost.id);
    if (connections + task.platformHost.connections > maxConnections) {
      return {
        ...countProxies(state, task),
        reason: 'host-full',
        host: { id: task.platformHost.id, maxConnections, connections },
      };
    }
  }
  const best = index.leastLoaded(task);
  if (best) return best;
  const counts = countProxies(state, task);
  const reason: NoCapacityReason =
    counts.bound === 0 ? 'no-proxy-bound' : counts.down === counts.bound ? 'all-down' : 'all-full';
  return { ...counts, reason };
}

function countProxies(state: Readonly<SchedulerState>, task: SyncTask): Omit<NoCapacity, 'reason'> {
  let bound = 0;
  let down = 0;
  let full = 0;
  let maxFreeSlots = 0;
  for (const proxy of state.proxies.values()) {
    if (!proxy.bindings.includes(task.platformId)) continue;
    bound += 1;
    if (proxy.health !== 'healthy') {
      down += 1;
      continue;
    }
    const free = proxy.settings.maxMountedDisks - proxy.mountSlotsUsed;
    if (free > maxFreeSlots) maxFreeSlots = free;
    if (free < task.mountSlots) full += 1;
  }
  return { bound, down, full, maxFreeSlots };
}

export function isNoCapacity(value: ProxyRecord | NoCapacity): value is NoCapacity {
  return 'reason' in value;
}

/** "1 proxy", "3 proxies". */
export function count(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** The sentence that says why a task fits nowhere. */
export function describeNoCapacity(task: SyncTask, why: NoCapacity, heartbeatTimeoutMs: number): string {
  const platform = `platform ${task.platformId}`;
  switch (why.reason) {
    case 'no-proxy-bound':
      return `no proxy is bound to ${platform} (bind one to it first)`;
    case 'all-down':
      return `all ${count(why.bound, 'proxy', 'proxies')} bound to ${platform} ${why.bound === 1 ? 'is' : 'are'} down (no heartbeat for ${heartbeatTimeoutMs} ms)`;
    case 'all-full': {
      const healthy = why.bound - why.down;
      return `all ${count(healthy, 'healthy proxy', 'healthy proxies')} bound to ${platform} ${healthy === 1 ? 'is' : 'are'} full: task ${task.id} needs ${count(task.mountSlots, 'mount slot', 'mount slots')}, the most free on one proxy is ${why.maxFreeSlots} (${why.down} down)`;
    }
    case 'host-full': {
      const host = why.host!;
      return `host ${host.id} of ${platform} is full: task ${task.id} needs ${count(task.platformHost?.connections ?? 0, 'connection', 'connections')}, ${host.connections} of its ${host.maxConnections} are in use across all proxies (per-host limit; release a task on that host first)`;
    }
  }
}

/** The `no-capacity` error for a task that fits nowhere. Retryable unless no proxy is bound at all. */
export function noCapacityError(
  task: SyncTask,
  why: NoCapacity,
  heartbeatTimeoutMs: number,
  prefix = 'assign refused',
): SyncproxyError {
  return new SyncproxyError(`${prefix}: ${describeNoCapacity(task, why, heartbeatTimeoutMs)}`, {
    code: 'no-capacity',
    retryable: why.reason !== 'no-proxy-bound',
    details: {
      reason: why.reason,
      taskId: task.id,
      platformId: task.platformId,
      mountSlots: task.mountSlots,
      bound: why.bound,
      healthy: why.bound - why.down,
      down: why.down,
      full: why.full,
      maxFreeSlots: why.maxFreeSlots,
      ...(why.host
        ? {
            hostId: why.host.id,
            hostConnections: why.host.connections,
            hostMaxConnections: why.host.maxConnections,
          }
        : {}),
    },
  });
}
