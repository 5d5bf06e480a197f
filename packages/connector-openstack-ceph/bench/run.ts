// `pnpm bench` in packages/connector-openstack-ceph.
// 1. parseExportDiff throughput on a synthetic v1 stream (BENCH_STREAM_MIB, default 1024) fed in
//    64 KiB chunks, against merely iterating the same chunks.
// 2. On a single-node Ceph brought up by scripts/ceph/up.sh (skipped when Ceph is not installed):
//    a full sync of an image through the RBD reader and transferDisk into a FileSink with the
//    defaults a user gets (manifest and checkpoint beside the image, every chunk hashed), against
//    `rbd export` of the same snapshot to a file followed by `sync FILE` (an fsync, as the FileSink
//    does before it reports done). Both write the same file system (<repo>/.tmp). Rows ceph-full-1g
//    and ceph-full-2g of `pnpm bench`'s table, for images of BENCH_CEPH_SIZES_MIB (default
//    "1024,2048", one row id per size in that order).
// Runs are interleaved (the anchor first on even reps, second on odd ones); figures are medians of
// BENCH_REPS runs (default 5); ratios are taken within this one run.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileSink, transferDisk } from '@syncproxy/core';
import { measure, median, recordRow } from '../../../scripts/bench/record.mjs';
import { openRbdReader, parseExportDiff, RbdCli } from '../src/index.js';
import { adminRbd, encodeExportDiff } from '../src/mock/index.js';

const MiB = 1024 * 1024;
const reps = Number(process.env.BENCH_REPS ?? 5);
const streamMiB = Number(process.env.BENCH_STREAM_MIB ?? 1024);
const imageSizesMiB = (process.env.BENCH_CEPH_SIZES_MIB ?? '1024,2048').split(',').map(Number);
const ROW_IDS = ['ceph-full-1g', 'ceph-full-2g'];
const root = fileURLToPath(new URL('../../../', import.meta.url));
const work = join(root, '.tmp', `bench-ceph-${process.pid}`);

async function timed(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return (performance.now() - started) / 1000;
}

function* chunks(stream: Uint8Array, size: number): Generator<Uint8Array> {
  for (let at = 0; at < stream.byteLength; at += size) yield stream.subarray(at, at + size);
}

async function* repeated(stream: Uint8Array, times: number): AsyncGenerator<Uint8Array> {
  // One 64 MiB stream body repeated, so the bench does not need GiBs of RAM for its input.
  yield stream.subarray(0, 12 + 9);
  const body = stream.subarray(21, stream.byteLength - 1);
  for (let i = 0; i < times; i++) yield* chunks(body, 64 * 1024);
  yield stream.subarray(stream.byteLength - 1);
}

async function benchParser(): Promise<void> {
  const unit = 64; // MiB of records per repetition of the body
  const records = Array.from({ length: unit / 4 }, (_, i) => ({
    tag: 'w' as const,
    offset: i * 4 * MiB,
    data: randomBytes(4 * MiB),
  }));
  const stream = encodeExportDiff({ version: 1, sizeBytes: unit * MiB, records });
  const times = Math.max(1, Math.round(streamMiB / unit));
  // Offsets repeat across copies of the body, so the order check is relaxed by
  // feeding each copy as its own stream; the cost measured is the same.
  const parse = async (): Promise<void> => {
    for (let i = 0; i < times; i++) {
      for await (const _ of parseExportDiff(repeated(stream, 1)));
    }
  };
  const iterate = async (): Promise<void> => {
    for (let i = 0; i < times; i++) {
      for await (const _ of repeated(stream, 1));
    }
  };
  const parsed: number[] = [];
  const baseline: number[] = [];
  for (let r = 0; r < reps; r++) {
    baseline.push(await timed(iterate));
    parsed.push(await timed(parse));
  }
  const bytes = times * unit * MiB;
  const p = median(parsed);
  const b = median(baseline);
  console.log(`parseExportDiff: ${(bytes / MiB).toFixed(0)} MiB in 64 KiB chunks`);
  console.log(`  parse    median ${p.toFixed(3)} s  ${(bytes / MiB / p).toFixed(0)} MiB/s`);
  console.log(`  iterate  median ${b.toFixed(3)} s  ${(bytes / MiB / b).toFixed(0)} MiB/s`);
  console.log(`  parse / iterate time ratio: ${(p / b).toFixed(2)}`);
}

