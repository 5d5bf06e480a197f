import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import {
  abortError,
  type ErrorCode,
  type Logger,
  Redactor,
  SyncproxyError,
  silentLogger,
} from '@syncproxy/core';
import { parseMonitors } from './monitors.js';
import type { SocketByteQueue } from './socket-byte-queue.js';

/** How to reach one Ceph cluster as a client: the Ceph part of the platform form. */
export interface CephClientAccess {
  /** Monitor addresses, comma-separated (`10.0.0.1,10.0.0.2:6789`, `v1:...` accepted). */
  monitors: string;
  /** CephX authentication on (the normal case) or off. */
  cephx: boolean;
  /** Client id without `client.` (e.g. `cinder`). */
  user: string;
  /** The keyring: a keyring file's content, or only its base64 key. Required with cephx. */
  keyring?: string;
  /** Cluster name, default `ceph`. */
  clusterName?: string;
}

export interface RbdCliOptions extends CephClientAccess {
  /** The `rbd` executable. Default `rbd` on PATH (Debian/Ubuntu: ceph-common). */
  rbdPath?: string;
  logger?: Logger;
  /** Secrets to keep out of logs and errors besides the keyring (the session's redactor). */
  redactor?: Redactor;
  /** Time to reach the monitors before a command fails. Default 30 s. */
  connectTimeoutSec?: number;
  /** Longest wait for one monitor or OSD operation. Default 600 s (the proxy's HTTP timeout). */
  opTimeoutSec?: number;
  /** Where the private config directory is made. Default the OS temp dir. */
  tmpRoot?: string;
}

export interface RbdRunOptions {
  signal?: AbortSignal;
  /** How errors name the command, e.g. `rbd info volumes/volume-1@snap-1`. Default `rbd <subcommand>`. */
  what?: string;
  /** Largest stdout kept for a non-streaming command. Default 16 MiB. */
  maxOutputBytes?: number;
}

/** A running `rbd` command whose stdout is read as a stream. */
export interface RbdProcess {
  readonly stdout: Readable;
  /** Settles when the process exits: fulfilled on status 0, else a mapped SyncproxyError. */
  readonly exited: Promise<void>;
  /** Ends the process (by its PID) and waits for it. */
  stop(): Promise<void>;
}

/** A running `rbd` command whose stdout is a Unix socket, read by the {@link SocketByteQueue} it was given. */
export interface RbdSocketProcess extends Omit<RbdProcess, 'stdout'> {
  /** Our end of the socket; the queue reads it, and closing the queue destroys it. */
  readonly socket: Socket;
}

const NAME = /^[A-Za-z0-9_.-]{1,128}$/;
const KEY = /^[A-Za-z0-9+/]{16,}={0,2}$/;
const STDERR_TAIL_BYTES = 8192;
/** A Unix socket's path fits in `sun_path` (108 bytes with its NUL). */
const SOCKET_PATH_MAX_BYTES = 107;

function keepForReader(): void {}

/** The base64 key of a keyring given as a keyring file or as the key alone. */
export function keyOfKeyring(keyring: string): string {
  const fromFile = /^\s*key\s*=\s*(\S+)\s*$/m.exec(keyring);
  const key = (fromFile ? fromFile[1]! : keyring).trim();
  if (!KEY.test(key)) {
    throw new SyncproxyError(
      'the Ceph keyring holds no valid key (paste the keyring file or its "key = ..." value)',
      {
        code: 'config',
        retryable: false,
      },
    );
  }
  return key;
}

/**
 * Runs the `rbd` CLI for one cluster. The config and keyring it needs live in a
 * private temporary directory (0700, files 0600) made by {@link RbdCli.create}
 * and removed by {@link RbdCli.close}: the key goes to the CLI through that file
 * only, never through arguments or the environment, where other users of the
 * proxy could read it (`/proc/<pid>/cmdline`). Processes are spawned without a
 * shell; every error is a SyncproxyError with the key redacted.
 */
export class RbdCli {
  private readonly children = new Set<ChildProcess>();
  private closed = false;

  private constructor(
    private readonly dir: string,
    private readonly baseArgs: readonly string[],
    private readonly rbdPath: string,
    private readonly logger: Logger,
    readonly redactor: Redactor,
  ) {}

