// `pnpm bench` in packages/core: the transfer engine against dd and itself.
// Figures are medians of BENCH_REPS runs (default 5) and the ratios are taken within this one run.
// Sizes: BENCH_DENSE_GIB (4), BENCH_RSS_GIB (16), BENCH_INCREMENTAL_TIB (1), BENCH_HASH_MIB (1024). Temp files go under
// <repo>/.tmp/bench-transfer-<pid> and are deleted at the end.
import { spawnSync } from 'node:child_process';
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileSink, transferDisk } from '../src/index.js';
import { FileReader } from '../test/transfer/fixtures/readers.js';
import { benchHash } from './hash.js';
import { dense, everyNth, PoolReader } from './sources.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const reps = Number(process.env.BENCH_REPS ?? 5);
const denseBytes = Number(process.env.BENCH_DENSE_GIB ?? 4) * GiB;
const rssBytes = Number(process.env.BENCH_RSS_GIB ?? 16) * GiB;
const incrementalBytes = Number(process.env.BENCH_INCREMENTAL_TIB ?? 1) * 1024 * GiB;
const packageDir = fileURLToPath(new URL('..', import.meta.url));
const work = join(packageDir, '..', '..', '.tmp', `bench-transfer-${process.pid}`);

interface Row {
  case: string;
  median: string;
  rate: string;
  note: string;
}
const rows: Row[] = [];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const rate = (bytes: number, seconds: number) => `${(bytes / seconds / MiB).toFixed(0)} MiB/s`;

async function timed(run: () => Promise<unknown> | unknown): Promise<number> {
  const started = performance.now();
  await run();
  return (performance.now() - started) / 1000;
}

async function removeImage(path: string): Promise<void> {
  for (const p of [path, `${path}.manifest`, `${path}.checkpoint.json`]) await rm(p, { force: true });
}

