// `pnpm bench` in packages/connector-aws: EBS direct reads through transferDisk, as a user runs
// them, against the AWS mock with 10 ms added to every GetSnapshotBlock. The mock runs in a child
// process (bench/mock-process.ts), as AWS would be remote. Rows (scripts/bench/record.mjs):
//  aws-inflight  transferDisk with the engine's defaults (4 MiB chunks, 8 blocks each: 64
//                GetSnapshotBlock calls in flight) into a null sink, against 1 in flight
//                (512 KiB chunks, concurrency 1). Runs interleaved; ratio of the medians.
//  aws-http-floor  (reference) node:http alone, the SDK's request handler, at 64 GETs in flight from
//                a bare server (bench/floor-server.ts, its own process, the same latency) that
//                answers 512 KiB and does nothing else; each body is copied into a slot and
//                SHA-256'd, as the reader must (x-amz-Checksum). No signing, no mock, no engine:
//                the most `aws-inflight` could reach on this machine, against the same 1 in flight.
//  aws-adaptive  with 20% of GetSnapshotBlock calls throttled: transferDisk with its defaults
//                (adaptive reads in flight) against each fixed `concurrency` in BENCH_AWS_FIXED;
//                ratio: adaptive median / the best fixed median.
// Sizes: BENCH_AWS_BLOCKS (default 2048: 1 GiB) blocks of 512 KiB for the measured volume,
// BENCH_AWS_ANCHOR_BLOCKS (default 128) for the 1-in-flight one (its rate is per request, so a
// smaller volume measures it as well in less time). BENCH_REPS runs each (default 5).
// BENCH_MOCK_NODE_ARGS passes node flags to the mock process (e.g. --cpu-prof).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Agent, get as httpGet } from 'node:http';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type BlockSink, type TransferOptions, transferDisk } from '@syncproxy/core';
import { median, recordRow } from '../../../scripts/bench/record.mjs';
import { createAwsConnector } from '../src/index.js';

const BLOCK = 524_288;
const BLOCKS = Number(process.env.BENCH_AWS_BLOCKS ?? process.env.BENCH_BLOCKS ?? 2048);
const ANCHOR_BLOCKS = Number(process.env.BENCH_AWS_ANCHOR_BLOCKS ?? 128);
const REPS = Number(process.env.BENCH_REPS ?? process.env.BENCH_REPEATS ?? 5);
const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 10);
const THROTTLE_RATIO = Number(process.env.BENCH_AWS_THROTTLE ?? 0.2);
const FIXED = (process.env.BENCH_AWS_FIXED ?? '8,16,32,64').split(',').map(Number);
const ROWS = (process.env.BENCH_AWS_ROWS ?? 'aws-inflight,aws-http-floor,aws-adaptive').split(',');

/** BENCH_AWS_DEBUG=1: the engine's debug lines (the adaptive limit's changes), with their time. */
const debugLogger = {
  debug: (fields: object, message: string) =>
    console.log(performance.now().toFixed(0), message, JSON.stringify(fields)),
  info() {},
  warn() {},
  error() {},
} as unknown as NonNullable<TransferOptions['logger']>;

/** A sink that keeps nothing: the bench measures the source side. */
class NullSink implements BlockSink {
  async write(): Promise<void> {}
  async writeZeroes(): Promise<void> {}
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

/** One `aws-http-floor` run: MB/s of `blocks` GETs, 64 in flight, each body copied and hashed. */
async function floorRun(port: number, agent: Agent, blocks: number): Promise<number> {
  const slots = Buffer.allocUnsafe(64 * BLOCK);
  const get = (slot: number) =>
    new Promise<void>((resolve, reject) => {
      httpGet({ host: '127.0.0.1', port, path: '/block', agent }, (response) => {
        const hash = createHash('sha256');
        let at = 0;
        response.on('data', (chunk: Buffer) => {
          if (at + chunk.length > BLOCK) {
            response.destroy();
            reject(new Error('the floor server sent more than a block'));
            return;
          }
          chunk.copy(slots, slot * BLOCK + at);
          hash.update(chunk);
          at += chunk.length;
        });
        response.on('end', () => {
          hash.digest();
          resolve();
        });
        response.on('error', reject);
      }).on('error', reject);
    });
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 64 }, async (_, slot) => {
      while (next++ < blocks) await get(slot);
    }),
  );
  return (blocks * BLOCK) / 1e6 / ((performance.now() - started) / 1000);
}

