// The NBD client and the engine over it against nbdcopy: a sparse-random export copied to a null
// sink and to a file, the same number of connections on both sides, every scenario repeated and
// interleaved so that each ratio compares runs of one moment (the -> null scenarios as one group,
// then the -> file ones). The engine runs with its defaults
// and what NbdReader hints (no settings passed): to a file that means a manifest (every chunk
// hashed) and checkpoints beside the image, as a user gets them.
//   BENCH_NBD_SIZE=4G BENCH_REPS=5 BENCH_NBD_CONNECTIONS=4 OUTPUT_DIR=/dev/shm npx pnpm@10.34.9 --filter @syncproxy/nbd bench
// (SIZE, REPS and CONNECTIONS are read too.) Files go to tmpfs by default: on a shared disk,
// write-back stalls swamp the difference between two copy tools (both write to the same place).
// It runs the packages' builds (dist/), not their sources.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { measure, median, recordRow } from '../../../scripts/bench/record.mjs';
import { startNbdkit } from '../test/nbdkit.js';
import { clientCopy, dataExtents, NullSink } from './copy.js';

// The built packages, as a user runs them (turbo builds them before `bench`): from the sources the
// read threads would start their workers through tsx, at about 600 ms a reader instead of 40.
const { FileSink, transferDisk }: typeof import('@syncproxy/core') = await import(
  new URL('../../core/dist/index.js', import.meta.url).href
);
const { connectNbd, NbdReader }: typeof import('../src/index.js') = await import(
  new URL('../dist/index.js', import.meta.url).href
);

const SIZE = process.env.BENCH_NBD_SIZE ?? process.env.SIZE ?? '4G';
const REPS = Number(process.env.BENCH_REPS ?? process.env.REPS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_NBD_CONNECTIONS ?? process.env.CONNECTIONS ?? 4);

interface Scenario {
  name: string;
  /** The row of `pnpm bench` this scenario is the project side of. */
  row?: { id: string; path: string; required: string; aim?: string };
  /** The nbdcopy scenario this one is compared with. */
  baseline?: string;
  run(uri: string, output: string): Promise<void>;
}

const scenarios: Scenario[] = [
  {
    name: `nbdcopy --connections=${CONNECTIONS} -> null`,
    run: async (uri) => {
      execFileSync('nbdcopy', [`--connections=${CONNECTIONS}`, uri, 'null:']);
    },
  },
  {
    name: 'NbdClient alone -> null',
    row: { id: 'nbd-client-null', path: 'NbdClient alone -> null, vs nbdcopy', required: 'none (reference)' },
    baseline: `nbdcopy --connections=${CONNECTIONS} -> null`,
    run: async (uri) => {
      const client = await connectNbd({ uri, connections: CONNECTIONS });
      await clientCopy(client, await dataExtents(client), undefined);
      await client.close();
    },
  },
  {
    name: 'transferDisk(NbdReader) -> null, defaults',
    row: {
      id: 'nbd-engine-null',
      path: 'transferDisk(NbdReader) -> null, vs nbdcopy',
      required: '>= 0.95',
      aim: '>= 1.0',
    },
    baseline: `nbdcopy --connections=${CONNECTIONS} -> null`,
    run: async (uri) => {
      const reader = await NbdReader.open({ uri, connections: CONNECTIONS });
      try {
        await transferDisk({ reader, sink: new NullSink() });
      } finally {
        await reader.close();
      }
    },
  },
  {
    // --flush: the FileSink makes its image durable at the end by default; on tmpfs both are free.
    name: `nbdcopy --connections=${CONNECTIONS} --flush -> file`,
    run: async (uri, output) => {
      execFileSync('nbdcopy', [`--connections=${CONNECTIONS}`, '--flush', uri, output]);
    },
  },
  {
    name: 'NbdClient alone -> file',
    row: { id: 'nbd-client-file', path: 'NbdClient alone -> file, vs nbdcopy', required: 'none (reference)' },
    baseline: `nbdcopy --connections=${CONNECTIONS} --flush -> file`,
    run: async (uri, output) => {
      const client = await connectNbd({ uri, connections: CONNECTIONS });
      await clientCopy(client, await dataExtents(client), output);
      await client.close();
    },
  },
  {
    name: 'transferDisk(NbdReader) -> FileSink, defaults (manifest and checkpoints on)',
    row: {
      id: 'nbd-engine-file',
      path: 'transferDisk(NbdReader) -> file, vs nbdcopy',
      required: '>= 0.95',
      aim: '>= 1.0',
    },
    baseline: `nbdcopy --connections=${CONNECTIONS} --flush -> file`,
    run: async (uri, output) => {
      const reader = await NbdReader.open({ uri, connections: CONNECTIONS });
      try {
        await transferDisk({ reader, sink: new FileSink(output) });
      } finally {
        await reader.close();
      }
    },
  },
];

/** The image and the state a FileSink keeps beside it: each run starts from nothing, as a first sync does. */
async function removeImage(path: string): Promise<void> {
  for (const p of [path, `${path}.manifest`, `${path}.manifest.journal`, `${path}.checkpoint.json`])
    await rm(p, { force: true });
}

