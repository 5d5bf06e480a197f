// `pnpm bench` in packages/cli: row `demo`, the README's `pnpm demo` after the build, as a user runs
// it: `node scripts/demo.mjs` in a child process (Node's start, Node 22 when this one is older, the
// CLI's load, mock AWS, full + incremental sync of 6 GiB of sparse volumes with 127 MiB of data, and
// the byte-by-byte comparison of each image with its volume). Figures are seconds of wall time, the
// median of BENCH_REPS runs (default 5), after one run not counted (it fetches Node 22 if needed and
// warms the page cache as the build would have). The build runs first, as in `pnpm demo`, untimed.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, recordRow } from '../../../scripts/bench/record.mjs';

const reps = Number(process.env.BENCH_REPS ?? 5);
const REQUIRED_S = 15;
const AIM_S = 8;
const packageDir = fileURLToPath(new URL('..', import.meta.url));
const root = join(packageDir, '..', '..');
const target = join(root, '.tmp', `bench-demo-${process.pid}`);

// `pnpm demo` builds first; so does this bench (turbo's cache makes it instant when nothing changed), so
// that the figures are never those of a stale build. Not timed: the row is the time after the build.
const build = spawnSync(
  process.execPath,
  [
    join(root, 'node_modules', 'turbo', 'bin', 'turbo'),
    'run',
    'build',
    '--filter=@syncproxy/cli...',
    '--output-logs=errors-only',
  ],
  {
    cwd: root,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: {
      ...process.env,
      PATH: `${join(root, 'node_modules', '.bin')}${delimiter}${process.env.PATH ?? ''}`,
    },
  },
);
if (build.status !== 0 || !existsSync(join(packageDir, 'dist', 'bin.js'))) {
  throw new Error(`the demo bench needs the CLI's build, and it failed (exit ${build.status})`);
}

/** One `node scripts/demo.mjs --json`; resolves with its wall time in seconds and its report. */
function runDemo(): Promise<{ seconds: number; report: { ok: boolean; durationMs: number } }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [join(root, 'scripts', 'demo.mjs'), '--json', '--target', target], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text: string) => {
      out += text;
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      const seconds = (performance.now() - started) / 1000;
      // The Node 22 re-exec says so in one line before the report.
      const json = out.slice(out.indexOf('{'));
      try {
        const report = JSON.parse(json) as { ok: boolean; durationMs: number };
        if (code !== 0 || !report.ok) reject(new Error(`the demo failed (exit ${code})`));
        else resolve({ seconds, report });
      } catch (error) {
        reject(new Error(`the demo printed no report (exit ${code}): ${String(error)}`));
      }
    });
  });
}

const wallS: number[] = [];
const insideS: number[] = [];
try {
  await runDemo();
  for (let i = 0; i < reps; i++) {
    const { seconds, report } = await runDemo();
    wallS.push(seconds);
    insideS.push(report.durationMs / 1000);
  }
} finally {
  await rm(target, { recursive: true, force: true });
}

const wall = median(wallS);
console.log(`syncproxy demo, ${reps} runs after one warm-up`);
console.log(
  `  wall time  median ${wall.toFixed(1)} s  (runs: ${wallS.map((s) => s.toFixed(1)).join(', ')} s)`,
);
console.log(
  `  in the CLI median ${median(insideS).toFixed(1)} s (the demo's own clock, without Node's start)`,
);
recordRow({
  id: 'demo',
  path: '`pnpm demo` after the build (6 GiB of virtual disks, 127 MiB of data)',
  project: 'node scripts/demo.mjs --json (full + incremental sync, byte comparison of each image)',
  projectRuns: wallS,
  unit: 's',
  ratio: wall,
  ratioMeaning: 'seconds of wall time, median (lower is better)',
  required: `<= ${REQUIRED_S} s`,
  aim: `<= ${AIM_S} s`,
  pass: wall <= REQUIRED_S,
  note: `${reps} runs after one warm-up; Node ${process.versions.node} starting the script; in-CLI median ${median(insideS).toFixed(1)} s`,
});
process.exitCode = wall <= REQUIRED_S ? 0 : 1;
