import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileCheckpointStore, FileSink, transferDisk } from '@syncproxy/core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { KILL_TEST_DISK_BYTES, KILL_TEST_GEOMETRY, killTestReader } from './fixtures/kill-geometry.js';
import { tempDir } from './fixtures/temp-dir.js';

const packageDir = fileURLToPath(new URL('../..', import.meta.url));
const childScript = fileURLToPath(new URL('./fixtures/kill-child.ts', import.meta.url));

let dir: { path: string; remove: () => Promise<void> };
let child: ChildProcess | undefined;
beforeAll(async () => {
  dir = await tempDir();
});
afterAll(async () => {
  if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null)
    process.kill(child.pid, 'SIGKILL');
  await dir.remove();
});

async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Starts the child and SIGKILLs it once its progress passes `fraction` of the disk. */
function runAndKill(target: string, readLog: string, fraction: number): Promise<{ bytesDoneSeen: number }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', childScript, target, readLog], {
      cwd: packageDir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    let bytesDoneSeen = 0;
    let stderr = '';
    let buffered = '';
    proc.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    proc.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        const event = JSON.parse(line) as { bytesDone?: number; done?: boolean };
        if (event.done) return;
        bytesDoneSeen = event.bytesDone ?? bytesDoneSeen;
        if (bytesDoneSeen >= fraction * KILL_TEST_DISK_BYTES && proc.signalCode === null)
          proc.kill('SIGKILL');
      }
    });
    proc.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve({ bytesDoneSeen });
      else reject(new Error(`child exited (code ${code}) before it was killed: ${stderr}`));
    });
  });
}

function parseLog(text: string): Array<[number, number]> {
  return text
    .trim()
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.split(' ').map(Number) as [number, number]);
}

it('a transfer SIGKILLed midway resumes from its checkpoint to a byte-identical image, re-reading at most the checkpoint interval plus the in-flight bound', async () => {
  const target = join(dir.path, 'disk.img');
  const firstLog = join(dir.path, 'first-reads.log');
  const { bytesDoneSeen } = await runAndKill(target, firstLog, 0.4);
  expect(bytesDoneSeen).toBeGreaterThanOrEqual(0.4 * KILL_TEST_DISK_BYTES);
  expect(bytesDoneSeen).toBeLessThan(KILL_TEST_DISK_BYTES);

  const checkpoint = await new FileCheckpointStore(`${target}.checkpoint.json`).load();
  expect(checkpoint).toBeDefined();
  expect(checkpoint!.bytesDone).toBeGreaterThan(0);

  const firstReads = new Set(parseLog(await readFile(firstLog, 'utf8')).map(([offset]) => offset));
  let reread = 0;
  const reader = killTestReader((offset, length) => {
    if (firstReads.has(offset)) reread += length;
  });
  const result = await transferDisk({ reader, sink: new FileSink(target), ...KILL_TEST_GEOMETRY });

  expect(result.resumed).toBe(true);
  expect(result.chunksSkipped).toBe(checkpoint!.chunksDone);
  expect(result.chunksSkipped + result.chunks).toBe(KILL_TEST_DISK_BYTES / KILL_TEST_GEOMETRY.chunkSizeBytes);
  expect(result.bytesRead).toBe(KILL_TEST_DISK_BYTES - checkpoint!.bytesDone);
  const bound =
    KILL_TEST_GEOMETRY.checkpointEvery.chunks * KILL_TEST_GEOMETRY.chunkSizeBytes +
    KILL_TEST_GEOMETRY.maxInFlightBytes;
  expect(reread).toBeLessThanOrEqual(bound);
  expect(await fileSha256(target)).toBe(killTestReader().sha256());
  await expect(new FileCheckpointStore(`${target}.checkpoint.json`).load()).resolves.toBeUndefined();
}, 180_000);
