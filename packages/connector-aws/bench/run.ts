// Throughput of EBS direct block reads against the mock with 10 ms added to
// every GetSnapshotBlock: at 1, 16 and 64 reads in flight. Run: pnpm bench.
// The mock runs in a child process (bench/mock-process.ts), as AWS would be remote.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createAwsConnector } from '../src/index.js';

const BLOCK = 524_288;
const BLOCKS = Number(process.env.BENCH_BLOCKS ?? 1024);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 5);
const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 10);
const IN_FLIGHT = (process.env.BENCH_IN_FLIGHT ?? '1,16,64').split(',').map(Number);

const child = spawn(
  process.execPath,
  [...(process.env.BENCH_MOCK_NODE_ARGS ?? '').split(' ').filter(Boolean), '--import', 'tsx', fileURLToPath(new URL('./mock-process.ts', import.meta.url)), String(BLOCKS)],
  { stdio: ['pipe', 'pipe', 'inherit'] },
);
const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
const nextLine = async () => {
  const { value, done } = await lines.next();
  if (done) throw new Error('the mock process ended early');
  return value as string;
};
try {
  const config = JSON.parse(await nextLine());
  const session = await createAwsConnector({ snapshotWait: { initialDelayMs: 0 } }).connect(config);
  const [host] = await session.listHosts();
  const snapshot = await session.createSnapshot(host!);
  if (LATENCY_MS > 0) {
    child.stdin!.write(`delay ${LATENCY_MS}\n`);
    await nextLine();
  }

  const rows: Array<{ inFlight: number; medianMBps: number; runs: number[] }> = [];
  for (const inFlight of IN_FLIGHT) {
    const runs: number[] = [];
    for (let r = 0; r < REPEATS; r++) {
      const reader = await session.openReader(host!.disks[0]!, { snapshot });
      const offsets: number[] = [];
      for await (const extent of reader.extents()) {
        for (let o = extent.offset; o < extent.offset + extent.length; o += BLOCK) offsets.push(o);
      }
      let next = 0;
      let bytes = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: inFlight }, async () => {
          // A reused buffer on a SharedArrayBuffer per read in flight, as the engine's chunk buffers are.
          const buffer = new Uint8Array(new SharedArrayBuffer(BLOCK));
          while (next < offsets.length) {
            const offset = offsets[next++]!;
            await reader.readInto!(buffer, offset);
            bytes += buffer.length;
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      runs.push(bytes / 1e6 / seconds);
      await reader.close();
    }
    const sorted = [...runs].sort((a, b) => a - b);
    rows.push({ inFlight, medianMBps: sorted[Math.floor(sorted.length / 2)]!, runs });
  }
  await session.close();
  const base = rows[0]!.medianMBps;
  console.log(
    `GetSnapshotBlock +${LATENCY_MS} ms, ${BLOCKS} blocks of 512 KiB per run, median of ${REPEATS} runs`,
  );
  console.log('| reads in flight | MB/s (median) | vs 1 in flight | runs (MB/s) |');
  console.log('|---:|---:|---:|---|');
  for (const row of rows) {
    console.log(
      `| ${row.inFlight} | ${row.medianMBps.toFixed(1)} | ${(row.medianMBps / base).toFixed(1)}x | ${row.runs.map((v) => v.toFixed(1)).join(', ')} |`,
    );
  }
} finally {
  child.stdin!.end();
  await new Promise((resolve) => child.once('exit', resolve));
}