  static async create(options: RbdCliOptions): Promise<RbdCli> {
    const monitors = parseMonitors(options.monitors);
    if (!NAME.test(options.user)) {
      throw new SyncproxyError(`invalid Ceph user ${JSON.stringify(options.user)}`, {
        code: 'config',
        retryable: false,
      });
    }
    const cluster = options.clusterName ?? 'ceph';
    if (!NAME.test(cluster)) {
      throw new SyncproxyError(`invalid Ceph cluster name ${JSON.stringify(cluster)}`, {
        code: 'config',
        retryable: false,
      });
    }
    let key: string | undefined;
    if (options.cephx) {
      if (options.keyring === undefined || options.keyring.trim() === '') {
        throw new SyncproxyError('CephX is on but no keyring was given', {
          code: 'config',
          retryable: false,
        });
      }
      key = keyOfKeyring(options.keyring);
    }
    const secrets = [key, options.keyring].filter((s): s is string => typeof s === 'string');
    const redactor = (options.redactor ?? new Redactor()).with(secrets);
    const dir = await mkdtemp(join(options.tmpRoot ?? tmpdir(), 'syncproxy-rbd-'));
    try {
      const auth = options.cephx ? 'cephx' : 'none';
      const lines = [
        '[global]',
        `mon host = ${monitors.join(',')}`,
        `auth cluster required = ${auth}`,
        `auth service required = ${auth}`,
        `auth client required = ${auth}`,
        `client mount timeout = ${options.connectTimeoutSec ?? 30}`,
        `rados mon op timeout = ${options.opTimeoutSec ?? 600}`,
        `rados osd op timeout = ${options.opTimeoutSec ?? 600}`,
        // The CLI must not write logs or sockets on the proxy, nor mix log lines into stderr.
        'log file = ',
        'admin socket = ',
        'log to stderr = false',
        'err to stderr = false',
      ];
      if (key !== undefined) {
        await writeFile(join(dir, 'keyring'), `[client.${options.user}]\n\tkey = ${key}\n`, {
          mode: 0o600,
          flag: 'wx',
        });
        lines.push(`keyring = ${join(dir, 'keyring')}`);
      } else {
        lines.push('keyring = /dev/null');
      }
      const conf = join(dir, 'ceph.conf');
      await writeFile(conf, `${lines.join('\n')}\n`, { mode: 0o600, flag: 'wx' });
      const baseArgs = ['--cluster', cluster, '--conf', conf, '--id', options.user];
      return new RbdCli(dir, baseArgs, options.rbdPath ?? 'rbd', options.logger ?? silentLogger, redactor);
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw redactor.error(error, { operation: 'writing the rbd client config' });
    }
  }

