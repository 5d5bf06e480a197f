import type { Dispatcher } from 'undici';
import type { z } from 'zod';
import type { DiskManifest } from '../transfer/manifest.js';
import type { Logger } from './logger.js';
import type { ChangedBlockReader, DisposableReader, SyncWarning } from './reader.js';

/** The contract versions this build of the core understands. */
export const SUPPORTED_SPEC_VERSIONS = ['v1'] as const;
export type SpecVersion = (typeof SUPPORTED_SPEC_VERSIONS)[number];

/**
 * How a platform finds changed blocks:
 * - `native`: a CBT-like API names changed blocks (VMware CBT, EBS ListChangedBlocks, rbd diff);
 * - `allocation`: only allocated blocks are known; incrementals fall back to hashing;
 * - `hash`: every block is read and only those whose SHA-256 changed are sent.
 */
export type ChangeTracking = 'native' | 'allocation' | 'hash';

export interface ConnectorCapabilities {
  changeTracking: ChangeTracking;
  /** All disks of a host can be snapshotted together, crash-consistently. */
  consistentMultiDiskSnapshot: boolean;
  /** Each open reader attaches a disk to the proxy and takes one of its mount slots. */
  mountsDisks: boolean;
  /** Snapshots can be quiesced by guest tools. */
  quiescedSnapshots: boolean;
  /**
   * Limits per platform host (an ESXi or CNA host) that the proxy scheduler
   * honours across all proxies and tasks: FusionCompute allows 8 backup
   * connections per host. Absent: no per-host limit.
   */
  perHostLimits?: PerHostLimits;
}

/** Limits a platform sets per platform host, whatever proxy the work runs on. */
export interface PerHostLimits {
  /** Data connections open at once to one platform host. */
  maxConnections?: number;
}

/** A proxy mount slot held by one open reader; given back on close and on failure. */
export interface MountSlot {
  /** The proxy the slot belongs to, when a scheduler handed it out. */
  readonly proxyId?: string;
  /** Gives the slot back. Idempotent. */
  release(): Promise<void>;
}

export interface MountSlotRequest {
  /** Connector id. */
  platform: string;
  hostId?: string;
  diskId: string;
  signal?: AbortSignal;
}

/**
 * Hands out the proxy's mount slots (max mounted disks, default 50). Readers
 * that attach a volume to the proxy take one per open reader. The product
 * passes one backed by its {@link ProxyScheduler}; without one, a connector
 * uses an in-process limit with the product default.
 */
export interface MountSlotProvider {
  /** Waits for a free slot, or throws `no-capacity` as the provider's policy says. */
  acquire(request: MountSlotRequest): Promise<MountSlot>;
}

/**
 * Where the proxy's devices appear. Defaults are the host's (`/dev/disk/by-id`,
 * `/sys/block`); tests and mocks point them at directories of their own.
 */
export interface DeviceDirectories {
  byIdDir?: string;
  sysBlockDir?: string;
}

/** An endpoint the proxy must reach, from the products' network-policy tables. */
export interface NetworkRequirement {
  host: string;
  port: number;
  /** Why: "vCenter API", "ESXi disk data (NBD)", "Ceph monitor". */
  purpose: string;
}

/** What the embedding product hands a connector. */
export interface ConnectorContext {
  /** HTTP(S) dispatcher built from the proxy settings ({@link createDispatcher}). */
  dispatcher?: Dispatcher;
  logger?: Logger;
  signal?: AbortSignal;
  /** Name -> IP records for platforms managed by names the proxy cannot resolve. */
  hostOverrides?: Record<string, string>;
  /** HTTP timeout of the proxy, seconds (product default 600). */
  httpTimeoutSec?: number;
  /** Mount slots of this proxy, for connectors whose readers attach volumes (`capabilities.mountsDisks`). */
  mountSlots?: MountSlotProvider;
  /** Where attached volumes appear on this proxy. */
  devices?: DeviceDirectories;
}

/** The "normal" status a product shows after a platform is added. */
export interface PlatformStatus {
  status: 'normal' | 'abnormal';
  /** Clusters/hosts for VMware and FusionCompute, instances for clouds. */
  hostCount: number;
  /** Platform version or product name, when known. */
  platformVersion?: string;
  message?: string;
}

/** A disk of a host, as listed by the platform. */
export interface Disk {
  id: string;
  name?: string;
  sizeBytes: number;
  /** Device path or bus position on the host (`/dev/xvda`, `scsi0:1`). */
  device?: string;
  boot?: boolean;
  /** Platform facts a product may show (volume type, datastore, encryption). */
  attributes?: Record<string, string | number | boolean>;
}

/** A VM or cloud instance. */
export interface Host {
  id: string;
  name: string;
  powerState?: 'on' | 'off' | 'suspended' | 'unknown';
  os?: string;
  disks: Disk[];
  attributes?: Record<string, string | number | boolean>;
}

