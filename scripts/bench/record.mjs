// One row of `pnpm bench`'s table. Each package's bench calls recordRow() for the rows it
// measures; scripts/bench.mjs runs every package's bench with SYNCPROXY_BENCH_ROWS set to a
// JSON-lines file and prints one table from it, in ROW_ORDER. Outside that runner (a package's
// bench run alone) recordRow only prints the row.
import { appendFileSync } from 'node:fs';
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
  'aws-adaptive',
  'demo',
  'rss-16g',
  'incremental-1t',
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
 */

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
