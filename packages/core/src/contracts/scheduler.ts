import type { SyncWarning } from './reader.js';

/** Settings of a sync proxy, with the products' defaults. */
export interface ProxySettings {
  /** A call to the platform or console with no answer for this long fails. Default 600. */
  httpTimeoutSec: number;
  /** Disks the proxy may have attached at once (mount slots). Default 50; above 150 refused unless forced. */
  maxMountedDisks: number;
}

export type ProxyHealth = 'healthy' | 'down';

export interface ProxyLoad {
  tasks: number;
  mountSlotsUsed: number;
  mountSlotsFree: number;
}

/** A registered sync proxy, as the scheduler sees it. */
export interface ProxyInfo {
  id: string;
  name: string;
  address?: string;
  settings: ProxySettings;
  health: ProxyHealth;
  /** Clock time (ms) of the registration. */
  registeredAt: number;
  /** Clock time (ms) of the last heartbeat. */
  lastHeartbeatAt: number;
  /** Platform ids this proxy is bound to, sorted. */
  bindings: string[];
  load: ProxyLoad;
  /** Settings outside the recommended range that were accepted with `force` (empty when none). */
  warnings: SyncWarning[];
}

/** A unit of disk-sync work to place on a proxy. */
export interface SyncTask {
  id: string;
  /** The platform (as registered in the product) the task reads from. */
  platformId: string;
  /** Mount slots the data path takes: one per attached disk (Oracle, HCS); 0 for API paths (AWS, VMware NBD, Ceph). */
  mountSlots: number;
  /** Where the task's transfer checkpoint lives, so another proxy can resume it. */
  checkpointRef?: string;
  /**
   * The platform host the task's data path connects to (a CNA, an ESXi host)
   * and the connections it opens there, for per-host limits
   * (`ConnectorCapabilities.perHostLimits`) honoured across all proxies.
   */
  platformHost?: { id: string; connections: number };
}

export interface Assignment {
  task: SyncTask;
  proxyId: string;
  /** Clock time (ms). */
  assignedAt: number;
  /**
   * Set when failover moved the task here: the proxy that held it. The new proxy
   * resumes from `task.checkpointRef` instead of starting over.
   */
  failedOverFrom?: string;
}

/** A task that failover took off a down proxy and could place nowhere. `assign` it again, or `release` it. */
export interface StrandedTask {
  task: SyncTask;
  fromProxyId: string;
  /** Clock time (ms) it was stranded. */
  since: number;
  /** Why no proxy took it, as the no-capacity error would say. */
  reason: string;
}

export type SchedulerEvent =
  | { type: 'assigned'; assignment: Assignment }
  | { type: 'released'; assignment: Assignment }
  | { type: 'proxy-down'; proxyId: string; lastHeartbeatAt: number }
  | { type: 'proxy-up'; proxyId: string }
  /** Tasks moved off a down proxy (`moved`, with their new proxy) and those no proxy could take (`stranded`). */
  | { type: 'failed-over'; fromProxyId: string; moved: Assignment[]; stranded: SyncTask[] };

export interface RegisterProxyInput {
  id: string;
  /** Defaults to the id. */
  name?: string;
  address?: string;
  settings?: Partial<ProxySettings>;
  /** Accept `maxMountedDisks` above the recommended 150 (the proxy then carries a warning). */
  force?: boolean;
}

export interface UpdateSettingsOptions {
  /** Accept `maxMountedDisks` above the recommended 150 (the proxy then carries a warning). */
  force?: boolean;
}

export interface AssignOptions {
  /** Wait up to this long (clock ms) for capacity instead of failing at once. */
  waitMs?: number;
  signal?: AbortSignal;
}

export interface AssignmentFilter {
  proxyId?: string;
  platformId?: string;
}

/** What one health check found: proxies newly marked down, and where their tasks went. */
export interface HealthReport {
  down: string[];
  moved: Assignment[];
  stranded: SyncTask[];
}

/**
 * Where disk-sync work runs: proxies, bindings, placement and failover. Spec v1.
 *
 * A proxy with no heartbeat for the scheduler's `heartbeatTimeoutMs` is marked
 * down and its tasks move to other healthy proxies bound to their platform. A
 * proxy that comes back must stop the tasks that are no longer its own
 * (`listAssignments({ proxyId })`) before it resumes work.
 */