/** One disk's part of a snapshot. `data` is the connector's own JSON (snapshot ids, change ids). */
export interface DiskSnapshotRef {
  diskId: string;
  sizeBytes: number;
  data: Record<string, unknown>;
}

/**
 * A snapshot of a host, as plain JSON: a product stores it and passes it back
 * as `base` for the next incremental, possibly from another proxy.
 */
export interface SnapshotRef {
  id: string;
  platform: string;
  hostId: string;
  /** ISO-8601. */
  createdAt: string;
  disks: DiskSnapshotRef[];
  data?: Record<string, unknown>;
}

export interface CreateSnapshotOptions {
  /** Ask guest tools to quiesce file systems (where the platform can). */
  quiesce?: boolean;
  /** A name or description the platform records (tags, snapshot name). */
  label?: string;
  signal?: AbortSignal;
}

export interface OpenReaderOptions {
  snapshot: SnapshotRef;
  /** The snapshot of the previous sync, for an incremental read. */
  base?: SnapshotRef;
  /**
   * The manifest of the target image as the previous transfer left it, when the
   * caller (`syncHost`) has one. Connectors without change tracking hand it to
   * `createHashDiffReader`, so only chunks whose hash changed are sent.
   */
  previousManifest?: DiskManifest;
  signal?: AbortSignal;
}

export interface SweepOptions {
  /** Only what was created before this time (ISO-8601 or Date). Default: everything found. */
  olderThan?: Date | string;
  /** List only; delete nothing. */
  dryRun?: boolean;
  /** Resources the caller still needs (snapshot ids a sync state references): never deleted. */
  keep?: readonly string[];
  signal?: AbortSignal;
}

/** A platform resource this SDK created, found by its tag or label. */
export interface SweptResource {
  /** `snapshot`, `volume`, `attachment`, `clone`, `object`, `backup-resource`, `mapping`, ... */
  kind: string;
  id: string;
  /** ISO-8601, when the platform says. */
  createdAt?: string;
  /** Deleted by this sweep (false on a dry run, or when kept). */
  deleted: boolean;
}

export interface SweepReport {
  resources: SweptResource[];
}

/** A numbered, explained pre-check, like the products' agent pre-checks. */
export interface PrecheckResult {
  /** Stable id, e.g. `cbt-enabled`. */
  id: string;
  title: string;
  status: 'pass' | 'warn' | 'fail';
  detail: string;
  /** What the user should do when it does not pass. */
  remedy?: string;
}

/** A connected platform. Every method may throw a {@link SyncproxyError}. */
export interface ConnectorSession {
  verify(): Promise<PlatformStatus>;
  listHosts(): Promise<Host[]>;
  prechecks(host: Host): Promise<PrecheckResult[]>;
  /** Snapshots every disk of the host, together where the platform allows. */
  createSnapshot(host: Host, options?: CreateSnapshotOptions): Promise<SnapshotRef>;
  openReader(disk: Disk, options: OpenReaderOptions): Promise<ChangedBlockReader>;
  deleteSnapshot(snapshot: SnapshotRef): Promise<void>;
  /**
   * Optional: lists, and unless `dryRun` deletes, what this SDK created on the
   * platform (snapshots, clones, attachments, exported objects), found by its
   * tag or label, never anything else.
   */
  sweep?(options?: SweepOptions): Promise<SweepReport>;
  /** Releases sockets, timers and child processes. */
  close(): Promise<void>;
  /** Degraded modes the session fell into (e.g. hash diff for lack of CBT). */
  readonly warnings?: readonly SyncWarning[];
}

/**
 * A session as `connect()` of a connector made by `defineConnector` hands it out:
 * `await using session = await connector.connect(...)` closes it at the end of the block, also when
 * the block throws; its readers dispose the same way.
 */
export interface DisposableSession extends ConnectorSession {
  openReader(disk: Disk, options: OpenReaderOptions): Promise<DisposableReader>;
  /** The same as `close()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** A platform connector, as made by `defineConnector`. Spec v1. */
export interface SourceConnector<Config = unknown> {
  /** Stable id, lowercase: `aws`, `vmware`, `openstack-ceph`. */
  readonly id: string;
  readonly displayName: string;
  readonly specVersion: SpecVersion;
  /** Version of the connector package. */
  readonly version: string;
  /** The "add platform" form. */
  readonly configSchema: z.ZodType<Config>;
  readonly capabilities: ConnectorCapabilities;
  /** The endpoints and ports the proxy must reach for this config. */
  networkRequirements(config: Config): NetworkRequirement[];
  /** Validates `config` against `configSchema` and opens a session. */
  connect(config: unknown, context?: ConnectorContext): Promise<DisposableSession>;
}

/** A connector of any config type, as a registry holds them. */
// biome-ignore lint/suspicious/noExplicitAny: a registry holds connectors whose config types differ
export type AnySourceConnector = SourceConnector<any>;