function dd(from: string, to: string, fsync: boolean): void {
  const args = [`if=${from}`, `of=${to}`, 'bs=4M', 'status=none', ...(fsync ? ['conv=fsync'] : [])];
  const r = spawnSync('dd', args, { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`dd ${args.join(' ')} failed with status ${r.status}`);
}

async function writeDenseSource(path: string, bytes: number): Promise<void> {
  const reader = new PoolReader(bytes, dense(bytes));
  const handle = await open(path, 'w');
  try {
    for (let offset = 0; offset < bytes; offset += 4 * MiB) {
      const data = await reader.read(offset, Math.min(4 * MiB, bytes - offset));
      // Vary each chunk so no two are equal (the pool repeats every 64 MiB).
      const copy = data.slice();
      new DataView(copy.buffer).setFloat64(0, offset);
      await handle.write(copy, 0, copy.length, offset);
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function benchDense(): Promise<void> {
  const source = join(work, 'dense-source.img');
  const target = join(work, 'dense-target.img');
  await writeDenseSource(source, denseBytes);
  dd(source, join(work, 'warm.img'), false); // reads the source once so every run below finds it cached
  await rm(join(work, 'warm.img'), { force: true });
  const ddPlain: number[] = [];
  const ddSync: number[] = [];
  const engine: number[] = [];
  for (let i = 0; i < reps; i++) {
    ddPlain.push(await timed(() => dd(source, target, false)));
    await removeImage(target);
    ddSync.push(await timed(() => dd(source, target, true)));
    await removeImage(target);
    engine.push(
      await timed(async () => {
        const reader = await FileReader.open(source);
        try {
          await transferDisk({ reader, sink: new FileSink(target) });
        } finally {
          await reader.close();
        }
      }),
    );
    await removeImage(target);
  }
  await rm(source, { force: true });
  const gib = denseBytes / GiB;
  const e = median(engine);
  const s = median(ddSync);
  const p = median(ddPlain);
  rows.push({
    case: `dd bs=4M, ${gib} GiB file -> file`,
    median: `${p.toFixed(2)} s`,
    rate: rate(denseBytes, p),
    note: 'no fsync',
  });
  rows.push({
    case: `dd bs=4M conv=fsync, ${gib} GiB`,
    median: `${s.toFixed(2)} s`,
    rate: rate(denseBytes, s),
    note: 'fsync at end',
  });
  rows.push({
    case: `transferDisk file -> FileSink, ${gib} GiB`,
    median: `${e.toFixed(2)} s`,
    rate: rate(denseBytes, e),
    note: `ratio vs dd conv=fsync ${(s / e).toFixed(2)}, vs plain dd ${(p / e).toFixed(2)} (SHA-256 + manifest + checkpoints included)`,
  });
  console.error(
    `dense: dd ${ddPlain.map((x) => x.toFixed(2))} dd-fsync ${ddSync.map((x) => x.toFixed(2))} engine ${engine.map((x) => x.toFixed(2))}`,
  );
}

async function benchMemory(): Promise<void> {
  const bytes = 2 * GiB;
  const target = join(work, 'memory-target.img');
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    times.push(
      await timed(() =>
        transferDisk({ reader: new PoolReader(bytes, dense(bytes)), sink: new FileSink(target) }),
      ),
    );
    await removeImage(target);
  }
  const m = median(times);
  rows.push({
    case: 'transferDisk memory -> FileSink, 2 GiB',
    median: `${m.toFixed(2)} s`,
    rate: rate(bytes, m),
    note: 'in-memory source',
  });
}

function benchRss(): void {
  const target = join(work, 'rss-target.img');
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(packageDir, 'bench', 'rss-child.ts'), target, String(rssBytes)],
    {
      cwd: packageDir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  if (r.status !== 0) throw new Error(`rss child failed with status ${r.status}`);
  const { baselineKiB, peakKiB, seconds } = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
    baselineKiB: number;
    peakKiB: number;
    seconds: number;
  };
  rows.push({
    case: `peak RSS, ${rssBytes / GiB} GiB memory -> FileSink`,
    median: `${(peakKiB / 1024).toFixed(0)} MiB`,
    rate: rate(rssBytes, seconds),
    note: `one run; process baseline ${(baselineKiB / 1024).toFixed(0)} MiB; limit 256 MiB`,
  });
}

async function benchIncremental(): Promise<void> {
  const chunk = 4 * MiB;
  const target = join(work, 'incremental-target.img');
  const cases = [
    { disk: incrementalBytes, every: 100, label: `${incrementalBytes / (1024 * GiB)} TiB disk, 1% changed` },
    {
      disk: incrementalBytes / 16,
      every: 100 / 16,
      label: `${incrementalBytes / 16 / GiB} GiB disk, same bytes changed`,
    },
  ];
  const medians: number[] = [];
  for (const c of cases) {
    const every = Math.max(1, Math.round(c.every));
    const times: number[] = [];
    let changed = 0;
    for (let i = 0; i < reps; i++) {
      const reader = new PoolReader(c.disk, everyNth(c.disk, chunk, every));
      times.push(
        await timed(() => transferDisk({ reader, sink: new FileSink(target), transferId: `rep-${i}` })),
      );
      changed = reader.bytesRead;
    }
    await removeImage(target);
    const m = median(times);
    medians.push(m);
    rows.push({
      case: `incremental, ${c.label}`,
      median: `${m.toFixed(2)} s`,
      rate: rate(changed, m),
      note: `${(changed / GiB).toFixed(2)} GiB changed in ${changed / chunk} chunks`,
    });
  }
  const last = rows.at(-1)!;
  last.note += `; time ratio 1 TiB / small disk ${(medians[0]! / medians[1]!).toFixed(2)}`;
}

function printTable(): void {
  const headers: Row = { case: 'case', median: `median of ${reps}`, rate: 'rate', note: 'note' };
  const all = [headers, ...rows];
  const width = (k: keyof Row) => Math.max(...all.map((r) => r[k].length));
  const line = (r: Row) =>
    `| ${(['case', 'median', 'rate', 'note'] as const).map((k) => r[k].padEnd(width(k))).join(' | ')} |`;
  console.log(line(headers));
  console.log(
    `|${(['case', 'median', 'rate', 'note'] as const).map((k) => '-'.repeat(width(k) + 2)).join('|')}|`,
  );
  for (const r of rows) console.log(line(r));
}

await mkdir(work, { recursive: true });
try {
  const only = process.env.BENCH_ONLY?.split(',');
  const want = (name: string) => only === undefined || only.includes(name);
  if (want('memory')) await benchMemory();
  if (want('dense')) await benchDense();
  if (want('rss')) benchRss();
  if (want('incremental')) await benchIncremental();
  if (want('hash')) await benchHash(reps);
  printTable();
} finally {
  await rm(work, { recursive: true, force: true });
}
