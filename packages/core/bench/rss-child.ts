// One large copy in a fresh process, so its peak RSS is its own: `node --import tsx rss-child.ts <target> <bytes>`.
import { rm } from 'node:fs/promises';
import { FileSink, transferDisk } from '../src/index.js';
import { dense, PoolReader } from './sources.js';

const [target, size] = process.argv.slice(2);
if (target === undefined || size === undefined) throw new Error('usage: rss-child.ts <target> <bytes>');
const baselineKiB = process.resourceUsage().maxRSS;
const diskSize = Number(size);
const started = performance.now();
const result = await transferDisk({
  reader: new PoolReader(diskSize, dense(diskSize)),
  sink: new FileSink(target),
});
const seconds = (performance.now() - started) / 1000;
await rm(target, { force: true });
await rm(`${target}.manifest`, { force: true });
process.stdout.write(
  `${JSON.stringify({ baselineKiB, peakKiB: process.resourceUsage().maxRSS, seconds, bytes: result.bytesWritten })}\n`,
);