async function benchCeph(): Promise<void> {
  if (spawnSync('sh', ['-c', 'command -v ceph-mon && command -v rbd']).status !== 0) {
    console.log('ceph: not installed (scripts/setup-system.sh), skipped');
    return;
  }
  const dir = join(work, 'ceph');
  // The memstore OSD keeps every object in RAM: room for the largest image twice over (a full OSD
  // stalls writes); each image is removed before the next is made.
  const memstoreBytes = Math.max(1024 * MiB, 2 * Math.max(...imageSizesMiB) * MiB);
  const up = spawnSync('bash', [join(root, 'scripts/ceph/up.sh'), dir], {
    encoding: 'utf8',
    env: { ...process.env, SYNCPROXY_CEPH_MEMSTORE_BYTES: String(memstoreBytes) },
  });
  if (up.status !== 0) throw new Error(`scripts/ceph/up.sh failed: ${up.stderr}`);
  const cluster = JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8'));
  const cli = await RbdCli.create({
    monitors: cluster.monHost,
    cephx: true,
    user: cluster.user,
    keyring: cluster.key,
  });
  try {
    for (const [index, imageMiB] of imageSizesMiB.entries()) {
      await benchFullSync(cluster, cli, imageMiB, ROW_IDS[index] ?? `ceph-full-${imageMiB}m`);
    }
  } finally {
    await cli.close();
    spawnSync('bash', [join(root, 'scripts/ceph/down.sh'), dir]);
  }
}

async function benchFullSync(
  cluster: { pool: string; conf: string; monHost: string; user: string; key: string },
  cli: RbdCli,
  imageMiB: number,
  rowId: string,
): Promise<void> {
  const image = `bench-${imageMiB}`;
  const spec = `${cluster.pool}/${image}`;
  await adminRbd(cluster, ['create', '--size', `${imageMiB}M`, spec]);
  try {
    await adminRbd(cluster, [
      'bench',
      '--io-type',
      'write',
      '--io-size',
      '4M',
      '--io-total',
      `${imageMiB}M`,
      '--io-pattern',
      'seq',
      spec,
    ]);
    await adminRbd(cluster, ['snap', 'create', '--no-progress', `${spec}@s1`]);
    const exported = join(work, 'export.raw');
    const target = join(work, 'target.raw');
    const viaExport: number[] = [];
    const viaReader: number[] = [];
    const exportCpu: number[] = [];
    const readerCpu: number[] = [];
    const removeTarget = async () => {
      for (const p of [
        target,
        `${target}.manifest`,
        `${target}.manifest.journal`,
        `${target}.checkpoint.json`,
      ])
        await rm(p, { force: true });
    };
    const measured = async (times: number[], cpu: number[], run: () => Promise<void>) => {
      const { seconds, cpuSeconds } = await measure(run);
      times.push(seconds);
      if (cpuSeconds !== undefined) cpu.push(cpuSeconds);
    };
    const anchor = async (): Promise<void> => {
      await rm(exported, { force: true });
      // The FileSink fsyncs the image before it reports done; the export is made durable the same way.
      await measured(viaExport, exportCpu, async () => {
        await adminRbd(cluster, ['export', '--no-progress', `${spec}@s1`, exported]);
        spawnSync('sync', [exported]);
      });
      await rm(exported, { force: true });
    };
    const project = async (): Promise<void> => {
      await removeTarget();
      await measured(viaReader, readerCpu, async () => {
        const reader = await openRbdReader({ cli, pool: cluster.pool, image, snapshot: 's1' });
        await transferDisk({ reader, sink: new FileSink(target) });
        await reader.close();
      });
      await removeTarget();
    };
    for (let r = 0; r < reps; r++) {
      if (r % 2 === 0) {
        await anchor();
        await project();
      } else {
        await project();
        await anchor();
      }
    }
    const e = median(viaExport);
    const t = median(viaReader);
    const ratio = e / t;
    console.log(`ceph full sync of a ${imageMiB} MiB image (memstore OSD, loopback)`);
    console.log(`  rbd export + sync      median ${e.toFixed(3)} s  ${(imageMiB / e).toFixed(0)} MiB/s`);
    console.log(`  reader + transferDisk  median ${t.toFixed(3)} s  ${(imageMiB / t).toFixed(0)} MiB/s`);
    recordRow({
      id: rowId,
      path: `OpenStack-Ceph full sync, ${imageMiB} MiB image`,
      project: 'openRbdReader + transferDisk -> FileSink, engine defaults (manifest and checkpoint on)',
      anchor: 'rbd export SNAP FILE + sync FILE',
      projectRuns: viaReader,
      anchorRuns: viaExport,
      projectCpu: readerCpu,
      anchorCpu: exportCpu,
      unit: 's',
      ratio,
      ratioMeaning: 'rbd export time / ours (higher is better)',
      required: '>= 0.9',
      aim: '>= 1.0',
      pass: ratio >= 0.9,
      note: `${imageMiB} MiB, memstore OSD on loopback, BENCH_REPS=${reps}, interleaved`,
    });
  } finally {
    await adminRbd(cluster, ['snap', 'purge', '--no-progress', spec]).catch(() => {});
    await adminRbd(cluster, ['rm', '--no-progress', spec]).catch(() => {});
  }
}

await mkdir(work, { recursive: true });
try {
  await benchParser();
  await benchCeph();
} finally {
  await rm(work, { recursive: true, force: true });
}
