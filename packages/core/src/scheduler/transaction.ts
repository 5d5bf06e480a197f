import type {
  Assignment,
  HealthReport,
  ProxyInfo,
  ProxyRecord,
  ProxySettings,
  RegisterProxyInput,
  SchedulerEvent,
  SchedulerState,
  SyncTask,
} from '../contracts/scheduler.js';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import {
  count,
  describeNoCapacity,
  type HostLimitLookup,
  isNoCapacity,
  noCapacityError,
  pickProxy,
} from './placement.js';
import { PlacementIndex } from './placement-index.js';
import { DEFAULT_PROXY_SETTINGS, settingsWarnings } from './settings.js';

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: SyncproxyError };

export const ok = <T>(value: T): Outcome<T> => ({ ok: true, value });
const refused = <T>(error: SyncproxyError): Outcome<T> => ({ ok: false, error });

/**
 * One scheduler operation applied to the state, inside a store update. Every
 * method checks all it needs before it changes anything and reports a refusal
 * as an outcome instead of throwing, so a refusal never leaves the state half
 * changed and the health sweep done in the same update is still persisted.
 */
export class SchedulerTransaction {
  readonly events: SchedulerEvent[] = [];
  readonly health: HealthReport = { down: [], moved: [], stranded: [] };
  changed = false;
  /** Set when the change may let a waiting assign fit (slots freed, a proxy bound or back up). */
  capacityGrew = false;
  /** What changed, so a store can write only those records (`StateUpdate.touched`). */
  readonly touched = { proxies: new Set<string>(), tasks: new Set<string>() };
  readonly #index: PlacementIndex;

  constructor(
    readonly state: SchedulerState,
    readonly now: number,
    readonly heartbeatTimeoutMs: number,
    readonly hostLimit: HostLimitLookup = () => undefined,
  ) {
    this.#index = PlacementIndex.of(state);
  }

