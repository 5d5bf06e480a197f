import { z } from 'zod';
import { type Clock, setClockTimer, systemClock } from '../clock.js';
import { parseConfig } from '../config/parse-config.js';
import type { Logger } from '../contracts/logger.js';
import type {
  Assignment,
  AssignmentFilter,
  AssignOptions,
  HealthReport,
  HostLimits,
  ProxyInfo,
  ProxyScheduler,
  ProxySettings,
  RegisterProxyInput,
  SchedulerEvent,
  SchedulerState,
  StateStore,
  StrandedTask,
  SyncTask,
  UpdateSettingsOptions,
} from '../contracts/scheduler.js';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import { abortError } from '../errors/to-syncproxy-error.js';
import { silentLogger } from '../logger.js';
import {
  assignOptionsSchema,
  parseAssignmentFilter,
  parseId,
  parseRegisterInput,
  parseTask,
} from './input.js';
import { createMemoryStateStore } from './memory-store.js';
import type { HostLimitLookup } from './placement.js';
import { parseSettingsPatch } from './settings.js';
import {
  copyAssignment,
  hasStaleProxy,
  nextHealthDeadline,
  type Outcome,
  ok,
  SchedulerTransaction,
  toProxyInfo,
} from './transaction.js';

/** A proxy without a heartbeat for this long is down. */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 60_000;
// When a health check itself fails (a store error), try again this soon rather than at the next deadline.
const HEALTH_RETRY_MS = 1_000;

export interface ProxySchedulerOptions {
  /** Where proxies, bindings and assignments live. Default: in memory (lost with the process). */
  store?: StateStore;
  /** Default: the system clock. */
  clock?: Clock;
  /** Default 60,000. */
  heartbeatTimeoutMs?: number;
  /**
   * Per-host connection limits by platform id (what the platform's connector
   * declares in `capabilities.perHostLimits`): `assign` counts the connections
   * of tasks with a `platformHost` across all proxies and refuses one that
   * would exceed the limit with `no-capacity` naming the host.
   */
  hostLimits?: HostLimits;
  logger?: Logger;
}

const schedulerOptionsSchema = z.object({
  heartbeatTimeoutMs: z.number().int().min(1).max(86_400_000).optional(),
});

/** A {@link ProxyScheduler} on `store`, measuring time with `clock`. */
export function createProxyScheduler(options: ProxySchedulerOptions = {}): ProxyScheduler {
  const parsed = parseConfig(schedulerOptionsSchema, options, 'scheduler options');
  const store = options.store ?? createMemoryStateStore();
  if (typeof store.read !== 'function' || typeof store.update !== 'function') {
    throw new SyncproxyError(
      'invalid scheduler options: store: must implement StateStore (read, update, close)',
      {
        code: 'config',
        retryable: false,
      },
    );
  }
  const clock = options.clock ?? systemClock;
  if (typeof clock.now !== 'function') {
    throw new SyncproxyError('invalid scheduler options: clock: must have now()', {
      code: 'config',
      retryable: false,
    });
  }
  return new Scheduler(
    store,
    clock,
    parsed.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS,
    options.logger ?? silentLogger,
    hostLimitLookup(options.hostLimits),
  );
}

function hostLimitLookup(limits: HostLimits | undefined): HostLimitLookup {
  if (limits === undefined) return () => undefined;
  if (typeof limits !== 'function' && (typeof limits !== 'object' || limits === null)) {
    throw new SyncproxyError(
      'invalid scheduler options: hostLimits: must be a record of { maxConnections } by platform id, or a function',
      { code: 'config', retryable: false },
    );
  }
  const lookup = typeof limits === 'function' ? limits : (platformId: string) => limits[platformId];
  const checked: HostLimitLookup = (platformId) => {
    const max = lookup(platformId)?.maxConnections;
    if (max === undefined) return undefined;
    if (!Number.isInteger(max) || max < 0) {
      throw new SyncproxyError(
        `invalid scheduler options: hostLimits: platform ${platformId}: maxConnections must be a whole number >= 0`,
        { code: 'config', retryable: false },
      );
    }
    return max;
  };
  // A record is checked whole now; a function's answers when asked.
  if (typeof limits !== 'function') for (const platformId of Object.keys(limits)) checked(platformId);
  return checked;
}

