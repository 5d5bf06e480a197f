import type { NbdkitPaths } from './nbdkit-process.js';

/** How the proxy runs nbdkit's vddk plugin (nbdkit-vddk-plugin(1)). */
export interface VddkOptions {
  /** The nbdkit binary. Default `nbdkit`. */
  nbdkit?: string;
  /** Where VDDK is installed (`libdir=`), e.g. `/opt/vmware-vix-disklib-distrib`. */
  libdir?: string;
  /** A VDDK config file (`config=`). */
  config?: string;
  /** Transport modes in order of preference. Default `['nbd', 'nbdssl']`, which need only port 902 of the ESXi hosts. */
  transports?: string[];
  /** NFC compression (`compression=`): none, zlib, fastlz, skipz. */
  compression?: 'none' | 'zlib' | 'fastlz' | 'skipz';
  /** How long nbdkit may take to connect to vSphere and listen. Default 60 000 ms. */
  startTimeoutMs?: number;
}

/** What one vddk nbdkit serves: one disk of one snapshot. */
export interface VddkTarget {
  /** vCenter or ESXi host name (or the IP it is overridden to). */
  server: string;
  port: number;
  user: string;
  /** SHA-1 thumbprint of the server certificate, 20 colon-separated hex pairs (what VDDK checks). */
  thumbprintSha1: string;
  /** VM moref (`vm-16` on vCenter). */
  vm: string;
  /** Snapshot moref (`snapshot-123`). */
  snapshot: string;
  /** The disk's file in the snapshot, `[datastore1] vm/vm.vmdk`. */
  file: string;
}

/**
 * The nbdkit command line serving one disk snapshot with the vddk plugin.
 * The password is never an argument (argv is readable by every local user):
 * `password=-3` makes nbdkit read it from file descriptor 3, which the caller
 * writes and closes. Every value is one argv entry, so no shell quoting applies.
 */
export function vddkCommand(
  target: VddkTarget,
  paths: NbdkitPaths,
  options: VddkOptions = {},
): { command: string; args: string[] } {
  const args = [
    '-f',
    '--exit-with-parent',
    '-r',
    '-U',
    paths.socketPath,
    '-P',
    paths.pidFile,
    'vddk',
    ...(options.libdir ? [`libdir=${options.libdir}`] : []),
    ...(options.config ? [`config=${options.config}`] : []),
    `server=${target.server}`,
    ...(target.port !== 443 ? [`port=${target.port}`] : []),
    `user=${target.user}`,
    'password=-3',
    `thumbprint=${target.thumbprintSha1}`,
    `vm=moref=${target.vm}`,
    `snapshot=${target.snapshot}`,
    `transports=${(options.transports ?? ['nbd', 'nbdssl']).join(':')}`,
    ...(options.compression ? [`compression=${options.compression}`] : []),
    `file=${target.file}`,
  ];
  return { command: options.nbdkit ?? 'nbdkit', args };
}