  /** Records a change to a proxy: for the store's write, and for the placement index. */
  #touchProxy(id: string): void {
    this.touched.proxies.add(id);
    this.#index.resyncProxy(id);
    this.changed = true;
  }

  #touchTask(id: string): void {
    this.touched.tasks.add(id);
    this.#index.resyncTask(id);
    this.changed = true;
  }

  registerProxy(input: RegisterProxyInput & { settings: Partial<ProxySettings> }): Outcome<ProxyInfo> {
    const existing = this.state.proxies.get(input.id);
    if (existing) {
      return refused(
        new SyncproxyError(
          `register refused: proxy ${input.id} is already registered (as ${JSON.stringify(existing.name)}); update its settings, or remove it first`,
          { code: 'conflict', retryable: false, details: { proxyId: input.id } },
        ),
      );
    }
    const record: ProxyRecord = {
      id: input.id,
      name: input.name ?? input.id,
      settings: { ...DEFAULT_PROXY_SETTINGS, ...input.settings },
      registeredAt: this.now,
      lastHeartbeatAt: this.now,
      health: 'healthy',
      bindings: [],
      tasks: 0,
      mountSlotsUsed: 0,
    };
    if (input.address !== undefined) record.address = input.address;
    this.state.proxies.set(record.id, record);
    this.#touchProxy(record.id);
    return ok(toProxyInfo(record));
  }

  updateSettings(proxyId: string, patch: Partial<ProxySettings>): Outcome<ProxyInfo> {
    const proxy = this.state.proxies.get(proxyId);
    if (!proxy) return refused(unknownProxy(proxyId, 'update refused'));
    const max = patch.maxMountedDisks;
    if (max !== undefined && max < proxy.mountSlotsUsed) {
      return refused(
        new SyncproxyError(
          `update refused: proxy ${proxyId} has ${count(proxy.mountSlotsUsed, 'mount slot', 'mount slots')} in use, more than the new maxMountedDisks ${max} (release tasks first)`,
          {
            code: 'conflict',
            retryable: false,
            details: { proxyId, mountSlotsUsed: proxy.mountSlotsUsed, maxMountedDisks: max },
          },
        ),
      );
    }
    if (max !== undefined && max > proxy.settings.maxMountedDisks) this.capacityGrew = true;
    proxy.settings = { ...proxy.settings, ...patch };
    this.#touchProxy(proxyId);
    return ok(toProxyInfo(proxy));
  }

  removeProxy(proxyId: string): Outcome<void> {
    const proxy = this.state.proxies.get(proxyId);
    if (!proxy) return refused(unknownProxy(proxyId, 'remove refused'));
    if (proxy.bindings.length > 0) {
      return refused(
        new SyncproxyError(
          `remove refused: proxy ${proxyId} is bound to ${count(proxy.bindings.length, 'platform', 'platforms')} (${proxy.bindings.join(', ')}); unbind ${proxy.bindings.length === 1 ? 'it' : 'them'} first`,
          { code: 'conflict', retryable: false, details: { proxyId, bindings: [...proxy.bindings] } },
        ),
      );
    }
    // Assignments need a binding, and unbind waits for them: a proxy without bindings holds no task.
    this.state.proxies.delete(proxyId);
    this.#touchProxy(proxyId);
    return ok(undefined);
  }

  bind(proxyId: string, platformId: string): Outcome<void> {
    const proxy = this.state.proxies.get(proxyId);
    if (!proxy) return refused(unknownProxy(proxyId, 'bind refused'));
    if (proxy.bindings.includes(platformId)) return ok(undefined);
    proxy.bindings = [...proxy.bindings, platformId].sort();
    this.#touchProxy(proxyId);
    this.capacityGrew = true;
    return ok(undefined);
  }

  unbind(proxyId: string, platformId: string): Outcome<void> {
    const proxy = this.state.proxies.get(proxyId);
    if (!proxy) return refused(unknownProxy(proxyId, 'unbind refused'));
    if (!proxy.bindings.includes(platformId)) {
      return refused(
        new SyncproxyError(`unbind refused: proxy ${proxyId} is not bound to platform ${platformId}`, {
          code: 'not-found',
          retryable: false,
          details: { proxyId, platformId, bindings: [...proxy.bindings] },
        }),
      );
    }
    let tasks = 0;
    if (proxy.tasks > 0) {
      for (const a of this.state.assignments.values()) {
        if (a.proxyId === proxyId && a.task.platformId === platformId) tasks += 1;
      }
    }
    if (tasks > 0) {
      return refused(
        new SyncproxyError(
          `unbind refused: proxy ${proxyId} has ${count(tasks, 'task', 'tasks')} on platform ${platformId} (release them first)`,
          { code: 'conflict', retryable: false, details: { proxyId, platformId, tasks } },
        ),
      );
    }
    proxy.bindings = proxy.bindings.filter((b) => b !== platformId);
    this.#touchProxy(proxyId);
    return ok(undefined);
  }

  heartbeat(proxyId: string): Outcome<void> {
    const proxy = this.state.proxies.get(proxyId);
    if (!proxy) return refused(unknownProxy(proxyId, 'heartbeat refused'));
    proxy.lastHeartbeatAt = this.now;
    const wasDown = proxy.health === 'down';
    proxy.health = 'healthy';
    this.#touchProxy(proxyId);
    if (wasDown) {
      this.capacityGrew = true;
      this.events.push({ type: 'proxy-up', proxyId });
    }
    return ok(undefined);
  }

  assign(task: SyncTask): Outcome<Assignment> {
    const existing = this.state.assignments.get(task.id);
    if (existing) {
      return refused(
        new SyncproxyError(
          `assign refused: task ${task.id} is already assigned to proxy ${existing.proxyId}`,
          {
            code: 'conflict',
            retryable: false,
            details: { taskId: task.id, proxyId: existing.proxyId },
          },
        ),
      );
    }
    const target = pickProxy(this.state, task, this.hostLimit);
    if (isNoCapacity(target)) return refused(noCapacityError(task, target, this.heartbeatTimeoutMs));
    if (this.state.stranded.delete(task.id)) this.#touchTask(task.id);
    const assignment: Assignment = { task, proxyId: target.id, assignedAt: this.now };
    this.attach(assignment, target);
    this.events.push({ type: 'assigned', assignment });
    return ok(assignment);
  }

  release(taskId: string): Outcome<void> {
    const assignment = this.state.assignments.get(taskId);
    if (assignment) {
      this.detach(assignment);
      this.events.push({ type: 'released', assignment });
      this.capacityGrew = true;
      return ok(undefined);
    }
    if (this.state.stranded.delete(taskId)) {
      this.#touchTask(taskId);
      return ok(undefined);
    }
    return refused(
      new SyncproxyError(`release refused: task ${taskId} is not assigned`, {
        code: 'not-found',
        retryable: false,
        details: { taskId },
      }),
    );
  }

  /** Marks every proxy without a heartbeat for the timeout down, then fails their tasks over. */
  sweep(): void {
    const stale: ProxyRecord[] = [];
    for (const id of this.#index.heardNotSince(this.now - this.heartbeatTimeoutMs)) {
      const proxy = this.state.proxies.get(id);
      if (proxy) stale.push(proxy);
    }
    if (stale.length === 0) return;
    stale.sort((a, b) => (a.id < b.id ? -1 : 1));
    // All of them go down before any task moves, so no task moves onto a proxy about to go down too.
    for (const proxy of stale) {
      proxy.health = 'down';
      this.#touchProxy(proxy.id);
      this.health.down.push(proxy.id);
      this.events.push({ type: 'proxy-down', proxyId: proxy.id, lastHeartbeatAt: proxy.lastHeartbeatAt });
    }
    for (const proxy of stale) this.failOver(proxy);
  }

  private failOver(from: ProxyRecord): void {
    if (from.tasks === 0) return;
    const held = [...this.state.assignments.values()].filter((a) => a.proxyId === from.id);
    // Biggest first: the tasks hardest to fit get the free slots before the small ones fragment them.
    held.sort(
      (a, b) =>
        b.task.mountSlots - a.task.mountSlots ||
        a.assignedAt - b.assignedAt ||
        (a.task.id < b.task.id ? -1 : a.task.id > b.task.id ? 1 : 0),
    );
    const moved: Assignment[] = [];
    const stranded: SyncTask[] = [];
    for (const old of held) {
      this.detach(old);
      const target = pickProxy(this.state, old.task, this.hostLimit);
      if (isNoCapacity(target)) {
        this.state.stranded.set(old.task.id, {
          task: old.task,
          fromProxyId: from.id,
          since: this.now,
          reason: describeNoCapacity(old.task, target, this.heartbeatTimeoutMs),
        });
        this.#touchTask(old.task.id);
        stranded.push(old.task);
        continue;
      }
      const assignment: Assignment = {
        task: old.task,
        proxyId: target.id,
        assignedAt: this.now,
        failedOverFrom: from.id,
      };
      this.attach(assignment, target);
      moved.push(assignment);
    }
    this.health.moved.push(...moved);
    this.health.stranded.push(...stranded);
    this.events.push({ type: 'failed-over', fromProxyId: from.id, moved, stranded });
  }

  private attach(assignment: Assignment, proxy: ProxyRecord): void {
    this.state.assignments.set(assignment.task.id, assignment);
    proxy.tasks += 1;
    proxy.mountSlotsUsed += assignment.task.mountSlots;
    this.#touchTask(assignment.task.id);
    this.#touchProxy(proxy.id);
  }

  private detach(assignment: Assignment): void {
    this.state.assignments.delete(assignment.task.id);
    const proxy = this.state.proxies.get(assignment.proxyId);
    if (proxy) {
      proxy.tasks -= 1;
      proxy.mountSlotsUsed -= assignment.task.mountSlots;
      this.#touchProxy(proxy.id);
    }
    this.#touchTask(assignment.task.id);
  }
}

