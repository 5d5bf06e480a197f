// One row of `pnpm bench`'s table. Each package's bench calls recordRow() for the rows it
// measures; scripts/bench.mjs runs every package's bench with SYNCPROXY_BENCH_ROWS set to a
// JSON-lines file and prints one table from it, in ROW_ORDER. Outside that runner (a package's
// bench run alone) recordRow only prints the row.
import { appendFileSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';

/**
 * The rows issue 21 asks for, in the table's order. A bench may record other rows; they follow.
 * @type {readonly string[]}
 */
export const ROW_ORDER = [
  'nbd-client-null',
  'nbd-client-file',
  'nbd-engine-null',
  'nbd-engine-file',
  'file-engine-dd',
  'ceph-full-1g',
  'ceph-full-2g',
  'aws-inflight',
  'aws-http-floor',
  'aws-adaptive',
  'demo',
  'rss-16g',
  'incremental-1t',
  'incremental-partial',
  'hash-blake3',
];

/**
 * @typedef {object} BenchRow
 * @property {string} id              a ROW_ORDER id, or a new one
 * @property {string} path            what is measured, as the table shows it
 * @property {string} project         this project's side, e.g. "transferDisk(NbdReader) -> null, defaults"
 * @property {string} [anchor]        the side it is compared with, e.g. "nbdcopy --connections=4 -> null"
 * @property {number[]} projectRuns   each run's figure, in `unit`, in run order
 * @property {number[]} [anchorRuns]  the anchor's runs, interleaved with the project's
 * @property {string} unit            "s", "MiB", "MB/s", "x"...
 * @property {number} ratio           the figure the requirement is about (e.g. anchor median / project median)
 * @property {string} ratioMeaning    how the ratio reads, e.g. "nbdcopy time / ours (higher is better)"
 * @property {string} required        e.g. ">= 0.95"
 * @property {string} [aim]           e.g. ">= 1.0"
 * @property {boolean} pass           whether `ratio` meets `required`
 * @property {string} [note]          sizes, settings, load average
 * @property {number[]} [projectCpu]  CPU seconds the whole machine spent in each project run ({@link machineCpuSeconds})
 * @property {number[]} [anchorCpu]   the same for each anchor run
 */

/**
 * CPU seconds the whole machine has spent busy since boot (all cores: user, system, interrupts,
 * steal; /proc/stat), or undefined where there is no /proc/stat. The difference across a run counts
 * every process and kernel thread that worked for it (a server, write-back, a child tool), so the
 * two sides of a row compare on the same terms, and a side that needs more CPU seconds than cores
 * times the other side's wall time cannot match it on this machine, however it is tuned.
 * @returns {number | undefined}
 */
export function machineCpuSeconds() {
  let line;
  try {
    line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  } catch {
    return undefined;
  }
  // cpu user nice system idle iowait irq softirq steal ...: in USER_HZ ticks, 100 a second on Linux.
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return (user + nice + system + irq + softirq + (steal ?? 0)) / 100;
}

/**
 * Runs `run` and returns its wall time and the machine's CPU seconds across it.
 * @param {() => unknown} run
 * @returns {Promise<{ seconds: number, cpuSeconds: number | undefined }>}
 */
export async function measure(run) {
  const cpuBefore = machineCpuSeconds();
  const started = performance.now();
  await run();
  const seconds = (performance.now() - started) / 1000;
  const cpuAfter = machineCpuSeconds();
  return {
    seconds,
    cpuSeconds: cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuAfter - cpuBefore,
  };
}

/** @param {number[]} values */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** @param {BenchRow} row */
export function recordRow(row) {
  for (const key of ['id', 'path', 'project', 'unit', 'ratioMeaning', 'required']) {
    if (typeof row[key] !== 'string' || row[key] === '')
      throw new Error(`bench row: ${key} must be a string`);
  }
  if (!Array.isArray(row.projectRuns) || row.projectRuns.length === 0)
    throw new Error('bench row: projectRuns is empty');
  if (!Number.isFinite(row.ratio)) throw new Error(`bench row ${row.id}: ratio is not a number`);
  const full = { ...row, loadAverage: loadavg()[0] };
  const file = process.env.SYNCPROXY_BENCH_ROWS;
  if (file) appendFileSync(file, `${JSON.stringify(full)}\n`);
  console.log(
    `bench row ${row.id}: ${row.path}: ratio ${row.ratio.toFixed(2)} (${row.ratioMeaning}), required ${row.required}: ${row.pass ? 'pass' : 'FAIL'}`,
  );
}
