#!/usr/bin/env node
// `pnpm bench`: runs every package's benchmark one after another (turbo, concurrency 1, after the
// build), collects the rows they record (scripts/bench/record.mjs) and prints ONE table: this
// project and its anchor measured in the same run, interleaved, medians of BENCH_REPS (default 5),
// and the ratio each requirement is about. Arguments go to turbo, e.g. `pnpm bench --filter
// @syncproxy/nbd`. Exit status: that of the benchmarks (a row that misses its requirement is
// marked FAIL in the table but does not fail the run).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, ROW_ORDER } from './bench/record.mjs';
import { runNode22 } from './node-22.mjs';

// The SDK supports Node 22 and later: measured under an older Node, the table would describe a
// runtime no user runs it on. Like the test and demo commands, this runs itself under Node 22 then.
await runNode22();

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
mkdirSync(join(root, '.tmp'), { recursive: true });
const rowsFile = join(root, '.tmp', `bench-rows-${process.pid}.jsonl`);
const started = Date.now();
const loadBefore = loadavg()[0];

const turbo = join(root, 'node_modules', 'turbo', 'bin', 'turbo');
const r = spawnSync(
  process.execPath,
  [turbo, 'run', 'bench', '--concurrency=1', '--output-logs=full', ...process.argv.slice(2)],
  {
    stdio: 'inherit',
    cwd: root,
    // turbo runs each task through the package manager: the workspace's own pnpm, also when this
    // script is started with plain `node`.
    env: {
      ...process.env,
      PATH: `${join(root, 'node_modules', '.bin')}${delimiter}${process.env.PATH ?? ''}`,
      SYNCPROXY_BENCH_ROWS: rowsFile,
    },
  },
);

const rows = existsSync(rowsFile)
  ? readFileSync(rowsFile, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l))
  : [];
rmSync(rowsFile, { force: true });

const order = (id) => {
  const i = ROW_ORDER.indexOf(id);
  return i === -1 ? ROW_ORDER.length : i;
};
rows.sort((a, b) => order(a.id) - order(b.id));

const figure = (value, unit) => {
  if (value === undefined) return '';
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${unit}`;
};
const runs = (values) => (values ?? []).map((v) => v.toFixed(Math.abs(v) >= 100 ? 0 : 2)).join(' ');

/** CPU seconds the machine spent per run, both sides, and what the project's side needs at the least on these cores. */
const cpu = (row) => {
  if (!row.projectCpu?.length) return '';
  const ours = median(row.projectCpu);
  const anchor = row.anchorCpu?.length ? ` / anchor ${median(row.anchorCpu).toFixed(2)}` : '';
  return `ours ${ours.toFixed(2)}${anchor} (ours >= ${(ours / cpus().length).toFixed(2)} s of wall time on ${cpus().length} cores)`;
};
const table = rows.map((row) => ({
  path: row.path,
  'this project (median)': `${row.project}: ${figure(median(row.projectRuns), row.unit)}`,
  'anchor (median)': row.anchor ? `${row.anchor}: ${figure(median(row.anchorRuns ?? []), row.unit)}` : '',
  ratio: `${row.ratio.toFixed(2)} (${row.ratioMeaning})`,
  required: row.required,
  aim: row.aim ?? '',
  result: row.pass ? 'pass' : 'FAIL',
  runs: `ours ${runs(row.projectRuns)}${row.anchorRuns ? ` / anchor ${runs(row.anchorRuns)}` : ''}`,
  'machine CPU s (median)': cpu(row),
  load: row.loadAverage === undefined ? '' : row.loadAverage.toFixed(1),
  note: row.note ?? '',
}));
const missing = ROW_ORDER.filter((id) => !rows.some((row) => row.id === id));

const columns = Object.keys(table[0] ?? { path: '' });
const cell = (s) => String(s).replaceAll('|', '\\|');
console.log(
  `\n## pnpm bench: ${rows.length} rows, Node ${process.versions.node}, ${cpus().length} cores, load ${loadBefore.toFixed(1)} at start, ${Math.round((Date.now() - started) / 1000)} s\n`,
);
if (table.length > 0) {
  console.log(`| ${columns.join(' | ')} |`);
  console.log(`|${columns.map(() => ' --- ').join('|')}|`);
  for (const row of table) console.log(`| ${columns.map((c) => cell(row[c])).join(' | ')} |`);
}
if (missing.length > 0) console.log(`\nnot measured in this run: ${missing.join(', ')}`);
const failed = rows.filter((row) => !row.pass).map((row) => row.id);
console.log(
  `\n${rows.length - failed.length} of ${rows.length} rows meet their requirement${failed.length ? `; not met: ${failed.join(', ')}` : ''}`,
);
process.exit(r.status ?? 1);
