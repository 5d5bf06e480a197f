#!/usr/bin/env node
import { setMaxListeners } from 'node:events';
import { processIo } from './cli-io.js';
import { ExitCode } from './exit-code.js';
import { runCli } from './run-cli.js';

// Every chunk in flight listens to an abort signal (ours, the engine's, the HTTP client's): dozens of
// listeners per signal are expected in this process, not a leak, and Node's warning at 11 would only alarm users.
setMaxListeners(256);
const controller = new AbortController();

// First Ctrl-C: stop cleanly (transfers save their checkpoints). Second: leave at once.
process.on('SIGINT', () => {
  if (controller.signal.aborted) process.exit(ExitCode.interrupted);
  process.stderr.write('\nstopping: saving checkpoints (Ctrl-C again to quit at once)\n');
  controller.abort();
});
// SIGTERM (a service manager stopping us) stops as cleanly, and exits 143 (128 + 15) so the caller sees which signal.
let terminated = false;
process.on('SIGTERM', () => {
  terminated = true;
  controller.abort();
});

runCli(process.argv.slice(2), processIo(controller.signal)).then(
  (code) => {
    process.exitCode = terminated && code === ExitCode.interrupted ? ExitCode.terminated : code;
  },
  (error: unknown) => {
    process.stderr.write(`error (internal): ${(error as Error)?.stack ?? String(error)}\n`);
    process.exitCode = ExitCode.failure;
  },
);
