import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { abortError, SyncproxyError } from '@syncproxy/core';

/** Where a spawned nbdkit listens and writes its pid, inside a private temp directory. */
export interface NbdkitPaths {
  socketPath: string;
  pidFile: string;
}

export interface StartNbdkitOptions {
  /** The nbdkit binary. Default `nbdkit` on the PATH. */
  command?: string;
  /** The arguments, given the socket and pid file paths: never a secret (argv is world-readable in /proc). */
  args(paths: NbdkitPaths): string[];
  /** Written to the child's fd 3 and closed: where a password goes (`password=-3`). */
  fd3?: string;
  /** How long nbdkit may take to write its pid file. Default 60 000 ms (VDDK connects to vCenter first). */
  startTimeoutMs?: number;
  signal?: AbortSignal;
  /** Removes secrets from nbdkit's stderr before it goes into an error. */
  redact?: (text: string) => string;
}

/** A running nbdkit serving one export on a Unix socket. */
export interface NbdkitProcess {
  readonly pid: number;
  /** `nbd+unix:///?socket=...`. */
  readonly uri: string;
  readonly socketPath: string;
  /** Stops it (SIGTERM, then SIGKILL after 5 s), waits for its exit and removes its directory. */
  stop(): Promise<void>;
}

const POLL_MS = 5;
const STDERR_TAIL = 4096;

/**
 * Spawns nbdkit without a shell (`-f` keeps it our child, so its pid is the one
 * we signal; `--exit-with-parent` belongs in `args` so a crashed proxy leaves
 * none behind) and resolves once its pid file exists, which nbdkit writes
 * after the socket listens.
 */
export async function startNbdkit(options: StartNbdkitOptions): Promise<NbdkitProcess> {
  if (options.signal?.aborted) throw abortError(options.signal, 'starting nbdkit');
  const dir = await mkdtemp(join(tmpdir(), 'syncproxy-nbdkit-'));
  const paths = { socketPath: join(dir, 'nbd.sock'), pidFile: join(dir, 'nbdkit.pid') };
  const command = options.command ?? 'nbdkit';
  let child: ChildProcess;
  try {
    child = spawn(command, options.args(paths), {
      shell: false,
      stdio: ['ignore', 'ignore', 'pipe', ...(options.fd3 === undefined ? [] : (['pipe'] as const))],
    });
  } catch (cause) {
    await rm(dir, { recursive: true, force: true });
    throw new SyncproxyError(`could not start ${command}`, { code: 'io', retryable: false, cause });
  }
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-STDERR_TAIL);
  });
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('close', (code, signal) => {
      exit = { code, signal };
      resolve();
    });
    child.once('error', (error) => {
      spawnError = error;
      if (child.pid === undefined) {
        exit = { code: null, signal: null };
        resolve();
      }
    });
  });
  if (options.fd3 !== undefined) {
    const pipe = child.stdio[3] as NodeJS.WritableStream | null;
    pipe?.on?.('error', () => {});
    pipe?.end(options.fd3);
  }

  const stop = async (): Promise<void> => {
    if (exit === undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (exit === undefined) child.kill('SIGKILL');
      }, 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  const describe = (): string => {
    const tail = (options.redact ?? ((t: string) => t))(stderr.trim());
    const how = spawnError
      ? spawnError.message
      : exit?.signal
        ? `killed by ${exit.signal}`
        : `exit code ${exit?.code}`;
    return `${command} failed to start (${how})${tail ? `: ${tail.split('\n').slice(-5).join(' | ')}` : ''}`;
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  try {
    while (true) {
      if (exit !== undefined) {
        throw new SyncproxyError(describe(), {
          code: (spawnError as NodeJS.ErrnoException | undefined)?.code === 'ENOENT' ? 'unsupported' : 'io',
          retryable: false,
        });
      }
      if (options.signal?.aborted) throw abortError(options.signal, 'starting nbdkit');
      const pid = await readFile(paths.pidFile, 'utf8').catch(() => '');
      if (/^\d+\s*$/.test(pid)) break;
      if (Date.now() > deadline) {
        throw new SyncproxyError(
          `${command} did not start listening within ${options.startTimeoutMs ?? 60_000} ms`,
          {
            code: 'timeout',
            retryable: true,
          },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    pid: child.pid!,
    socketPath: paths.socketPath,
    uri: `nbd+unix:///?socket=${encodeURIComponent(paths.socketPath)}`,
    stop,
  };
}
