import { runCommand } from './command.js';

/** An iSCSI target as an OCI iSCSI volume attachment names it. */
export interface IscsiTarget {
  iqn: string;
  ipv4: string;
  port: number;
}

/**
 * Logs the proxy in to (and out of) an iSCSI target. Behind an interface so
 * tests and the mock run without an initiator; the proxy uses
 * {@link IscsiadmInitiator}.
 */
export interface IscsiInitiator {
  login(target: IscsiTarget, signal?: AbortSignal): Promise<void>;
  /** Idempotent: a target never logged in to is not an error. */
  logout(target: IscsiTarget): Promise<void>;
}

/**
 * open-iscsi's `iscsiadm`, the commands the OCI console shows for an iSCSI
 * attachment (Block/Tasks/connectingtoavolume.htm): add the node, log in; log
 * out and delete the node to detach. CHAP is never requested on attach, so no
 * secret is ever on the command line.
 */
export class IscsiadmInitiator implements IscsiInitiator {
  readonly #command: string;

  constructor(options: { command?: string } = {}) {
    this.#command = options.command ?? 'iscsiadm';
  }

  async login(target: IscsiTarget, signal?: AbortSignal): Promise<void> {
    const portal = `${target.ipv4}:${target.port}`;
    // A node record left by an earlier run makes `-o new` fail; the login below is what must succeed.
    await runCommand(
      this.#command,
      ['-m', 'node', '-o', 'new', '-T', target.iqn, '-p', portal],
      signal,
    ).catch((error: unknown) => {
      if (signal?.aborted) throw error;
    });
    await runCommand(this.#command, ['-m', 'node', '-T', target.iqn, '-p', portal, '-l'], signal);
  }

  async logout(target: IscsiTarget): Promise<void> {
    const portal = `${target.ipv4}:${target.port}`;
    await runCommand(this.#command, ['-m', 'node', '-T', target.iqn, '-p', portal, '-u']).catch(() => {});
    await runCommand(this.#command, ['-m', 'node', '-o', 'delete', '-T', target.iqn, '-p', portal]).catch(
      () => {},
    );
  }
}
