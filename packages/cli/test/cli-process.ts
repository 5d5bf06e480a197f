import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const cliDir = fileURLToPath(new URL('..', import.meta.url));
const running = new Set<ChildProcess>();

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface SpawnCliOptions {
  /** Called with the child once it is running (to send it a signal). */
  onSpawn?: (child: ChildProcess) => void;
}

/**
 * Runs `syncproxy <args>` as a process, from the sources (tsx resolves the
 * workspace packages to their sources through packages/cli/tsconfig.json's
 * paths, so nothing needs building). stdin is closed and stdout/stderr are
 * pipes: no TTY, as in CI.
 */
export function runSyncproxy(args: string[], options: SpawnCliOptions = {}): Promise<CliRun> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/bin.ts', ...args], {
    cwd: cliDir,
    env: { ...process.env, TSX_TSCONFIG_PATH: `${cliDir}tsconfig.json`, FORCE_COLOR: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => {
    stdout += text;
  });
  child.stderr!.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  options.onSpawn?.(child);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      running.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Kills, by PID, the CLI processes this test file started that are still running. */
export function killLeftoverCli(): void {
  for (const child of running) {
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }
  running.clear();
}