interface Waiter {
  task: SyncTask;
  waitMs: number;
  /** An attempt is running: the timer and the abort leave settling to it. */
  busy: boolean;
  /** Capacity may have grown since the last attempt began. */
  kicked: boolean;
  expired: boolean;
  aborted: boolean;
  settled: boolean;
  signal: AbortSignal | undefined;
  resolve(assignment: Assignment): void;
  reject(error: unknown): void;
  cleanup(): void;
}

type Sweep = 'before' | 'after';

class Scheduler implements ProxyScheduler {
  private readonly listeners = new Set<(event: SchedulerEvent) => void>();
  private healthTimer: { at: number; cancel: () => void } | undefined;
  private readonly waiters: Waiter[] = [];
  private draining = false;
  private closed = false;
  private readonly unwatch: (() => void) | undefined;
  /** Never throws inside a store update: `assign` asked the checked lookup for its platform first. */
  private readonly hostLimit: HostLimitLookup = (platformId) => {
    try {
      return this.checkedHostLimit(platformId);
    } catch {
      return undefined;
    }
  };

  constructor(
    private readonly store: StateStore,
    private readonly clock: Clock,
    private readonly heartbeatTimeoutMs: number,
    private readonly logger: Logger,
    private readonly checkedHostLimit: HostLimitLookup,
  ) {
    // Another node's change: its events reach this node's listeners, and its freed slots this node's waiters.
    this.unwatch = store.watch?.((change) => {
      if (this.closed) return;
      this.publish(change.events);
      if (change.capacityGrew) this.kickWaiters();
      void this.store
        .read((state) => nextHealthDeadline(state, heartbeatTimeoutMs))
        .then((deadline) => this.armHealthTimer(deadline))
        .catch(() => undefined);
    });
    // A store that outlived an earlier scheduler may hold proxies whose heartbeat time is already running out.
    store
      .read((state) => nextHealthDeadline(state, heartbeatTimeoutMs))
      .then(
        (deadline) => this.armHealthTimer(deadline),
        (error: unknown) =>
          this.logger.warn({ error: String(error) }, 'proxy scheduler: could not read the state'),
      );
  }

  async registerProxy(input: RegisterProxyInput): Promise<ProxyInfo> {
    const parsed = parseRegisterInput(input);
    const settings = parseSettingsPatch(parsed.settings, parsed.force === true);
    const info = await this.run((tx) => tx.registerProxy({ ...parsed, settings }));
    this.warnForced(info);
    return info;
  }

  async updateSettings(
    proxyId: string,
    settings: Partial<ProxySettings>,
    options: UpdateSettingsOptions = {},
  ): Promise<ProxyInfo> {
    const id = parseId(proxyId, 'proxy id');
    const patch = parseSettingsPatch(settings, options.force === true);
    const info = await this.run((tx) => tx.updateSettings(id, patch));
    this.warnForced(info);
    return info;
  }

  async removeProxy(proxyId: string): Promise<void> {
    const id = parseId(proxyId, 'proxy id');
    await this.run((tx) => tx.removeProxy(id));
  }

  async bind(proxyId: string, platformId: string): Promise<void> {
    const id = parseId(proxyId, 'proxy id');
    const platform = parseId(platformId, 'platform id');
    await this.run((tx) => tx.bind(id, platform));
  }

  async unbind(proxyId: string, platformId: string): Promise<void> {
    const id = parseId(proxyId, 'proxy id');
    const platform = parseId(platformId, 'platform id');
    await this.run((tx) => tx.unbind(id, platform));
  }

