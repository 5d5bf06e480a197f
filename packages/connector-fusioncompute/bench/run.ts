// Throughput of backup-resource reads against the FusionCompute mock with 5 ms added to every
// ranged read: a 2 GiB disk, half written, at 1, 8 and 32 reads in flight. Run: pnpm bench.
// FusionCompute allows 8 backup connections per host, so the connector caps 32 in flight at 8
// connections; BENCH_LIFT_LIMIT=1 lifts the cap on both sides to show the reader alone.
// The mock runs in a child process (bench/mock-process.ts), as the platform would be remote.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { FileSink, transferDisk } from '@syncproxy/core';
import { createFusionComputeConnector, HostLimits } from '../src/index.js';

const SIZE_MIB = Number(process.env.BENCH_SIZE_MIB ?? 2048);
const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 5);
const CHUNK = Number(process.env.BENCH_CHUNK_BYTES ?? 1024 * 1024);
const IN_FLIGHT = (process.env.BENCH_IN_FLIGHT ?? '1,8,32').split(',').map(Number);
const LIFT = process.env.BENCH_LIFT_LIMIT === '1';

const child = spawn(
  process.execPath,
  [
    '--import',
    'tsx',
    fileURLToPath(new URL('./mock-process.ts', import.meta.url)),
    String(SIZE_MIB),
    String(LATENCY_MS),
    LIFT ? '64' : '8',
  ],
  { stdio: ['pipe', 'pipe', 'inherit'] },
);
const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
const nextLine = async () => {
  const { value, done } = await lines.next();
  if (done) throw new Error('the mock process ended early');
  return JSON.parse(value as string);
};
const dir = await mkdtemp(join(tmpdir(), 'syncproxy-fc-bench-'));
try {
  const config = await nextLine();
  const vmUrn = (await nextLine()) as string;
  const connector = createFusionComputeConnector({
    taskPollMs: 5,
    ...(LIFT ? { hostLimits: new HostLimits({ maxConnections: 64 }) } : {}),
  });
  const session = await connector.connect(config);
  const host = (await session.listHosts()).find((h) => h.id === vmUrn)!;
  const snapshot = await session.createSnapshot(host);
  const rows: Array<{ inFlight: number; seconds: number; MBps: number; speedUp: number }> = [];
  for (const inFlight of IN_FLIGHT) {
    const reader = await session.openReader(host.disks[0]!, { snapshot });
    const started = process.hrtime.bigint();
    const result = await transferDisk({
      reader,
      sink: new FileSink(join(dir, `bench-${inFlight}.img`), { sync: false }),
      concurrency: inFlight,
      chunkSizeBytes: CHUNK,
      checkpoint: false,
      manifest: false,
    });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    await reader.close();
    await rm(join(dir, `bench-${inFlight}.img`), { force: true });
    const MBps = result.bytesRead / 1e6 / seconds;
    rows.push({
      inFlight,
      seconds: +seconds.toFixed(2),
      MBps: +MBps.toFixed(1),
      speedUp: +(MBps / (rows[0]?.MBps ?? MBps)).toFixed(2),
    });
  }
  await session.deleteSnapshot(snapshot);
  await session.close();
  console.log(
    `FusionCompute backup-resource reads: ${SIZE_MIB} MiB disk, half written, ${CHUNK / 1024} KiB ranged reads, +${LATENCY_MS} ms each${LIFT ? ', per-host limit lifted' : ', at most 8 connections per host'}`,
  );
  console.table(rows);
} finally {
  child.stdin!.end();
  await rm(dir, { recursive: true, force: true });
}