const child = spawn(
  process.execPath,
  [
    ...(process.env.BENCH_MOCK_NODE_ARGS ?? '').split(' ').filter(Boolean),
    '--import',
    'tsx',
    fileURLToPath(new URL('./mock-process.ts', import.meta.url)),
    String(BLOCKS),
    String(ANCHOR_BLOCKS),
  ],
  { stdio: ['pipe', 'pipe', 'inherit'] },
);
const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
const ask = async (command?: string): Promise<string> => {
  if (command !== undefined) child.stdin!.write(`${command}\n`);
  const { value, done } = await lines.next();
  if (done) throw new Error('the mock process ended early');
  return value as string;
};

try {
  const config = JSON.parse(await ask());
  const session = await createAwsConnector({ snapshotWait: { initialDelayMs: 0 } }).connect(config);
  const hosts = await session.listHosts();
  const measured = hosts.find((h) => h.name === 'bench-0')!;
  const anchor = hosts.find((h) => h.name === 'bench-1')!;
  const snapshots = new Map([
    [measured, await session.createSnapshot(measured)],
    [anchor, await session.createSnapshot(anchor)],
  ]);
  await ask('warm');
  await ask(`delay ${LATENCY_MS}`);

  type Host = typeof measured;
  /** One transfer of the host's disk into a null sink: MB/s, and CPU ms per block of both processes. */
  const transfer = async (host: Host, options: Partial<TransferOptions> = {}) => {
    const reader = await session.openReader(host.disks[0]!, { snapshot: snapshots.get(host)! });
    const mockCpu = Number(await ask('cpu'));
    const cpu = process.cpuUsage();
    const started = performance.now();
    const result = await transferDisk({
      reader,
      sink: new NullSink(),
      ...options,
      ...(process.env.BENCH_AWS_DEBUG ? { logger: debugLogger } : {}),
    });
    const seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    const blocks = result.bytesRead / BLOCK;
    const mockMs = Number(await ask('cpu')) - mockCpu;
    await reader.close();
    return {
      mbps: result.bytesRead / 1e6 / seconds,
      clientCpuMsPerBlock: (used.user + used.system) / 1000 / blocks,
      mockCpuMsPerBlock: mockMs / blocks,
    };
  };
  const fmt = (values: number[]) => values.map((v) => v.toFixed(1)).join(', ');

  if (ROWS.includes('aws-inflight') || ROWS.includes('aws-http-floor')) {
    const one: number[] = [];
    const many: number[] = [];
    const floor: number[] = [];
    const clientCpu: number[] = [];
    const mockCpu: number[] = [];
    const floorServer = ROWS.includes('aws-http-floor')
      ? spawn(
          process.execPath,
          [
            '--import',
            'tsx',
            fileURLToPath(new URL('./floor-server.ts', import.meta.url)),
            String(LATENCY_MS),
          ],
          { stdio: ['pipe', 'pipe', 'inherit'] },
        )
      : undefined;
    const floorPort =
      floorServer === undefined
        ? 0
        : Number(
            (await createInterface({ input: floorServer.stdout! })[Symbol.asyncIterator]().next()).value,
          );
    const floorAgent = new Agent({ keepAlive: true, maxSockets: 64 });
    try {
      if (floorServer !== undefined) await floorRun(floorPort, floorAgent, 64); // connections made, untimed
      if (ROWS.includes('aws-inflight')) {
        // Untimed too, both sides: the client's code compiled and its 64 sockets open before a run
        // counts (the first timed run of each was 10-20% slower than the rest, measured).
        await transfer(anchor, { chunkSizeBytes: BLOCK, concurrency: 1 });
        await transfer(measured);
      }
      for (let r = 0; r < REPS; r++) {
        one.push((await transfer(anchor, { chunkSizeBytes: BLOCK, concurrency: 1 })).mbps);
        if (ROWS.includes('aws-inflight')) {
          const run = await transfer(measured);
          many.push(run.mbps);
          clientCpu.push(run.clientCpuMsPerBlock);
          mockCpu.push(run.mockCpuMsPerBlock);
        }
        if (floorServer !== undefined) floor.push(await floorRun(floorPort, floorAgent, BLOCKS));
      }
    } finally {
      floorAgent.destroy();
      floorServer?.stdin?.end();
    }
    if (floorServer !== undefined) {
      const ratio = median(floor) / median(one);
      console.log(`aws-http-floor: ${fmt(floor)} MB/s`);
      recordRow({
        id: 'aws-http-floor',
        path: `node:http alone at 64 GETs in flight, +${LATENCY_MS} ms, each 512 KiB body copied and SHA-256'd (reference: the most aws-inflight can reach here)`,
        project: 'node:http GETs from a bare server in its own process: no signing, no mock, no engine',
        anchor: 'transferDisk, 512 KiB chunks, concurrency 1 (the aws-inflight anchor)',
        projectRuns: floor,
        anchorRuns: one,
        unit: 'MB/s',
        ratio,
        ratioMeaning: 'floor MB/s / 1 in flight MB/s (higher is better)',
        required: 'none (reference)',
        pass: true,
        note: `${BLOCKS} GETs of 512 KiB a run`,
      });
    }
    if (ROWS.includes('aws-inflight')) {
      const ratio = median(many) / median(one);
      console.log(
        `aws-inflight: 64 in flight ${fmt(many)} MB/s; 1 in flight ${fmt(one)} MB/s; client CPU ms/block ${fmt(clientCpu)}; mock ${fmt(mockCpu)}`,
      );
      recordRow({
        id: 'aws-inflight',
        path: `AWS GetSnapshotBlock +${LATENCY_MS} ms, 64 vs 1 in flight (mock in its own process)`,
        project: 'transferDisk(EBS reader) -> null sink, engine defaults (64 block reads in flight)',
        anchor: 'transferDisk, 512 KiB chunks, concurrency 1 (1 block read in flight)',
        projectRuns: many,
        anchorRuns: one,
        unit: 'MB/s',
        ratio,
        ratioMeaning: '64 in flight MB/s / 1 in flight MB/s (higher is better)',
        required: '>= 25',
        aim: '>= 40',
        pass: ratio >= 25,
        note: `${BLOCKS} blocks (64 in flight) and ${ANCHOR_BLOCKS} blocks (1 in flight) of 512 KiB, every other block written; CPU ms per block at 64 in flight: client ${fmt(clientCpu)}, mock ${fmt(mockCpu)}`,
      });
    }
  }

  if (ROWS.includes('aws-adaptive')) {
    await ask(`throttle ${THROTTLE_RATIO}`);
    const fixed = new Map<number, number[]>(FIXED.map((c) => [c, []]));
    const adaptive: number[] = [];
    for (let r = 0; r < REPS; r++) {
      adaptive.push((await transfer(measured)).mbps);
      for (const concurrency of FIXED)
        fixed.get(concurrency)!.push((await transfer(measured, { concurrency })).mbps);
    }
    await ask('throttle 0');
    const [bestConcurrency, bestRuns] = [...fixed].sort((a, b) => median(b[1]) - median(a[1]))[0]!;
    const ratio = median(adaptive) / median(bestRuns);
    console.log(
      `aws-adaptive: adaptive ${fmt(adaptive)} MB/s; ${[...fixed].map(([c, runs]) => `fixed ${c}: ${fmt(runs)}`).join('; ')}`,
    );
    recordRow({
      id: 'aws-adaptive',
      path: `AWS GetSnapshotBlock +${LATENCY_MS} ms, ${THROTTLE_RATIO * 100}% throttled: adaptive vs best fixed concurrency`,
      project: 'transferDisk(EBS reader) -> null sink, engine defaults (adaptive reads in flight)',
      anchor: `transferDisk, fixed concurrency ${bestConcurrency} (best of ${FIXED.join(', ')})`,
      projectRuns: adaptive,
      anchorRuns: bestRuns,
      unit: 'MB/s',
      ratio,
      ratioMeaning: 'adaptive MB/s / best fixed MB/s (higher is better)',
      required: '>= 0.9',
      pass: ratio >= 0.9,
      note: `${BLOCKS} blocks of 512 KiB; fixed medians ${[...fixed].map(([c, runs]) => `${c}: ${median(runs).toFixed(1)}`).join(', ')} MB/s`,
    });
  }
  await session.close();
} finally {
  child.stdin!.end();
  await new Promise((resolve) => child.once('exit', resolve));
}