  /** Runs a short command (info, snap ls) and returns its stdout as text. */
  async run(args: readonly string[], options: RbdRunOptions = {}): Promise<string> {
    const limit = options.maxOutputBytes ?? 16 * 1024 * 1024;
    const proc = this.spawn(args, options);
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of proc.stdout as AsyncIterable<Buffer>) {
        size += chunk.byteLength;
        if (size > limit) {
          throw new SyncproxyError(
            `${describeCommand(args, options.what)} printed more than ${limit} bytes`,
            { code: 'protocol', retryable: false },
          );
        }
        chunks.push(chunk);
      }
      await proc.exited;
    } catch (error) {
      await proc.stop();
      throw preferExitError(await settled(proc.exited), error);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  /** Starts a command whose stdout the caller streams (diff, export-diff). */
  spawn(args: readonly string[], options: { signal?: AbortSignal; what?: string } = {}): RbdProcess {
    const { child, exited, stop } = this.start(args, 'pipe', options);
    const stdout = child.stdout as Readable;
    // When a child exits, Node resumes each of its stdio streams that nothing listens to, and so
    // drops their bytes (child_process flushStdio). A listing or a stream started ahead of its
    // reader (openRbdReader) may see rbd exit first: a listener keeps the bytes for the reader.
    stdout.on('readable', keepForReader);
    return {
      stdout,
      exited,
      // Bytes nobody will read are dropped, or the child's 'close' (and `exited`) would wait for them.
      stop: async () => {
        const stopping = stop();
        stdout.destroy();
        await stopping;
      },
    };
  }

  /**
   * Starts a command whose stdout is a Unix socket that `queue` reads with net's `onread`, straight
   * into the caller's buffers (see {@link SocketByteQueue}; Node's pipe to a child would hand the
   * bytes over in 64 KiB chunks, each allocated and then copied). The socket's file lives in the
   * private directory only until both ends are connected. Fails with `unsupported` where no socket
   * can be made there (a path longer than `sun_path`): use {@link spawn} then.
   * @internal The reader's data path; its queue is not part of the public API.
   */
  async spawnToSocket(
    args: readonly string[],
    queue: SocketByteQueue,
    options: { signal?: AbortSignal; what?: string } = {},
  ): Promise<RbdSocketProcess> {
    if (this.closed) {
      throw new SyncproxyError('the rbd client is closed', { code: 'internal', retryable: false });
    }
    const path = join(this.dir, `out-${randomUUID()}`);
    const server = createServer({ pauseOnConnect: true });
    let socket: Socket | undefined;
    let rbdSide: Socket;
    try {
      if (Buffer.byteLength(path) > SOCKET_PATH_MAX_BYTES)
        throw new Error(`${path} is longer than a socket path may be (${SOCKET_PATH_MAX_BYTES} bytes)`);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
      const connecting = connect({ path, onread: queue.onread });
      socket = connecting;
      queue.attach(connecting);
      await new Promise<void>((resolve, reject) => {
        connecting.once('connect', resolve);
        connecting.once('error', reject);
      });
      rbdSide = await accepted;
    } catch (error) {
      socket?.destroy();
      this.logger.debug(
        { error: error instanceof Error ? error.message : String(error) },
        'no Unix socket for rbd output (slower, the same bytes: the caller falls back to the pipe)',
      );
      throw new SyncproxyError(`could not make a socket for ${describeCommand(args, options.what)}`, {
        code: 'unsupported',
        retryable: false,
        cause: error,
      });
    } finally {
      // The socket's file goes with the server (libuv unlinks it, without the stat that rm would make:
      // after an lstat of a socket, require stops following symlinks, nodejs/node#51142); the
      // connection stays.
      server.close();
    }
    try {
      const { exited, stop } = this.start(args, rbdSide, options);
      return { socket, exited, stop };
    } catch (error) {
      socket.destroy();
      throw error;
    } finally {
      // The child holds its own copy: the reader sees the end when rbd exits.
      rbdSide.destroy();
    }
  }

  private start(
    args: readonly string[],
    stdout: 'pipe' | Socket,
    options: { signal?: AbortSignal; what?: string },
  ): { child: ChildProcess; exited: Promise<void>; stop(): Promise<void> } {
    if (this.closed) {
      throw new SyncproxyError('the rbd client is closed', { code: 'internal', retryable: false });
    }
    const { signal } = options;
    const what = describeCommand(args, options.what);
    if (signal?.aborted) throw abortError(signal, what);
    this.logger.debug({ args: [...args] }, 'running rbd');
    const child = spawn(this.rbdPath, [...this.baseArgs, ...args], {
      shell: false,
      stdio: ['ignore', stdout, 'pipe'],
      // Only what the CLI needs: CEPH_ARGS or CEPH_CONF from the proxy's
      // environment must not change which cluster or key is used.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
    });
    this.children.add(child);
    let stderr = '';
    const stderrStream = child.stderr as Readable;
    stderrStream.setEncoding('utf8');
    stderrStream.on('data', (text: string) => {
      stderr = (stderr + text).slice(-STDERR_TAIL_BYTES);
    });
    let stoppedByUs = false;
    const onAbort = (): void => {
      stoppedByUs = true;
      child.kill('SIGTERM');
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const exited = new Promise<void>((resolve, reject) => {
      let spawnError: Error | undefined;
      child.once('error', (error) => {
        spawnError = error;
      });
      child.once('close', (status, killedBy) => {
        this.children.delete(child);
        signal?.removeEventListener('abort', onAbort);
        if (signal?.aborted) return reject(abortError(signal, what));
        if (spawnError !== undefined) {
          const code = (spawnError as NodeJS.ErrnoException).code;
          return reject(
            new SyncproxyError(
              code === 'ENOENT'
                ? `the rbd CLI was not found at ${JSON.stringify(this.rbdPath)} (install ceph-common on the proxy)`
                : `${what} could not start: ${spawnError.message}`,
              { code: code === 'ENOENT' ? 'unsupported' : 'internal', retryable: false, cause: spawnError },
            ),
          );
        }
        if (status === 0) return resolve();
        // A process that exited with a status ended by itself, even when a stop
        // came after (a socket's reader can see the end before Node reaps the child).
        if (stoppedByUs && status === null) {
          return reject(new SyncproxyError(`${what} was stopped`, { code: 'aborted', retryable: false }));
        }
        reject(this.exitError(what, status, killedBy, stderr));
      });
    });
    // The caller may never await `exited` (it stopped early); a rejection then is expected.
    exited.catch(() => {});
    return {
      child,
      exited,
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) {
          stoppedByUs = true;
          child.kill('SIGTERM');
        }
        await settled(exited);
      },
    };
  }

  private exitError(
    what: string,
    status: number | null,
    killedBy: NodeJS.Signals | null,
    stderr: string,
  ): SyncproxyError {
    const text = this.redactor.text(cleanStderr(stderr));
    const [code, retryable] = classify(text, status);
    const how = status === null ? `was killed by ${killedBy}` : `failed (exit ${status})`;
    const hint = code === 'auth' ? ' (check the Ceph user and keyring)' : '';
    return new SyncproxyError(`${what} ${how}${text ? `: ${text}` : ''}${hint}`, {
      code,
      retryable,
      details: { exitStatus: status, ...(killedBy ? { signal: killedBy } : {}) },
    });
  }

  /** Stops every running command and removes the private config directory. */
  async close(): Promise<void> {
    this.closed = true;
    const running = [...this.children];
    await Promise.all(
      running.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('close', () => resolve());
            child.kill('SIGTERM');
            // Output nobody read would hold 'close' back (see spawn).
            child.stdout?.destroy();
          }),
      ),
    );
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** rbd's progress lines ("Exporting image: 42% complete...") and blank lines removed; the rest, one line. */
function cleanStderr(stderr: string): string {
  return stderr
    .replace(/[A-Za-z][A-Za-z ]*: \d+% complete\.\.\.(done\.)?/g, '')
    .split(/[\r\n]+/)
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .join('; ')
    .slice(-2000);
}

