#!/usr/bin/env node
// The README's test command: installs the system software tests need (nbdkit,
// Ceph) when it is missing, runs every vitest project, and ends with the plain
// summary line "N passed, N failed". Under Node older than 22 it runs itself under a Node 22
// fetched from the npm registry (node-22.mjs).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runNode22 } from './node-22.mjs';

await runNode22();
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);

const setup = join(root, 'scripts', 'setup-system.sh');
if (existsSync(setup) && !args.includes('--no-setup')) {
  const r = spawnSync('bash', [setup], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) {
    console.error(
      `scripts/setup-system.sh failed (exit ${r.status}): the tests that need system software cannot run`,
    );
    process.exit(r.status ?? 1);
  }
}

mkdirSync(join(root, '.tmp'), { recursive: true });
const report = join(root, '.tmp', 'vitest-report.json');
const vitestArgs = ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`];
for (const a of args) if (a !== '--no-setup') vitestArgs.push(a);
const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const r = spawnSync(process.execPath, [vitest, ...vitestArgs], { stdio: 'inherit', cwd: root });

let passed = 0;
let failed = 0;
let skipped = 0;
try {
  const json = JSON.parse(readFileSync(report, 'utf8'));
  passed = json.numPassedTests ?? 0;
  // A file that failed without a failed test (it did not load, or a hook threw) counts once.
  const brokenFiles = (json.testResults ?? []).filter(
    (file) => file.status === 'failed' && !(file.assertionResults ?? []).some((t) => t.status === 'failed'),
  ).length;
  failed = (json.numFailedTests ?? 0) + brokenFiles;
  skipped = (json.numPendingTests ?? 0) + (json.numTodoTests ?? 0);
} catch {
  failed = failed || 1;
}
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(r.status === 0 && failed === 0 ? 0 : r.status || 1);