/** When the next proxy runs out of heartbeat time, if any healthy proxy is left. */
export function nextHealthDeadline(
  state: Readonly<SchedulerState>,
  heartbeatTimeoutMs: number,
): number | undefined {
  const oldest = PlacementIndex.of(state).oldestHeartbeat();
  return oldest === undefined ? undefined : oldest + heartbeatTimeoutMs;
}

export function hasStaleProxy(
  state: Readonly<SchedulerState>,
  now: number,
  heartbeatTimeoutMs: number,
): boolean {
  const deadline = nextHealthDeadline(state, heartbeatTimeoutMs);
  return deadline !== undefined && now >= deadline;
}

/** A detached copy: callers may keep or change it without touching the state. */
export function toProxyInfo(record: ProxyRecord): ProxyInfo {
  const info: ProxyInfo = {
    id: record.id,
    name: record.name,
    settings: { ...record.settings },
    health: record.health,
    registeredAt: record.registeredAt,
    lastHeartbeatAt: record.lastHeartbeatAt,
    bindings: [...record.bindings],
    load: {
      tasks: record.tasks,
      mountSlotsUsed: record.mountSlotsUsed,
      mountSlotsFree: Math.max(0, record.settings.maxMountedDisks - record.mountSlotsUsed),
    },
    warnings: settingsWarnings(record.settings),
  };
  if (record.address !== undefined) info.address = record.address;
  return info;
}

export function copyAssignment(assignment: Assignment): Assignment {
  return { ...assignment, task: { ...assignment.task } };
}

function unknownProxy(proxyId: string, what: string): SyncproxyError {
  return new SyncproxyError(`${what}: no proxy ${proxyId} is registered`, {
    code: 'not-found',
    retryable: false,
    details: { proxyId },
  });
}
