// `pnpm bench` in packages/core: the transfer engine against dd and itself, with its defaults (a
// FileSink keeps a manifest and checkpoints beside its image, so every chunk is hashed).
// Figures are medians of BENCH_REPS runs (default 5) and the ratios are taken within this one run,
// the two sides interleaved. Rows of `pnpm bench`: file-engine-dd, rss-16g, incremental-1t,
// incremental-partial, hash-blake3.
// Sizes: BENCH_DENSE_GIB (4), BENCH_RSS_GIB (16), BENCH_INCREMENTAL_TIB (1), BENCH_HASH_MIB (1024).
// Row hash-blake3 comes from ./hash.ts. Temp files go under
// <repo>/.tmp/bench-transfer-<pid> and are deleted at the end.
import { spawnSync } from 'node:child_process';
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measure, median, recordRow } from '../../../scripts/bench/record.mjs';
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

const rate = (bytes: number, seconds: number) => `${(bytes / seconds / MiB).toFixed(0)} MiB/s`;

async function timed(run: () => Promise<unknown> | unknown): Promise<number> {
  const started = performance.now();
  await run();
  return (performance.now() - started) / 1000;
}

async function removeImage(path: string): Promise<void> {
  for (const p of [path, `${path}.manifest`, `${path}.manifest.journal`, `${path}.checkpoint.json`])
    await rm(p, { force: true });
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
  const ddSyncCpu: number[] = [];
  const engineCpu: number[] = [];
  const measured = async (times: number[], cpu: number[], run: () => unknown) => {
    const { seconds, cpuSeconds } = await measure(run);
    times.push(seconds);
    if (cpuSeconds !== undefined) cpu.push(cpuSeconds);
  };
  const runEngine = async () => {
    const reader = await FileReader.open(source);
    try {
      await transferDisk({ reader, sink: new FileSink(target) });
    } finally {
      await reader.close();
    }
  };
  // Each run starts from the same state: the previous image removed and the file system synced, so
  // freeing it is charged to no one. The engine and dd conv=fsync swap places every repetition
  // (measured: whichever ran right after the other's removal was up to 40% slower).
  const fresh = async () => {
    await removeImage(target);
    spawnSync('sync');
  };
  for (let i = 0; i < reps; i++) {
    ddPlain.push(await timed(() => dd(source, target, false)));
    await fresh();
    const pair = [
      () => measured(ddSync, ddSyncCpu, () => dd(source, target, true)),
      () => measured(engine, engineCpu, runEngine),
    ];
    for (const run of i % 2 === 0 ? pair : pair.reverse()) {
      await run();
      await fresh();
    }
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
    note: `ratio vs dd conv=fsync ${(s / e).toFixed(2)}, vs plain dd ${(p / e).toFixed(2)} (BLAKE3 manifest + checkpoints included)`,
  });
  console.error(
    `dense: dd ${ddPlain.map((x) => x.toFixed(2))} dd-fsync ${ddSync.map((x) => x.toFixed(2))} engine ${engine.map((x) => x.toFixed(2))}`,
  );
  recordRow({
    id: 'file-engine-dd',
    path: `transferDisk file -> FileSink ${gib} GiB, manifest on, vs dd bs=4M conv=fsync`,
    project: 'transferDisk(file reader) -> FileSink, defaults (manifest, checkpoints, fsync)',
    anchor: 'dd bs=4M conv=fsync',
    projectRuns: engine,
    anchorRuns: ddSync,
    projectCpu: engineCpu,
    anchorCpu: ddSyncCpu,
    unit: 's',
    ratio: s / e,
    ratioMeaning: 'dd time / ours (higher is better)',
    required: '>= 0.95',
    aim: '>= 1.0',
    pass: s / e >= 0.95,
    note: `${gib} GiB of random data, source cached, files under ${work}; medians of ${reps}; plain dd (no fsync) ${p.toFixed(2)} s`,
  });
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
  const peakMiB = peakKiB / 1024;
  recordRow({
    id: 'rss-16g',
    path: `peak RSS of a ${rssBytes / GiB} GiB copy`,
    project: `transferDisk(memory reader) -> FileSink ${rssBytes / GiB} GiB, defaults, in a fresh process`,
    projectRuns: [peakMiB],
    unit: 'MiB',
    ratio: peakMiB,
    ratioMeaning: 'peak RSS in MiB, VmHWM (lower is better)',
    required: '< 256',
    pass: peakMiB < 256,
    note: `one run; process baseline ${(baselineKiB / 1024).toFixed(0)} MiB; ${seconds.toFixed(1)} s`,
  });
  rows.push({
    case: `peak RSS, ${rssBytes / GiB} GiB memory -> FileSink`,
    median: `${(peakKiB / 1024).toFixed(0)} MiB`,
    rate: rate(rssBytes, seconds),
    note: `one run; process baseline ${(baselineKiB / 1024).toFixed(0)} MiB; limit 256 MiB`,
  });
}

