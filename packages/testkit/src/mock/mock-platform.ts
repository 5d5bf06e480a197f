import type { ConnectorContext } from '@syncproxy/core';

/** A host (VM) the contract suite asks a mock platform to create. */
export interface MockHostSpec {
  name: string;
  disks: Array<{ sizeBytes: number }>;
}

/** The created host, with the ids the connector will list. */
export interface MockHostRef {
  id: string;
  name: string;
  disks: Array<{ id: string; sizeBytes: number }>;
}

/**
 * What a connector's mock platform lets the contract suite do: create a VM
 * with disks, write bytes, read back the truth, and inject faults. Each
 * connector's `./mock` implements it on top of the testkit's mock server and
 * virtual disks.
 */
export interface MockPlatform {
  /** Creates a powered-on host with empty (all-zero) disks of these sizes. */
  createHost(spec: MockHostSpec): Promise<MockHostRef>;
  /**
   * The "add platform" form, with valid credentials, that reaches this
   * platform and shows the hosts created so far. Called after `createHost`.
   */
  config(): unknown;
  /** Extra context the connector needs (a dispatcher trusting the mock's CA...). */
  context?(): ConnectorContext;
  writeDisk(diskId: string, offset: number, data: Uint8Array): Promise<void>;
  writeZeroes(diskId: string, offset: number, length: number): Promise<void>;
  /** The live disk's bytes: the truth a sync is compared with. */
  readDisk(diskId: string, offset: number, length: number): Promise<Uint8Array>;
  /** Snapshots the platform still holds for the host: `deleteSnapshot` must bring it back down. */
  snapshotCount(hostId: string): Promise<number>;
  /**
   * `config` with credentials the platform refuses. Absent only for platforms
   * with no credentials (a local disk): the suite then checks that the
   * config has no secret fields.
   */
  badCredentials?(config: unknown): unknown;
  /**
   * Makes every platform call answer "throttled" until the returned function
   * is called. Absent only for platforms without an API to throttle: the
   * suite then checks that the connector needs no network endpoint.
   */
  throttle?(): () => void;
  /** Stops servers and removes files; the suite calls it once at the end. */
  close(): Promise<void>;
}
