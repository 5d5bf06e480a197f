// `pnpm bench` for the testkit: what a mock platform costs.
// 1. VirtualDisk: a 1 TiB disk with GiBs written: time and memory follow the
//    written bytes, not the virtual size.
// 2. The mock server: bytes served per second over loopback HTTP and HTTPS.
// Medians of 5 runs; ratios are within one run.
import { SeededRandom, startMockServer, VirtualDisk } from '@syncproxy/testkit/mock';
import { Agent, request } from 'undici';

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const WRITTEN = Number(process.env.BENCH_WRITTEN_GIB ?? 2) * GIB;

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};
const rssMib = (): number => process.memoryUsage().rss / MIB;

async function virtualDisk(): Promise<Record<string, string>> {
  const writeRates: number[] = [];
  const snapshotMs: number[] = [];
  const changedMs: number[] = [];
  const held: number[] = [];
  let rssPeak = 0;
  const block = new SeededRandom(1).fill(new Uint8Array(64 * KIB));
  for (let run = 0; run < RUNS; run++) {
    globalThis.gc?.();
    const disk = new VirtualDisk({ sizeBytes: 1024 * GIB, blockSizeBytes: 64 * KIB });
    const random = new SeededRandom(run + 1);
    const blocks = (1024 * GIB) / (64 * KIB);
    let t = performance.now();
    for (let written = 0; written < WRITTEN; written += block.length) {
      disk.write(random.int(0, blocks) * 64 * KIB, block);
    }
    writeRates.push(WRITTEN / MIB / ((performance.now() - t) / 1000));
    t = performance.now();
    const base = disk.snapshot();
    snapshotMs.push(performance.now() - t);
    // 1% of the written data changes.
    for (let written = 0; written < WRITTEN / 100; written += block.length)
      disk.write(random.int(0, blocks) * 64 * KIB, block);
    t = performance.now();
    const changed = disk.changedExtents(base);
    changedMs.push(performance.now() - t);
    if (changed.length === 0) throw new Error('no change found');
    // What the disk holds: ArrayBuffer bytes, after the snapshot and the 1% copy-on-write.
    held.push(process.memoryUsage().arrayBuffers / MIB);
    rssPeak = Math.max(rssPeak, rssMib());
  }
  return {
    'virtual size': '1 TiB',
    written: `${WRITTEN / GIB} GiB in 64 KiB blocks`,
    'write MiB/s': median(writeRates).toFixed(0),
    'snapshot ms': median(snapshotMs).toFixed(1),
    'changedExtents (1% changed) ms': median(changedMs).toFixed(1),
    'ArrayBuffer MiB held (written + 1% copied)': median(held).toFixed(0),
    'peak RSS MiB': rssPeak.toFixed(0),
  };
}

async function mockServer(tls: boolean): Promise<number> {
  const disk = new VirtualDisk({ sizeBytes: 64 * MIB });
  disk.write(0, new SeededRandom(2).fill(new Uint8Array(64 * MIB)));
  const server = await startMockServer({
    tls,
    state: disk,
    routes: {
      'GET /data': (req, state) => ({ body: state.read(Number(req.query.get('offset')), 4 * MIB) }),
    },
  });
  const agent = new Agent({ connect: tls ? { ca: server.tls!.cert } : {} });
  try {
    const total = 256 * MIB;
    const t = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < total) {
        const offset = next % (64 * MIB);
        next += 4 * MIB;
        const res = await request(`${server.url}/data?offset=${offset}`, { dispatcher: agent });
        await res.body.arrayBuffer();
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    return total / MIB / ((performance.now() - t) / 1000);
  } finally {
    await agent.close();
    await server.close();
  }
}

const disk = await virtualDisk();
const http: number[] = [];
const https: number[] = [];
for (let run = 0; run < RUNS; run++) {
  http.push(await mockServer(false));
  https.push(await mockServer(true));
}
console.log(`\ntestkit bench (median of ${RUNS} runs, node ${process.version})\n`);
console.table(disk);
console.table({
  'mock server, 4 MiB reads, 8 in flight, loopback': {
    'HTTP MiB/s': median(http).toFixed(0),
    'HTTPS MiB/s': median(https).toFixed(0),
    'HTTPS / HTTP': (median(https) / median(http)).toFixed(2),
  },
});
