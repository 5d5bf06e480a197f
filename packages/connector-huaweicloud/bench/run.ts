// Full read of one volume through each data path against the mock (in this process):
// `BENCH_GB` (default 1), `BENCH_DENSITY` (share of 64 KiB blocks holding data, default 0.25).

import { createSeededDisk } from '@syncproxy/testkit/mock';
import { createHuaweiCloudConnector } from '../src/index.js';
import { startMockHuaweiCloud } from '../src/mock/index.js';

const gb = Number(process.env.BENCH_GB ?? 1);
const density = Number(process.env.BENCH_DENSITY ?? 0.25);

for (const exportEnabled of [true, false]) {
  const cloud = await startMockHuaweiCloud({ exportEnabled });
  const { volumes } = cloud.addServer({ name: 'bench', volumesGb: [gb] });
  const seeded = createSeededDisk({ seed: 1, sizeBytes: gb * 1024 ** 3, density });
  for (const e of seeded.allocatedExtents())
    volumes[0]!.disk.write(e.offset, seeded.read(e.offset, e.length));
  const connector = createHuaweiCloudConnector({ poll: { initialDelayMs: 1, maxDelayMs: 5 } });
  const session = await connector.connect(cloud.config(), { devices: { byIdDir: cloud.byIdDir } });
  const host = (await session.listHosts())[0]!;
  const snapshot = await session.createSnapshot(host);
  const started = performance.now();
  const reader = await session.openReader(host.disks[0]!, { snapshot });
  const opened = performance.now();
  let bytes = 0;
  const buffer = new Uint8Array(4 * 1024 * 1024);
  for await (const extent of reader.extents()) {
    if (extent.kind !== 'data') continue;
    for (let o = extent.offset; o < extent.offset + extent.length; o += buffer.length) {
      const view = buffer.subarray(0, Math.min(buffer.length, extent.offset + extent.length - o));
      const data = await reader.read(o, view.length);
      bytes += data.length;
    }
  }
  await reader.close();
  const seconds = (performance.now() - opened) / 1000;
  console.log(
    `${exportEnabled ? 'export' : 'attach'}: open ${((opened - started) / 1000).toFixed(2)} s, hashed and read ${(bytes / 1024 ** 2).toFixed(0)} MiB of changed chunks in ${seconds.toFixed(2)} s (${((gb * 1024) / seconds).toFixed(0)} MiB/s of disk scanned)`,
  );
  await session.close();
  await cloud.close();
}