export interface ProxyScheduler {
  /** Refused (`conflict`) when the id is already registered. */
  registerProxy(input: RegisterProxyInput): Promise<ProxyInfo>;
  updateSettings(
    proxyId: string,
    settings: Partial<ProxySettings>,
    options?: UpdateSettingsOptions,
  ): Promise<ProxyInfo>;
  /** Refused while the proxy has any binding. */
  removeProxy(proxyId: string): Promise<void>;
  /** Binding twice is a no-op. */
  bind(proxyId: string, platformId: string): Promise<void>;
  /** Refused while the proxy has tasks of that platform. */
  unbind(proxyId: string, platformId: string): Promise<void>;
  /** Marks the proxy alive; a down proxy becomes healthy again (with no tasks: failover took them). */
  heartbeat(proxyId: string): Promise<void>;
  getProxy(proxyId: string): Promise<ProxyInfo>;
  /** Sorted by id. */
  listProxies(): Promise<ProxyInfo[]>;
  /**
   * Places a task on a healthy bound proxy with enough free mount slots, least
   * loaded first (fewest tasks, then fewest slots used, then lowest id). Throws
   * `no-capacity` saying why when nothing fits, unless `waitMs` lets it wait.
   */
  assign(task: SyncTask, options?: AssignOptions): Promise<Assignment>;
  /** Ends an assignment (or forgets a stranded task). */
  release(taskId: string): Promise<void>;
  getAssignment(taskId: string): Promise<Assignment>;
  /** Sorted by task id. */
  listAssignments(filter?: AssignmentFilter): Promise<Assignment[]>;
  /** Tasks failover could not place, sorted by task id. */
  listStranded(): Promise<StrandedTask[]>;
  /** Marks proxies without a recent heartbeat down and fails their tasks over now (the scheduler also does this on its own). */
  checkHealth(): Promise<HealthReport>;
  /** Subscribes to events; returns the unsubscribe function. */
  on(listener: (event: SchedulerEvent) => void): () => void;
  /** Stops timers and rejects waiting assigns. Does not close the store (its creator owns it). */
  close(): Promise<void>;
}

/** A proxy as stored. `tasks` and `mountSlotsUsed` are kept with it so placement need not scan every assignment. */
export interface ProxyRecord {
  id: string;
  name: string;
  address?: string;
  settings: ProxySettings;
  registeredAt: number;
  lastHeartbeatAt: number;
  health: ProxyHealth;
  /** Sorted platform ids. */
  bindings: string[];
  tasks: number;
  mountSlotsUsed: number;
}

/** Everything a scheduler keeps. Proxies and assignments are keyed by id. */
export interface SchedulerState {
  proxies: Map<string, ProxyRecord>;
  assignments: Map<string, Assignment>;
  stranded: Map<string, StrandedTask>;
}

/** What a mutation returns to its store: a result, and whether the state changed (and must be persisted). */
export interface StateUpdate<T> {
  result: T;
  changed: boolean;
  /**
   * The proxies and tasks (assigned or stranded) the mutation changed, added or
   * removed, so a store can write only those records. Absent: anything may have changed.
   */
  touched?: { proxies: ReadonlySet<string>; tasks: ReadonlySet<string> };
  /** What to tell schedulers on other nodes once the change is durable (see {@link StateStore.watch}). */
  notice?: StateChange;
}

/** A change another scheduler sharing the store committed. */
export interface StateChange {
  /** The events its scheduler published for the change. Empty when the store could not carry them (then refetch). */
  events: SchedulerEvent[];
  /** Slots were freed or proxies became available: waiting assigns should try again. */
  capacityGrew: boolean;
}

/**
 * Where a scheduler keeps its state. Shipped: `createMemoryStateStore()` and
 * `createFileStateStore({ path })`. A database store implements the same two
 * calls as one transaction each (for example `SELECT ... FOR UPDATE` of the state,
 * then `UPDATE` when `changed`), so several control-plane nodes share one state.
 */
export interface StateStore {
  /** `memory`, `file`, ... for logs. */
  readonly kind: string;
  /** Runs `view` on a consistent state. `view` must not change it. */
  read<T>(view: (state: Readonly<SchedulerState>) => T): Promise<T>;
  /**
   * Runs `mutate` with exclusive access to the latest state (no other `update`,
   * in this process or another sharing the store, runs in between) and persists
   * the result atomically when `changed`. `mutate` is synchronous and throws only
   * before it changes anything; if it throws, nothing is persisted.
   */
  update<T>(mutate: (state: SchedulerState) => StateUpdate<T>): Promise<T>;
  /**
   * Optional, for stores shared by several processes: calls `listener` after
   * another process committed a change (its `StateUpdate.notice`). A scheduler
   * re-publishes the events and retries its waiting assigns. Returns the
   * unsubscribe function.
   */
  watch?(listener: (change: StateChange) => void): () => void;
  close(): Promise<void>;
}

/** The connection limit of each platform host, from `ConnectorCapabilities.perHostLimits`, by platform id. */
export type HostLimits =
  | Readonly<Record<string, { maxConnections?: number } | undefined>>
  | ((platformId: string) => { maxConnections?: number } | undefined);