const outputDir = process.env.OUTPUT_DIR ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
const dir = await mkdtemp(join(outputDir, 'syncproxy-nbd-bench-'));
const server = await startNbdkit(['sparse-random', `size=${SIZE}`, 'percent=50', 'seed=1']);
try {
  const probe = await connectNbd({ uri: server.uri, connections: CONNECTIONS });
  const dataBytes = (await dataExtents(probe)).reduce((n, e) => n + e.length, 0);
  const { size } = probe;
  await probe.close();
  const setting = `nbdkit sparse-random size=${SIZE} percent=50 (${size} bytes, ${dataBytes} of data), ${CONNECTIONS} connections, files in ${outputDir}`;
  console.log(`${setting}; ${REPS} repetitions, interleaved`);

  const times = new Map<string, number[]>(scenarios.map((s) => [s.name, []]));
  const cpu = new Map<string, number[]>(scenarios.map((s) => [s.name, []]));
  // The -> null scenarios run their repetitions first, the -> file ones after. A file run frees its
  // image (2 GiB of tmpfs) before the next run, and this VM hands freed pages back to its host for
  // about 20 s after (docs/benchmarks.md, "free page reporting"): interleaved together, a -> null
  // run that followed a file run paid for it and one that followed a null run did not. In groups,
  // every run of a group follows one of its own kind.
  const groups = [
    { name: '-> null', scenarios: scenarios.slice(0, 3), checkFirst: false },
    { name: '-> file', scenarios: scenarios.slice(3), checkFirst: true },
  ];
  for (const group of groups) {
    if (group.checkFirst) {
      // Correctness first: the client's file and the engine's must equal nbdcopy's.
      const images = ['nbdcopy.img', 'client.img', 'engine.img'].map((name) => join(dir, name));
      for (const [i, image] of images.entries()) await scenarios[3 + i]!.run(server.uri, image);
      const sums = images.map((f) => execFileSync('sha256sum', [f]).toString().split(' ')[0]);
      console.log(`sha256 nbdcopy ${sums[0]} / NbdClient ${sums[1]} / transferDisk ${sums[2]}`);
      if (sums[0] !== sums[1] || sums[0] !== sums[2]) throw new Error('copies differ: benchmark aborted');
      for (const image of images) await removeImage(image);
    }
    for (let rep = 0; rep < REPS; rep++) {
      // The order flips every repetition, so no scenario always follows the same one (and its freed memory).
      for (const scenario of rep % 2 === 0 ? group.scenarios : [...group.scenarios].reverse()) {
        const output = join(dir, 'out.img');
        await removeImage(output);
        // Write-back of the previous run's file must not land in this run's time.
        execFileSync('sync');
        const { seconds, cpuSeconds } = await measure(() => scenario.run(server.uri, output));
        times.get(scenario.name)!.push(seconds);
        if (cpuSeconds !== undefined) cpu.get(scenario.name)!.push(cpuSeconds);
      }
      process.stderr.write(`${group.name}: repetition ${rep + 1}/${REPS} done\n`);
    }
  }
  await removeImage(join(dir, 'out.img'));

  console.table(
    scenarios.map((s) => {
      const seconds = median(times.get(s.name)!);
      const base = s.baseline ? median(times.get(s.baseline)!) : undefined;
      return {
        scenario: s.name,
        'median s': seconds.toFixed(3),
        'data MB/s': Math.round(dataBytes / seconds / 1e6),
        'vs nbdcopy': base === undefined ? '' : (base / seconds).toFixed(2),
        'machine CPU s': cpu.get(s.name)!.length ? median(cpu.get(s.name)!).toFixed(2) : '',
        'runs s': times
          .get(s.name)!
          .map((t) => t.toFixed(3))
          .join(' '),
      };
    }),
  );
  for (const s of scenarios) {
    if (s.row === undefined || s.baseline === undefined) continue;
    const projectRuns = times.get(s.name)!;
    const anchorRuns = times.get(s.baseline)!;
    const ratio = median(anchorRuns) / median(projectRuns);
    const client = scenarios.find((c) => c.baseline === s.baseline && c.name.startsWith('NbdClient'))!;
    const engineNote = s.row.id.startsWith('nbd-engine')
      ? `; vs NbdClient alone ${(median(times.get(client.name)!) / median(projectRuns)).toFixed(2)}`
      : '';
    recordRow({
      ...s.row,
      project: s.name,
      anchor: s.baseline,
      projectRuns,
      anchorRuns,
      projectCpu: cpu.get(s.name),
      anchorCpu: cpu.get(s.baseline),
      unit: 's',
      ratio,
      ratioMeaning: 'nbdcopy time / ours (higher is better)',
      pass: s.row.required.startsWith('>=') ? ratio >= Number(s.row.required.slice(2)) : true,
      note: `${setting}; medians of ${REPS}${engineNote}`,
    });
  }
} finally {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
}
