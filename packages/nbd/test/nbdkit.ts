import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, watch } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** An nbdkit this test started, on a Unix socket in its own temp dir. */
export interface NbdkitServer {
  socketPath: string;
  /** `nbd+unix:///?socket=...`, for this client and for nbdcopy/nbdinfo alike. */
  uri: string;
  pid: number;
  dir: string;
  /** Kills this nbdkit (by its PID) and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Kills it and removes its temp dir. */
  stop(): Promise<void>;
}

export interface StartNbdkitOptions {
  filters?: string[];
  readOnly?: boolean;
  /** Reuse this socket path (to restart a server where a client expects it). */
  socketPath?: string;
}

/**
 * Starts `nbdkit -f --exit-with-parent -U <socket> [--filter=...] plugin args...`
 * and resolves once it listens (its PID file is watched, not polled).
 */
export async function startNbdkit(
  pluginArgs: string[],
  options: StartNbdkitOptions = {},
): Promise<NbdkitServer> {
  const dir = await mkdtemp(join(tmpdir(), 'syncproxy-nbdkit-'));
  const socketPath = options.socketPath ?? join(dir, 'nbd.sock');
  // The PID file appears once nbdkit listens; the socket file alone appears a moment earlier (bind before listen).
  const pidFile = join(dir, 'nbdkit.pid');
  const args = ['-f', '--exit-with-parent', '-U', socketPath, '-P', pidFile];
  if (options.readOnly) args.push('-r');
  for (const f of options.filters ?? []) args.push(`--filter=${f}`);
  args.push(...pluginArgs);
  const child = spawn('nbdkit', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitForPidFile(child, pidFile, () => stderr);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const kill = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return {
    socketPath,
    uri: `nbd+unix:///?socket=${socketPath}`,
    pid: child.pid!,
    dir,
    kill,
    stop: async () => {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function waitForPidFile(child: ChildProcess, pidFile: string, stderr: () => string): Promise<void> {
  const written = () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n');
  return new Promise((resolve, reject) => {
    const watcher = watch(join(pidFile, '..'), () => {
      if (written()) done();
    });
    const onExit = (code: number | null) => {
      watcher.close();
      reject(new Error(`nbdkit exited (${code}) before listening: ${stderr()}`));
    };
    const done = () => {
      watcher.close();
      child.off('exit', onExit);
      resolve();
    };
    child.once('exit', onExit);
    if (written()) done();
  });
}

/** `nbdcopy SRC DST` (e.g. to a file, or `null:`). */
export async function nbdcopy(...args: string[]): Promise<void> {
  await run('nbdcopy', args, { maxBuffer: 16 * 1024 * 1024 });
}

/** `nbdinfo --map --json`: the export's base:allocation map. */
export async function nbdinfoMap(
  uri: string,
): Promise<Array<{ offset: number; length: number; type: number }>> {
  const { stdout } = await run('nbdinfo', ['--map', '--json', uri], { maxBuffer: 256 * 1024 * 1024 });
  return JSON.parse(stdout) as Array<{ offset: number; length: number; type: number }>;
}

export async function sha256File(path: string): Promise<string> {
  const { stdout } = await run('sha256sum', [path]);
  return stdout.split(' ')[0]!;
}
