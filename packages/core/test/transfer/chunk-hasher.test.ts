import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ChunkHasher } from '../../src/transfer/chunk-hasher.js';

const sha = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

describe('ChunkHasher', () => {
  it('hashes views of shared buffers on its worker exactly as createHash does, many at once', async () => {
    const hasher = new ChunkHasher();
    const shared = new Uint8Array(new SharedArrayBuffer(8 << 20));
    for (let i = 0; i < shared.length; i++) shared[i] = (i * 2654435761) >>> 24;
    const views = [shared, shared.subarray(1, 4 << 20), shared.subarray(3 << 20, (3 << 20) + 100_003)];
    const digests = await Promise.all(views.map((v) => hasher.hash(v)));
    expect(digests.map((d) => Buffer.from(d).toString('hex'))).toEqual(views.map(sha));
    await hasher.close();
  });

  it('hashes ordinary buffers in place, and works again after close', async () => {
    const hasher = new ChunkHasher();
    const plain = new Uint8Array(1 << 20).fill(7);
    expect(Buffer.from(await hasher.hash(plain)).toString('hex')).toBe(sha(plain));
    await hasher.close();
    const shared = new Uint8Array(new SharedArrayBuffer(1 << 20)).fill(9);
    expect(Buffer.from(await hasher.hash(shared)).toString('hex')).toBe(sha(shared));
    await hasher.close();
  });
});
