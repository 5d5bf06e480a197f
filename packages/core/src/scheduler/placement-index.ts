import type { ProxyRecord, SchedulerState, SyncTask } from '../contracts/scheduler.js';
import { SortedList } from './sorted-list.js';

/** A healthy proxy's place in a platform's queue, frozen when inserted so it can be found again. */
interface LoadKey {
  id: string;
  tasks: number;
  mountSlotsUsed: number;
}

interface HeartbeatKey {
  id: string;
  at: number;
}

interface Indexed {
  load: LoadKey;
  platforms: string[];
  heartbeat: HeartbeatKey | undefined;
}

const byLoad = (a: LoadKey, b: LoadKey): number =>
  a.tasks - b.tasks || a.mountSlotsUsed - b.mountSlotsUsed || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const byHeartbeat = (a: HeartbeatKey, b: HeartbeatKey): number =>
  a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

const indexes = new WeakMap<SchedulerState, PlacementIndex>();

/**
 * Ordered views of one state, so an operation touches O(log P) entries instead
 * of every proxy: per platform, its healthy bound proxies least loaded first;
 * healthy proxies by last heartbeat (the next to go down first); connections
 * in use per platform host. Built on first use; every change to a proxy or a
 * task must be reported with {@link PlacementIndex.resyncProxy} /
 * {@link PlacementIndex.resyncTask} (the scheduler's transaction does; a store
 * that changes records itself calls `syncStateIndex`).
 */
export class PlacementIndex {
  readonly #state: SchedulerState;
  readonly #byPlatform = new Map<string, SortedList<LoadKey>>();
  readonly #byHeartbeat = new SortedList<HeartbeatKey>(byHeartbeat);
  readonly #proxies = new Map<string, Indexed>();
  readonly #hostUse = new Map<string, number>();
  readonly #taskHosts = new Map<string, { key: string; connections: number }>();

  static of(state: SchedulerState): PlacementIndex {
    let index = indexes.get(state);
    if (!index) {
      index = new PlacementIndex(state);
      indexes.set(state, index);
    }
    return index;
  }

  private constructor(state: SchedulerState) {
    this.#state = state;
    for (const id of state.proxies.keys()) this.resyncProxy(id);
    for (const id of state.assignments.keys()) this.resyncTask(id);
  }

  /** Re-reads proxy `id` (or its absence) from the state; moves only the entries whose key changed. */
  resyncProxy(id: string): void {
    const old = this.#proxies.get(id);
    const proxy = this.#state.proxies.get(id);
    const live = proxy && proxy.health === 'healthy' ? proxy : undefined;
    const loadSame =
      old !== undefined &&
      live !== undefined &&
      old.load.tasks === live.tasks &&
      old.load.mountSlotsUsed === live.mountSlotsUsed &&
      sameList(old.platforms, live.bindings);
    const heartbeatSame = old?.heartbeat !== undefined && live?.lastHeartbeatAt === old.heartbeat.at;
    if (old && !loadSame)
      for (const platform of old.platforms) this.#byPlatform.get(platform)?.remove(old.load);
    if (old?.heartbeat && !heartbeatSame) this.#byHeartbeat.remove(old.heartbeat);
    if (!live) {
      this.#proxies.delete(id);
      return;
    }
    let load = old?.load as LoadKey;
    let platforms = old?.platforms as string[];
    if (!loadSame) {
      load = { id, tasks: live.tasks, mountSlotsUsed: live.mountSlotsUsed };
      platforms = [...live.bindings];
      for (const platform of platforms) {
        let list = this.#byPlatform.get(platform);
        if (!list) {
          list = new SortedList(byLoad);
          this.#byPlatform.set(platform, list);
        }
        list.insert(load);
      }
    }
    let heartbeat = old?.heartbeat as HeartbeatKey;
    if (!heartbeatSame) {
      heartbeat = { id, at: live.lastHeartbeatAt };
      this.#byHeartbeat.insert(heartbeat);
    }
    this.#proxies.set(id, { load, platforms, heartbeat });
  }

  /** Re-reads the assignment of task `id` (or its absence) for the per-host connection counts. */
  resyncTask(id: string): void {
    const old = this.#taskHosts.get(id);
    if (old) {
      const left = (this.#hostUse.get(old.key) ?? 0) - old.connections;
      if (left > 0) this.#hostUse.set(old.key, left);
      else this.#hostUse.delete(old.key);
      this.#taskHosts.delete(id);
    }
    const host = this.#state.assignments.get(id)?.task;
    if (!host?.platformHost) return;
    const key = hostKey(host.platformId, host.platformHost.id);
    const connections = host.platformHost.connections;
    this.#hostUse.set(key, (this.#hostUse.get(key) ?? 0) + connections);
    this.#taskHosts.set(id, { key, connections });
  }

  /**
   * The least loaded healthy proxy bound to the task's platform with enough
   * free mount slots. The queue is ordered by load, so the first proxy that
   * fits wins; only proxies too full for this task are stepped over.
   */
  leastLoaded(task: SyncTask): ProxyRecord | undefined {
    const list = this.#byPlatform.get(task.platformId);
    if (!list) return undefined;
    for (const key of list) {
      const proxy = this.#state.proxies.get(key.id);
      if (proxy && proxy.settings.maxMountedDisks - proxy.mountSlotsUsed >= task.mountSlots) return proxy;
    }
    return undefined;
  }

  /** Connections assigned tasks hold on one platform host, across all proxies. */
  hostConnections(platformId: string, hostId: string): number {
    return this.#hostUse.get(hostKey(platformId, hostId)) ?? 0;
  }

  /** The earliest last heartbeat among healthy proxies. */
  oldestHeartbeat(): number | undefined {
    return this.#byHeartbeat.first()?.at;
  }

  /** Healthy proxies whose last heartbeat is at or before `at`, oldest first. */
  heardNotSince(at: number): string[] {
    const out: string[] = [];
    for (const key of this.#byHeartbeat) {
      if (key.at > at) break;
      out.push(key.id);
    }
    return out;
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function hostKey(platformId: string, hostId: string): string {
  return `${platformId}\u0000${hostId}`;
}

/**
 * Tells the scheduler's indexes that a store changed these records of `state`
 * outside a scheduler operation (a database store applying other nodes'
 * changes to its cached state).
 */
export function syncStateIndex(
  state: SchedulerState,
  changed: { proxies?: Iterable<string>; tasks?: Iterable<string> },
): void {
  const index = PlacementIndex.of(state);
  for (const id of changed.proxies ?? []) index.resyncProxy(id);
  for (const id of changed.tasks ?? []) index.resyncTask(id);
}
