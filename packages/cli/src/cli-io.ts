/** A stream the CLI writes to: `process.stdout`-like. */
export interface CliOutput {
  write(text: string): unknown;
  /** True when a person watches it: live progress bars instead of periodic lines. */
  readonly isTTY?: boolean;
}

/** Where {@link runCli} reads and writes; a test or an embedding program passes its own. */
export interface CliIo {
  /** Results: tables, or JSON with `--json`. */
  stdout: CliOutput;
  /** Progress, warnings and errors. */
  stderr: CliOutput;
  /** Aborted on Ctrl-C: long work stops cleanly and keeps its checkpoints. */
  signal?: AbortSignal;
  /** Working directory relative paths resolve against (default `process.cwd()`). */
  cwd?: string;
  /** What `-c -` reads the config from (default `process.stdin`). */
  stdin?: AsyncIterable<string | Uint8Array>;
  /** Where `SYNCPROXY_<FIELD>` secrets come from (default `process.env`). */
  env?: Record<string, string | undefined>;
}

/** The process's own streams and working directory. */
export function processIo(signal?: AbortSignal): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    cwd: process.cwd(),
    stdin: process.stdin,
    env: process.env,
    ...(signal ? { signal } : {}),
  };
}