/**
 * The SyncproxyError code of an rbd failure. rbd exits with the errno of the
 * failure (`-r` in ceph's src/tools/rbd/Shell.cc); stderr may name it too
 * (`(2) No such file or directory`).
 */
function classify(stderr: string, status: number | null): [ErrorCode, boolean] {
  const errno = Number(/\((\d+)\) [A-Z][a-z]/.exec(stderr)?.[1] ?? status ?? 0);
  const connecting = /couldn't connect to the cluster/i.test(stderr);
  switch (errno) {
    case 2:
      return ['not-found', false];
    case 1:
    case 5:
    case 13:
      // Seen on Pacific: a wrong cephx key fails the connection with EIO (the
      // monitor's challenge does not decrypt), a user without caps with EPERM/EACCES.
      if (connecting) return ['auth', false];
      if (errno !== 5) return ['permission', false];
      break;
    case 110:
      return ['timeout', true];
    case 16:
      return ['conflict', true];
    case 28:
    case 122:
      return ['no-capacity', false];
  }
  if (connecting || /connection refused/i.test(stderr)) return ['network', true];
  return ['platform', false];
}

function describeCommand(args: readonly string[], what: string | undefined): string {
  return what ?? `rbd ${args[0] ?? ''}`.trim();
}

async function settled(promise: Promise<void>): Promise<unknown> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return error;
  }
}

/** A failure of the process itself says more than the parse error its early end caused. */
export function preferExitError(exitError: unknown, parseError: unknown): unknown {
  if (SyncproxyError.isInstance(exitError) && exitError.code !== 'aborted') return exitError;
  return parseError;
}
