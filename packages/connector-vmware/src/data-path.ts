import { startNbdkit } from './nbdkit-process.js';
import { type VddkOptions, type VddkTarget, vddkCommand } from './vddk.js';

/** One disk of one snapshot, as the data path needs to serve it. */
export interface DiskDataTarget {
  /** VM moref, `vm-42`. */
  vm: string;
  /** Snapshot moref, `snapshot-7`. */
  snapshot: string;
  /** The disk's device key, 2000... */
  deviceKey: number;
  /** The disk's file at the snapshot, `[datastore1] vm/vm.vmdk`. */
  fileName: string;
  capacityBytes: number;
}

/** An NBD export serving a {@link DiskDataTarget}, and how to let it go. */
export interface DataEndpoint {
  /** `nbd://host:port/export` or `nbd+unix:///export?socket=PATH`. */
  uri: string;
  /** Stops whatever was started for it (an nbdkit process); called when the reader closes. */
  close(): Promise<void>;
}

/** Finds or starts the NBD export of a disk snapshot. A plain string is an export nobody has to stop. */
export type DataPathResolver = (
  target: DiskDataTarget,
  options: { signal?: AbortSignal },
) => Promise<DataEndpoint | string>;

/**
 * How disk data is read:
 * - `{ vddk: {...} }` (the default, with default settings): the connector spawns nbdkit's vddk plugin per disk snapshot;
 * - an NBD URI template, `{vm}`, `{snapshot}` and `{deviceKey}` replaced (percent-encoded): an export someone else serves;
 * - a resolver function: anything else (the mock's nbdkit, a hot-add appliance).
 */
export type DataPathOption = { vddk: VddkOptions } | string | DataPathResolver;

/** What the vddk data path needs from the session: the server, the credentials and the SHA-1 thumbprint. */
export interface VddkSessionFacts {
  server: string;
  port: number;
  user: string;
  password: string;
  thumbprintSha1: () => Promise<string>;
  redact: (text: string) => string;
}

/** A resolver that serves each disk snapshot with its own `nbdkit vddk` process. */
export function vddkResolver(options: VddkOptions, facts: VddkSessionFacts): DataPathResolver {
  return async (target, { signal }) => {
    const vddk: VddkTarget = {
      server: facts.server,
      port: facts.port,
      user: facts.user,
      thumbprintSha1: await facts.thumbprintSha1(),
      vm: target.vm,
      snapshot: target.snapshot,
      file: target.fileName,
    };
    const process = await startNbdkit({
      ...(options.nbdkit ? { command: options.nbdkit } : {}),
      args: (paths) => vddkCommand(vddk, paths, options).args,
      fd3: facts.password,
      ...(options.startTimeoutMs !== undefined ? { startTimeoutMs: options.startTimeoutMs } : {}),
      ...(signal ? { signal } : {}),
      redact: facts.redact,
    });
    return { uri: process.uri, close: () => process.stop() };
  };
}

/** A resolver from an NBD URI template. */
export function templateResolver(template: string): DataPathResolver {
  return async (target) =>
    template
      .replaceAll('{vm}', encodeURIComponent(target.vm))
      .replaceAll('{snapshot}', encodeURIComponent(target.snapshot))
      .replaceAll('{deviceKey}', String(target.deviceKey));
}