async function benchIncremental(): Promise<void> {
  const chunk = 4 * MiB;
  const cases = [
    { disk: incrementalBytes, every: 100, label: `${incrementalBytes / (1024 * GiB)} TiB disk, 1% changed` },
    {
      disk: incrementalBytes / 16,
      every: 100 / 16,
      label: `${incrementalBytes / 16 / GiB} GiB disk, same bytes changed`,
    },
  ].map((c, i) => ({
    ...c,
    target: join(work, `incremental-target-${i}.img`),
    times: [] as number[],
    changed: 0,
  }));
  // The small disk changes exactly as many chunks as the large one: every 6th chunk, cut at the
  // large disk's count (every 6.25th cannot be had, and every 6th alone changes 4% more bytes).
  const largeCount = Math.ceil(cases[0]!.disk / chunk / cases[0]!.every);
  /** An incremental of `c`'s disk changing `pieceBytes` at the start of every changed chunk. */
  const incrementalSync = (c: (typeof cases)[number], transferId: string, pieceBytes = chunk) => {
    const every = Math.max(1, Math.floor(c.every)) * (chunk / pieceBytes);
    const reader = new PoolReader(c.disk, everyNth(c.disk, pieceBytes, every, largeCount), {
      incremental: true,
    });
    return { reader, run: () => transferDisk({ reader, sink: new FileSink(c.target), transferId }) };
  };
  // One untimed run per disk first: it writes a new image (allocating its blocks), which is not an
  // incremental, and took 3 to 9 times as long as the runs after it (measured: 14.6 to 34.9 s against
  // 3.6 to 5.1 s), enough to move a median of 5.
  for (const c of cases) await incrementalSync(c, 'warm-up').run();
  // The small disk again, its same chunks changed in part: 64 KiB at the start of each. The engine
  // reads each such chunk back from the image and takes two digests (its kept bytes are proven
  // against the manifest, then the new bytes hashed). The pool's bytes sit at their disk offsets, so
  // every case writes the bytes the image already holds and the image stays the same.
  const small = cases[1]!;
  const partialPiece = 64 * 1024;
  const partial = { times: [] as number[], changed: 0 };
  // Interleaved, the order swapped every repetition. Each run starts with nothing left to write back
  // (`sync`: the other disk's writes, and the discards of the files removed before, on a file
  // system mounted with discard), so none is charged with another's I/O.
  for (let i = 0; i < reps; i++) {
    for (const c of i % 2 === 0 ? cases : [...cases].reverse()) {
      const { reader, run } = incrementalSync(c, `rep-${i}`);
      spawnSync('sync');
      c.times.push(await timed(run));
      c.changed = reader.bytesRead;
    }
    const { reader, run } = incrementalSync(small, `partial-${i}`, partialPiece);
    spawnSync('sync');
    partial.times.push(await timed(run));
    partial.changed = reader.bytesRead;
  }
  for (const c of cases) {
    await removeImage(c.target);
    const m = median(c.times);
    rows.push({
      case: `incremental, ${c.label}`,
      median: `${m.toFixed(2)} s`,
      rate: rate(c.changed, m),
      note: `${(c.changed / GiB).toFixed(2)} GiB changed in ${c.changed / chunk} chunks`,
    });
  }
  const large = cases[0]!;
  const ratio = median(large.times) / median(small.times);
  rows.at(-1)!.note += `; time ratio large / small disk ${ratio.toFixed(2)}`;
  recordRow({
    id: 'incremental-1t',
    path: `incremental: ${large.label} vs the same bytes on a ${small.disk / GiB} GiB disk`,
    project: `transferDisk(memory reader) -> FileSink, ${large.label}, defaults`,
    anchor: `the same, ${small.label}`,
    projectRuns: large.times,
    anchorRuns: small.times,
    unit: 's',
    ratio,
    ratioMeaning: 'large-disk time / small-disk time (lower is better)',
    required: '<= 1.1',
    pass: ratio <= 1.1,
    note: `${(large.changed / GiB).toFixed(2)} GiB changed in ${large.changed / chunk} chunks of 4 MiB, each run on the previous run's image (an incremental), after one untimed run per disk that writes it first; medians of ${reps}`,
  });
  const partialMedian = median(partial.times);
  rows.push({
    case: `incremental, ${small.disk / GiB} GiB disk, the same chunks changed in part`,
    median: `${partialMedian.toFixed(2)} s`,
    rate: rate(partial.changed, partialMedian),
    note: `${(partial.changed / MiB).toFixed(0)} MiB changed: 64 KiB in each of ${partial.changed / partialPiece} chunks`,
  });
  recordRow({
    id: 'incremental-partial',
    path: `incremental: the chunks of the ${small.disk / GiB} GiB case changed in part (64 KiB each) vs in whole`,
    project: `transferDisk(memory reader) -> FileSink, 64 KiB changed in each of ${partial.changed / partialPiece} chunks, defaults`,
    anchor: `the same, the whole of each chunk changed (${small.label})`,
    projectRuns: partial.times,
    anchorRuns: small.times,
    unit: 's',
    ratio: partialMedian / median(small.times),
    ratioMeaning: 'in-part time / whole-chunk time (lower is better)',
    required: 'none (reference)',
    pass: true,
    note: `a chunk changed in part is read back from the image and hashed twice (its kept bytes proven against the manifest, then the new bytes), where a whole chunk is only written and hashed; interleaved with the incremental-1t runs; medians of ${reps}`,
  });
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
