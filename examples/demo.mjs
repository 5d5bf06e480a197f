#!/usr/bin/env node
// The Syncproxy demo: the SDK's main job against a mock AWS on loopback.
// 1. a sample EC2 instance with two sparse EBS volumes (4 GiB and 2 GiB);
// 2. a full sync of each volume into <target>/<volume>.raw (only written blocks are read);
// 3. some blocks change on the "platform";
// 4. an incremental sync (EBS ListChangedBlocks) on top of the full images;
// 5. every image is verified against the platform's disk (SHA-256).
// No configuration, no network beyond 127.0.0.1.
import { createHash } from 'node:crypto';
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createAwsConnector } from '@syncproxy/connector-aws';
import { createAwsMockPlatform } from '@syncproxy/connector-aws/mock';
import { createRegistry, FileSink, SyncproxyError, transferDisk } from '@syncproxy/core';
import { SeededRandom } from '@syncproxy/testkit/mock';

// The AWS SDK warns that releases after January 2027 need Node 22; the demo pins a release that runs on 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const target = resolve(process.argv[2] ?? join(process.cwd(), '.tmp', 'demo'));
const isTty = process.stdout.isTTY === true;

const fmtBytes = (n) => (n >= GiB ? `${(n / GiB).toFixed(2)} GiB` : `${(n / MiB).toFixed(1)} MiB`);
const fmtRate = (bps) => `${(bps / MiB).toFixed(1)} MiB/s`;
const say = (line = '') => process.stdout.write(`${line}\n`);

/** Writes `count` runs of seeded random data (1-4 MiB each, 512 KiB aligned) and one zeroed range. */
async function scribble(platform, diskId, sizeBytes, seed, count) {
  const random = new SeededRandom(seed);
  let written = 0;
  for (let i = 0; i < count; i++) {
    const length = random.int(2, 8) * 512 * 1024;
    const offset = random.int(0, (sizeBytes - length) / (512 * 1024)) * 512 * 1024;
    await platform.writeDisk(diskId, offset, random.fill(new Uint8Array(length)));
    written += length;
  }
  return written;
}

async function sha256OfPlatformDisk(platform, diskId, sizeBytes) {
  const hash = createHash('sha256');
  for (let offset = 0; offset < sizeBytes; offset += 64 * MiB) {
    hash.update(await platform.readDisk(diskId, offset, Math.min(64 * MiB, sizeBytes - offset)));
  }
  return hash.digest('hex');
}

async function sha256OfFile(path) {
  const hash = createHash('sha256');
  const file = await open(path, 'r');
  try {
    for await (const chunk of file.createReadStream({ highWaterMark: 8 * MiB })) hash.update(chunk);
  } finally {
    await file.close();
  }
  return hash.digest('hex');
}

function progressPrinter(label) {
  let lastPlain = 0;
  return (p) => {
    const pct = p.bytesTotal ? Math.floor((100 * p.bytesDone) / p.bytesTotal) : 0;
    const line = `  ${label}  ${String(pct).padStart(3)}%  ${fmtBytes(p.bytesDone)} / ${fmtBytes(p.bytesTotal ?? 0)}  ${fmtRate(p.bytesPerSecond)}  ETA ${p.etaMs === undefined ? '-' : `${(p.etaMs / 1000).toFixed(1)} s`}`;
    if (isTty) process.stdout.write(`\r${line.padEnd(90)}`);
    else if (p.elapsedMs - lastPlain >= 1000) {
      lastPlain = p.elapsedMs;
      say(line);
    }
  };
}

async function syncHost(session, host, snapshot, base, kind) {
  const rows = [];
  for (const disk of host.disks) {
    const reader = await session.openReader(disk, { snapshot, base });
    const path = join(target, `${disk.id}.raw`);
    try {
      const result = await transferDisk({ reader, sink: new FileSink(path), onProgress: progressPrinter(disk.id) });
      if (isTty) process.stdout.write('\n');
      rows.push({ kind, disk: disk.id, size: disk.sizeBytes, path, result });
    } finally {
      await reader.close();
    }
  }
  return rows;
}