  async heartbeat(proxyId: string): Promise<void> {
    const id = parseId(proxyId, 'proxy id');
    // The heartbeat lands before the sweep: a proxy heard from now is not failed over for being late.
    await this.run((tx) => tx.heartbeat(id), 'after');
  }

  getProxy(proxyId: string): Promise<ProxyInfo> {
    const id = parseId(proxyId, 'proxy id');
    return this.view((state) => {
      const record = state.proxies.get(id);
      if (record) return ok(toProxyInfo(record));
      return {
        ok: false,
        error: new SyncproxyError(`no proxy ${id} is registered`, {
          code: 'not-found',
          retryable: false,
          details: { proxyId: id },
        }),
      };
    });
  }

  listProxies(): Promise<ProxyInfo[]> {
    return this.view((state) => ok([...state.proxies.values()].sort(byId).map(toProxyInfo)));
  }

  async assign(task: SyncTask, options: AssignOptions = {}): Promise<Assignment> {
    const parsed = parseTask(task);
    const { waitMs, signal } = parseConfig(assignOptionsSchema, options, 'assign options');
    if (signal?.aborted) throw abortError(signal, 'assign');
    if (parsed.platformHost) this.checkedHostLimit(parsed.platformId);
    if (!waitMs) return copyAssignment(await this.run((tx) => tx.assign(parsed)));
    return copyAssignment(await this.assignWaiting(parsed, waitMs, signal));
  }

  async release(taskId: string): Promise<void> {
    const id = parseId(taskId, 'task id');
    await this.run((tx) => tx.release(id));
  }

  getAssignment(taskId: string): Promise<Assignment> {
    const id = parseId(taskId, 'task id');
    return this.view((state) => {
      const assignment = state.assignments.get(id);
      if (assignment) return ok(copyAssignment(assignment));
      const stranded = state.stranded.get(id);
      return {
        ok: false,
        error: new SyncproxyError(
          stranded
            ? `task ${id} is not assigned: failover stranded it (${stranded.reason}); assign it again`
            : `task ${id} is not assigned`,
          { code: 'not-found', retryable: false, details: { taskId: id, stranded: stranded !== undefined } },
        ),
      };
    });
  }

  listAssignments(filter: AssignmentFilter = {}): Promise<Assignment[]> {
    const { proxyId, platformId } = parseAssignmentFilter(filter);
    return this.view((state) => {
      const out: Assignment[] = [];
      for (const a of state.assignments.values()) {
        if (proxyId !== undefined && a.proxyId !== proxyId) continue;
        if (platformId !== undefined && a.task.platformId !== platformId) continue;
        out.push(copyAssignment(a));
      }
      return ok(out.sort((a, b) => compareIds(a.task.id, b.task.id)));
    });
  }

  listStranded(): Promise<StrandedTask[]> {
    return this.view((state) =>
      ok(
        [...state.stranded.values()]
          .map((s) => ({ ...s, task: { ...s.task } }))
          .sort((a, b) => compareIds(a.task.id, b.task.id)),
      ),
    );
  }

  async checkHealth(): Promise<HealthReport> {
    const report = await this.run(() => ok(undefined), 'before', true);
    return report;
  }

