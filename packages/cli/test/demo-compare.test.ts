import { mkdtemp, open, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AwsMockPlatform, createAwsMockPlatform } from '@syncproxy/connector-aws/mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareImage } from '../src/commands/demo.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const DATA_AT = 300 * MiB;
const data = new Uint8Array(2 * MiB).map((_, i) => (i * 13) % 251 || 7);

let dir: string;
let platform: AwsMockPlatform;
let diskId: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'syncproxy-demo-compare-'));
  platform = await createAwsMockPlatform({ region: 'ap-southeast-1' });
  const host = await platform.createHost({ name: 'compare', disks: [{ sizeBytes: GiB }] });
  diskId = host.disks[0]!.id;
  await platform.writeDisk(diskId, DATA_AT, data);
});
afterAll(async () => {
  await platform.close();
  await rm(dir, { recursive: true, force: true });
});

/** A sparse image of the volume: its one written range, holes elsewhere. */
async function image(name: string, poke?: { offset: number; value: number }): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, new Uint8Array(0));
  await truncate(path, GiB);
  const handle = await open(path, 'r+');
  try {
    await handle.write(data, 0, data.length, DATA_AT);
    if (poke) await handle.write(new Uint8Array([poke.value]), 0, 1, poke.offset);
  } finally {
    await handle.close();
  }
  return path;
}

describe('the demo compares each image with its volume', () => {
  const touched: Array<[number, number]> = [[DATA_AT, DATA_AT + data.length]];

  it('passes an exact image, every byte compared', async () => {
    expect(await compareImage(await image('exact.raw'), platform, diskId, GiB, touched)).toEqual({
      bytesCompared: GiB,
      firstMismatchOffset: -1,
    });
  });

  it('finds a byte changed where the volume holds data', async () => {
    const offset = DATA_AT + MiB + 77;
    const path = await image('data.raw', { offset, value: data[MiB + 77]! ^ 0xff });
    expect((await compareImage(path, platform, diskId, GiB, touched)).firstMismatchOffset).toBe(offset);
  });

  it('finds a non-zero byte in a hole, far from anything the demo wrote', async () => {
    const offset = 900 * MiB + 5;
    const path = await image('hole.raw', { offset, value: 1 });
    expect((await compareImage(path, platform, diskId, GiB, touched)).firstMismatchOffset).toBe(offset);
  });

  it('fails a short image', async () => {
    const path = await image('short.raw');
    await truncate(path, GiB - 4096);
    expect((await compareImage(path, platform, diskId, GiB, touched)).firstMismatchOffset).toBe(GiB - 4096);
  });
});
