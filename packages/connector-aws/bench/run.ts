// Throughput of EBS direct block reads against the mock with 10 ms added to
// every GetSnapshotBlock: at 1, 16 and 64 reads in flight. Run: pnpm bench.
import { seededBytes, VirtualDisk } from '@syncproxy/testkit/mock';
import { createAwsConnector } from '../src/index.js';
import { startMockAws } from '../src/mock/index.js';

const BLOCK = 524_288;
const BLOCKS = Number(process.env.BENCH_BLOCKS ?? 256);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 5);
const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 10);
const IN_FLIGHT = [1, 16, 64];

const aws = await startMockAws();
try {
  const disk = new VirtualDisk({ sizeBytes: 1024 ** 3 });
  // Every other block written, so extents are many and reads are single blocks.
  for (let i = 0; i < BLOCKS; i++) disk.write(i * 2 * BLOCK, seededBytes(i, BLOCK));
  aws.addInstance({ name: 'bench', volumes: [{ disk }] });
  const session = await createAwsConnector({ snapshotWait: { initialDelayMs: 0 } }).connect(aws.config());
  const [host] = await session.listHosts();
  const snapshot = await session.createSnapshot(host!);
  if (LATENCY_MS > 0) aws.delayBlocks(LATENCY_MS);

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
          while (next < offsets.length) {
            const offset = offsets[next++]!;
            const data = await reader.read(offset, BLOCK);
            bytes += data.length;
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
  await aws.close();
}
