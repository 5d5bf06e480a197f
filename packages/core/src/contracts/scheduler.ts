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
  /** Clock time (ms) of the last heartbeat. */
  lastHeartbeatAt: number;
  /** Platform ids this proxy is bound to. */
  bindings: string[];
  load: ProxyLoad;
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
}

export interface Assignment {
  task: SyncTask;
  proxyId: string;
  /** Clock time (ms). */
  assignedAt: number;
}

export type SchedulerEvent =
  | { type: 'assigned'; assignment: Assignment }
  | { type: 'released'; assignment: Assignment }
  | { type: 'proxy-down'; proxyId: string; lastHeartbeatAt: number }
  | { type: 'failed-over'; fromProxyId: string; moved: Assignment[]; stranded: SyncTask[] };

export interface RegisterProxyInput {
  id: string;
  name?: string;
  address?: string;
  settings?: Partial<ProxySettings>;
}

export interface AssignOptions {
  /** Wait up to this long for capacity instead of failing at once. */
  waitMs?: number;
  signal?: AbortSignal;
}

/** Where disk-sync work runs: proxies, bindings, placement and failover. Spec v1. */
export interface ProxyScheduler {
  registerProxy(input: RegisterProxyInput): Promise<ProxyInfo>;
  updateSettings(
    proxyId: string,
    settings: Partial<ProxySettings>,
    options?: { force?: boolean },
  ): Promise<ProxyInfo>;
  /** Refused while the proxy has any binding. */
  removeProxy(proxyId: string): Promise<void>;
  bind(proxyId: string, platformId: string): Promise<void>;
  /** Refused while the proxy has tasks of that platform. */
  unbind(proxyId: string, platformId: string): Promise<void>;
  heartbeat(proxyId: string): Promise<void>;
  getProxy(proxyId: string): Promise<ProxyInfo>;
  listProxies(): Promise<ProxyInfo[]>;
  /** Places a task on a healthy bound proxy with free slots, least loaded first. */
  assign(task: SyncTask, options?: AssignOptions): Promise<Assignment>;
  release(taskId: string): Promise<void>;
  /** Subscribes to events; returns the unsubscribe function. */
  on(listener: (event: SchedulerEvent) => void): () => void;
  close(): Promise<void>;
}