async function main() {
  const started = performance.now();
  await rm(target, { recursive: true, force: true });
  await mkdir(target, { recursive: true });

  say('Syncproxy demo: mock AWS (EC2 + EBS direct APIs, SigV4-checked) on 127.0.0.1 -> local raw images');
  const platform = await createAwsMockPlatform({ region: 'ap-southeast-1' });
  const session = await createRegistry([createAwsConnector()]).get('aws').connect(platform.config());
  try {
    const hostRef = await platform.createHost({ name: 'demo-web-01', disks: [{ sizeBytes: 4 * GiB }, { sizeBytes: 2 * GiB }] });
    let seed = 1;
    for (const disk of hostRef.disks) {
      const n = await scribble(platform, disk.id, disk.sizeBytes, seed++, 24);
      say(`  volume ${disk.id}: ${fmtBytes(disk.sizeBytes)} virtual, ~${fmtBytes(n)} written`);
    }

    const status = await session.verify();
    say(`platform status: ${status.status}, ${status.hostCount} instance(s)`);
    const host = (await session.listHosts()).find((h) => h.id === hostRef.id);
    if (!host) throw new Error(`instance ${hostRef.id} not listed`);

    say('\n[1/3] full sync');
    const first = await session.createSnapshot(host, { label: 'syncproxy-demo-full' });
    const rows = await syncHost(session, host, first, undefined, 'full');

    say('\n[2/3] blocks change on the platform');
    for (const disk of hostRef.disks) {
      const n = await scribble(platform, disk.id, disk.sizeBytes, 100 + seed++, 6);
      await platform.writeZeroes(disk.id, 0, 1 * MiB);
      say(`  volume ${disk.id}: ~${fmtBytes(n)} rewritten, first 1 MiB zeroed`);
    }

    say('\n[3/3] incremental sync (ListChangedBlocks against the full sync snapshot)');
    const second = await session.createSnapshot(host, { label: 'syncproxy-demo-incremental' });
    rows.push(...(await syncHost(session, host, second, first, 'incremental')));
    await session.deleteSnapshot(first);
    await session.deleteSnapshot(second);

    say('\nverification (SHA-256 of each image vs the platform disk)');
    let allOk = true;
    for (const disk of host.disks) {
      const path = join(target, `${disk.id}.raw`);
      const [image, truth] = await Promise.all([sha256OfFile(path), sha256OfPlatformDisk(platform, disk.id, disk.sizeBytes)]);
      const allocated = (await stat(path)).blocks * 512;
      const ok = image === truth;
      allOk &&= ok;
      say(`  ${disk.id}.raw  ${ok ? 'OK  ' : 'FAIL'}  sha256 ${image.slice(0, 16)}…  ${fmtBytes(disk.sizeBytes)} virtual, ${fmtBytes(allocated)} allocated`);
    }

    say('\nsummary');
    say('  sync         disk                    read        written     zeroed      time     rate');
    for (const r of rows) {
      const x = r.result;
      say(
        `  ${r.kind.padEnd(12)} ${r.disk.padEnd(22)}  ${fmtBytes(x.bytesRead).padStart(10)}  ${fmtBytes(x.bytesWritten).padStart(10)}  ${fmtBytes(x.zeroBytes).padStart(10)}  ${`${(x.durationMs / 1000).toFixed(2)} s`.padStart(7)}  ${fmtRate(x.throughputBytesPerSec).padStart(12)}`,
      );
    }
    const stats = platform.aws.state.stats ?? undefined;
    if (stats) say(`  mock AWS served: ${JSON.stringify(stats)}`);
    say(`\nimages in ${target}`);
    say(`demo ${allOk ? 'passed' : 'FAILED'}: full + incremental sync verified byte-exact in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    process.exitCode = allOk ? 0 : 1;
  } finally {
    await session.close();
    await platform.close();
  }
}

main().catch((error) => {
  const e = SyncproxyError.isInstance(error) ? `${error.code}: ${error.message}` : error?.stack ?? String(error);
  process.stderr.write(`demo failed: ${e}\n`);
  process.exitCode = 1;
});
