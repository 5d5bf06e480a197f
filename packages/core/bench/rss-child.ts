// One large copy in a fresh process, so its peak RSS is its own: `node --import tsx rss-child.ts <target> <bytes>`.
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { FileSink, transferDisk } from '../src/index.js';
import { dense, PoolReader } from './sources.js';

const [target, size] = process.argv.slice(2);
if (target === undefined || size === undefined) throw new Error('usage: rss-child.ts <target> <bytes>');
/**
 * Peak RSS of this process image. Linux keeps getrusage's maxrss across
 * execve, so a child forked from a large parent would report the parent's
 * peak; VmHWM belongs to the new address space alone.
 */
function peakKiB(): number {
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (match) return Number(match[1]);
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS;
}

const baselineKiB = peakKiB();
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
  `${JSON.stringify({ baselineKiB, peakKiB: peakKiB(), seconds, bytes: result.bytesWritten })}\n`,
);
