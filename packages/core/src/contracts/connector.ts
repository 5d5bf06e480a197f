import type { Dispatcher } from 'undici';
import type { z } from 'zod';
import type { Logger } from './logger.js';
import type { ChangedBlockReader, SyncWarning } from './reader.js';

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
  signal?: AbortSignal;
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
  /** Releases sockets, timers and child processes. */
  close(): Promise<void>;
  /** Degraded modes the session fell into (e.g. hash diff for lack of CBT). */
  readonly warnings?: readonly SyncWarning[];
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
  connect(config: unknown, context?: ConnectorContext): Promise<ConnectorSession>;
}

/** A connector of any config type, as a registry holds them. */
// biome-ignore lint/suspicious/noExplicitAny: a registry holds connectors whose config types differ
export type AnySourceConnector = SourceConnector<any>;
