// The NBD client against nbdcopy: a sparse-random export copied to a null sink
// and to a file, the same number of connections on both sides, every scenario
// repeated and interleaved so that each ratio compares runs of one moment.
//   SIZE=4G REPS=5 CONNECTIONS=4 OUTPUT_DIR=/dev/shm npx pnpm@10.34.9 --filter @syncproxy/nbd bench
// Files go to tmpfs by default: on a shared disk, write-back stalls swamp the
// difference between two copy tools (both write to the same place).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileSink, transferDisk } from '@syncproxy/core';
import { connectNbd, NbdReader } from '../src/index.js';
import { startNbdkit } from '../test/nbdkit.js';
import { clientCopy, dataExtents, NullSink } from './copy.js';

const SIZE = process.env.SIZE ?? '4G';
const REPS = Number(process.env.REPS ?? 5);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 4);

/**
 * The engine with the buffer budget the client copy uses (8 x 1 MiB, see copy.ts): its default of
 * 64 MiB in flight in 4 MiB chunks runs 0.74x nbdcopy to a null sink against 0.89x with these.
 */
const ENGINE_SETTINGS = {
  checkpoint: false,
  manifest: false,
  chunkSizeBytes: 1024 * 1024,
  concurrency: 8,
  maxInFlightBytes: 8 * 1024 * 1024,
} as const;

interface Scenario {
  name: string;
  /** The nbdcopy scenario this one is compared with. */
  baseline?: string;
  run(uri: string, output: string): Promise<void>;
}

const scenarios: Scenario[] = [
  {
    name: 'nbdcopy -> null',
    run: async (uri) => {
      execFileSync('nbdcopy', [`--connections=${CONNECTIONS}`, uri, 'null:']);
    },
  },
  {
    name: 'NbdClient -> null',
    baseline: 'nbdcopy -> null',
    run: async (uri) => {
      const client = await connectNbd({ uri, connections: CONNECTIONS });
      await clientCopy(client, await dataExtents(client), undefined);
      await client.close();
    },
  },
  {
    name: 'transferDisk(NbdReader) -> null',
    baseline: 'nbdcopy -> null',
    run: async (uri) => {
      const reader = await NbdReader.open({ uri, connections: CONNECTIONS });
      await transferDisk({ reader, sink: new NullSink(), ...ENGINE_SETTINGS });
      await reader.close();
    },
  },
  {
    name: 'nbdcopy -> file',
    run: async (uri, output) => {
      execFileSync('nbdcopy', [`--connections=${CONNECTIONS}`, uri, output]);
    },
  },
  {
    name: 'NbdClient -> file',
    baseline: 'nbdcopy -> file',
    run: async (uri, output) => {
      const client = await connectNbd({ uri, connections: CONNECTIONS });
      await clientCopy(client, await dataExtents(client), output);
      await client.close();
    },
  },
  {
    name: 'transferDisk(NbdReader) -> file',
    baseline: 'nbdcopy -> file',
    run: async (uri, output) => {
      const reader = await NbdReader.open({ uri, connections: CONNECTIONS });
      const sink = new FileSink(output, { sync: false });
      await transferDisk({ reader, sink, ...ENGINE_SETTINGS });
      await reader.close();
    },
  },
];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const outputDir = process.env.OUTPUT_DIR ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
const dir = await mkdtemp(join(outputDir, 'syncproxy-nbd-bench-'));
const server = await startNbdkit(['sparse-random', `size=${SIZE}`, 'percent=50', 'seed=1']);
try {
  const probe = await connectNbd({ uri: server.uri, connections: CONNECTIONS });
  const dataBytes = (await dataExtents(probe)).reduce((n, e) => n + e.length, 0);
  const { size } = probe;
  await probe.close();
  console.log(
    `nbdkit sparse-random size=${SIZE} percent=50: ${size} bytes, ${dataBytes} of data; ${CONNECTIONS} connections; ${REPS} repetitions, interleaved; files in ${outputDir}`,
  );

  // Correctness first: the client's file must equal nbdcopy's.
  const a = join(dir, 'nbdcopy.img');
  const b = join(dir, 'client.img');
  const c = join(dir, 'engine.img');
  await scenarios[3]!.run(server.uri, a);
  await scenarios[4]!.run(server.uri, b);
  await scenarios[5]!.run(server.uri, c);
  const sums = [a, b, c].map((f) => execFileSync('sha256sum', [f]).toString().split(' ')[0]);
  console.log(`sha256 nbdcopy ${sums[0]} / NbdClient ${sums[1]} / transferDisk ${sums[2]}`);
  if (sums[0] !== sums[1] || sums[0] !== sums[2]) throw new Error('copies differ: benchmark aborted');
  await Promise.all([a, b, c].map((f) => rm(f, { force: true })));

  const times = new Map<string, number[]>(scenarios.map((s) => [s.name, []]));
  for (let rep = 0; rep < REPS; rep++) {
    for (const scenario of scenarios) {
      const output = join(dir, 'out.img');
      await rm(output, { force: true });
      // Write-back of the previous run's file must not land in this run's time.
      execFileSync('sync');
      const started = performance.now();
      await scenario.run(server.uri, output);
      times.get(scenario.name)!.push(performance.now() - started);
    }
    process.stderr.write(`repetition ${rep + 1}/${REPS} done\n`);
  }

  const rows = scenarios.map((s) => {
    const ms = median(times.get(s.name)!);
    const base = s.baseline ? median(times.get(s.baseline)!) : undefined;
    return {
      scenario: s.name,
      'median ms': Math.round(ms),
      'data MB/s': Math.round(dataBytes / ms / 1000),
      'vs nbdcopy (median)': base === undefined ? '' : (base / ms).toFixed(2),
      'runs ms': times
        .get(s.name)!
        .map((t) => Math.round(t))
        .join(' '),
    };
  });
  console.table(rows);
} finally {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
}