  on(listener: (event: SchedulerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.healthTimer?.cancel();
    this.healthTimer = undefined;
    this.unwatch?.();
    const closedError = new SyncproxyError('assign aborted: the scheduler was closed', {
      code: 'aborted',
      retryable: false,
    });
    for (const waiter of [...this.waiters]) {
      // A running attempt settles its waiter itself (closed stores refuse it).
      if (!waiter.busy) this.settle(waiter, { error: closedError });
    }
    this.listeners.clear();
  }

  /** Runs one operation in a store update, after (or before) the health sweep, then publishes what it did. */
  private run<T>(op: (tx: SchedulerTransaction) => Outcome<T>, sweep?: Sweep): Promise<T>;
  private run<T>(
    op: (tx: SchedulerTransaction) => Outcome<T>,
    sweep: Sweep,
    health: true,
  ): Promise<HealthReport>;
  private async run<T>(
    op: (tx: SchedulerTransaction) => Outcome<T>,
    sweep: Sweep = 'before',
    health = false,
  ): Promise<T | HealthReport> {
    this.assertOpen();
    const now = this.clock.now();
    const done = await this.store.update((state) => {
      const tx = new SchedulerTransaction(state, now, this.heartbeatTimeoutMs, this.hostLimit);
      if (sweep === 'before') tx.sweep();
      const outcome = op(tx);
      if (sweep === 'after') tx.sweep();
      const deadline = nextHealthDeadline(state, this.heartbeatTimeoutMs);
      // Detached copies: listeners and callers never hold objects the state keeps.
      const events = tx.events.map((e) => structuredClone(e));
      const report = health ? structuredClone(tx.health) : undefined;
      return {
        result: { outcome, events, deadline, capacityGrew: tx.capacityGrew, report },
        changed: tx.changed,
        touched: tx.touched,
        notice: { events, capacityGrew: tx.capacityGrew },
      };
    });
    this.publish(done.events);
    this.armHealthTimer(done.deadline);
    if (done.capacityGrew) this.kickWaiters();
    if (!done.outcome.ok) throw done.outcome.error;
    return health ? done.report! : done.outcome.value;
  }

  /** Reads without the store's write path, unless a proxy is due to go down: then the sweep runs first. */
  private async view<T>(fn: (state: Readonly<SchedulerState>) => Outcome<T>): Promise<T> {
    this.assertOpen();
    const now = this.clock.now();
    const outcome = await this.store.read((state) =>
      hasStaleProxy(state, now, this.heartbeatTimeoutMs) ? undefined : fn(state),
    );
    if (outcome === undefined) return this.run((tx) => fn(tx.state));
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  private publish(events: SchedulerEvent[]): void {
    for (const event of events) {
      if (event.type === 'failed-over') {
        this.logger.warn(
          {
            proxyId: event.fromProxyId,
            moved: event.moved.map((a) => `${a.task.id}->${a.proxyId}`),
            stranded: event.stranded.map((t) => t.id),
          },
          'proxy scheduler: failed over the tasks of a down proxy',
        );
      } else if (event.type === 'proxy-down') {
        this.logger.warn(
          {
            proxyId: event.proxyId,
            lastHeartbeatAt: event.lastHeartbeatAt,
          },
          'proxy scheduler: proxy down (no heartbeat)',
        );
      }
      for (const listener of [...this.listeners]) {
        try {
          listener(event);
        } catch (error) {
          this.logger.warn(
            {
              event: event.type,
              error: String(error),
            },
            'proxy scheduler: an event listener threw',
          );
        }
      }
    }
  }

  private warnForced(info: ProxyInfo): void {
    for (const warning of info.warnings)
      this.logger.warn({ code: warning.code }, `proxy ${info.id}: ${warning.message}`);
  }

  /** One timer, at the earliest moment a healthy proxy can run out of heartbeat time. */
  private armHealthTimer(deadline: number | undefined): void {
    if (this.closed) return;
    if (deadline === undefined) {
      this.healthTimer?.cancel();
      this.healthTimer = undefined;
      return;
    }
    // A later deadline needs no new timer: the early one finds nothing due and re-arms.
    if (this.healthTimer && this.healthTimer.at <= deadline) return;
    this.healthTimer?.cancel();
    const delay = Math.max(0, deadline - this.clock.now());
    this.healthTimer = {
      at: deadline,
      cancel: setClockTimer(this.clock, () => this.onHealthTimer(), delay, { background: true }),
    };
  }

  private async onHealthTimer(): Promise<void> {
    this.healthTimer = undefined;
    if (this.closed) return;
    try {
      await this.checkHealth();
    } catch (error) {
      if (this.closed) return;
      this.logger.warn({ error: String(error) }, 'proxy scheduler: health check failed; retrying');
      this.armHealthTimer(this.clock.now() + Math.min(HEALTH_RETRY_MS, this.heartbeatTimeoutMs));
    }
  }

  private assignWaiting(
    task: SyncTask,
    waitMs: number,
    signal: AbortSignal | undefined,
  ): Promise<Assignment> {
    return new Promise<Assignment>((resolve, reject) => {
      const onAbort = (): void => {
        waiter.aborted = true;
        if (!waiter.busy) this.settle(waiter, { error: abortError(signal, 'assign') });
      };
      const cancelTimer = setClockTimer(this.clock, () => this.expire(waiter), waitMs);
      const waiter: Waiter = {
        task,
        waitMs,
        busy: false,
        kicked: false,
        expired: false,
        aborted: false,
        settled: false,
        signal,
        resolve,
        reject,
        cleanup: () => {
          cancelTimer();
          signal?.removeEventListener('abort', onAbort);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      // Listed before the first attempt, so capacity freed while it runs marks it for another.
      this.waiters.push(waiter);
      void this.attempt(waiter).then(() => {
        if (waiter.kicked) this.kickWaiters();
      });
    });
  }

  /** One try to place a waiting task; settles the waiter unless it should keep waiting. */
  private async attempt(waiter: Waiter): Promise<void> {
    waiter.busy = true;
    waiter.kicked = false;
    let outcome: { assignment: Assignment } | { error: unknown };
    try {
      outcome = { assignment: await this.run((tx) => tx.assign(waiter.task)) };
    } catch (error) {
      outcome = { error };
    }
    waiter.busy = false;
    if ('assignment' in outcome) return this.settle(waiter, outcome);
    const { error } = outcome;
    if (!SyncproxyError.hasCode(error, 'no-capacity')) return this.settle(waiter, outcome);
    if (waiter.aborted) return this.settle(waiter, { error: abortError(waiter.signal, 'assign') });
    if (waiter.expired) return this.settle(waiter, { error: afterWaiting(error, waiter.waitMs) });
    if (this.closed) {
      return this.settle(waiter, {
        error: new SyncproxyError('assign aborted: the scheduler was closed', {
          code: 'aborted',
          retryable: false,
        }),
      });
    }
  }

  private expire(waiter: Waiter): Promise<void> | undefined {
    if (waiter.settled) return undefined;
    waiter.expired = true;
    if (waiter.busy) return undefined;
    // One last try at the deadline: another process sharing the store may have freed slots unseen.
    return this.attempt(waiter);
  }

  private settle(waiter: Waiter, outcome: { assignment: Assignment } | { error: unknown }): void {
    if (waiter.settled) return;
    waiter.settled = true;
    waiter.cleanup();
    const index = this.waiters.indexOf(waiter);
    if (index !== -1) this.waiters.splice(index, 1);
    if ('assignment' in outcome) waiter.resolve(outcome.assignment);
    else waiter.reject(outcome.error);
  }

  /** Capacity may have grown: retry waiting assigns, oldest first, until a pass frees nothing more. */
  private kickWaiters(): void {
    if (this.waiters.length === 0) return;
    for (const waiter of this.waiters) waiter.kicked = true;
    if (this.draining) return;
    this.draining = true;
    void this.drain();
  }

  private async drain(): Promise<void> {
    try {
      for (;;) {
        const next = this.waiters.find((w) => w.kicked && !w.busy && !w.settled);
        if (!next) return;
        await this.attempt(next);
      }
    } finally {
      this.draining = false;
    }
  }

  private assertOpen(): void {
    if (this.closed)
      throw new SyncproxyError('proxy scheduler is closed', { code: 'aborted', retryable: false });
  }
}

function afterWaiting(error: SyncproxyError, waitMs: number): SyncproxyError {
  const why = error.message.replace(/^assign refused: /, '');
  return new SyncproxyError(`assign refused after waiting ${waitMs} ms: ${why}`, {
    code: error.code,
    retryable: error.retryable,
    details: { ...error.details, waitedMs: waitMs },
  });
}

function byId(a: { id: string }, b: { id: string }): number {
  return compareIds(a.id, b.id);
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
