import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { chooseChunkHashAlgorithm, digestChunk } from '../../src/transfer/chunk-hash-algorithm.js';
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

  it('an idle hasher never closed does not keep the process alive, and one with a hash in flight does', () => {
    const module = fileURLToPath(new URL('../../src/transfer/chunk-hasher.ts', import.meta.url));
    const script = `
      const { ChunkHasher } = await import(${JSON.stringify(module)});
      const hasher = new ChunkHasher({ workers: 1 });
      const data = new Uint8Array(new SharedArrayBuffer(1 << 20)).fill(1);
      await hasher.hash(data);
      // Not awaited: the process must still wait for this answer, then exit.
      hasher.hash(data).then((d) => console.log('late', d.length));
    `;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 20_000,
      cwd: fileURLToPath(new URL('..', import.meta.url)),
    });
    expect(child.signal).toBeNull();
    expect(child.status).toBe(0);
    expect(child.stdout.trim()).toBe('late 32');
  });

  it('hashes BLAKE3 on its workers (the native binding loaded there) exactly as on the calling thread', async () => {
    const hasher = new ChunkHasher({ algorithm: 'blake3' });
    const shared = new Uint8Array(new SharedArrayBuffer(4 << 20));
    for (let i = 0; i < shared.length; i++) shared[i] = (i * 2654435761) >>> 24;
    const views = [shared, shared.subarray(5, 3 << 20)];
    const digests = await Promise.all(views.map((v) => hasher.hash(v)));
    expect(digests).toEqual(views.map((v) => digestChunk('blake3', v.slice())));
    expect(hasher.hashHere(shared)).toEqual(digests[0]);
    expect(digests[0]).not.toEqual(new Uint8Array(createHash('sha256').update(shared).digest()));
    await hasher.close();
  });
});

describe('chooseChunkHashAlgorithm', () => {
  it('chooses BLAKE3 where the binding loads', () => {
    expect(chooseChunkHashAlgorithm()).toEqual({ algorithm: 'blake3' });
  });

  it('chooses BLAKE3 in a process that has just removed a FIFO (node#51142: require then stops following symlinks)', () => {
    // fs.rm lstat()s the FIFO, and Node's realpathSync reads that stale result: a package reached
    // through a symlink (pnpm's layout) is then not resolved to its real place, from where its
    // native binding would be found. The rbd reader once removed its FIFO like this before each stream.
    const module = fileURLToPath(new URL('../../src/transfer/chunk-hash-algorithm.ts', import.meta.url));
    const script = `
      const { execFileSync } = await import('node:child_process');
      const { mkdtempSync, rmSync } = await import('node:fs');
      const { rm } = await import('node:fs/promises');
      const { tmpdir } = await import('node:os');
      const { join } = await import('node:path');
      const dir = mkdtempSync(join(tmpdir(), 'syncproxy-fifo-'));
      try {
        const { chooseChunkHashAlgorithm } = await import(${JSON.stringify(module)});
        execFileSync('mkfifo', [join(dir, 'fifo')]);
        await rm(join(dir, 'fifo'), { force: true });
        console.log(JSON.stringify(chooseChunkHashAlgorithm()));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    `;
    // Without the NODE_PATH that package-manager scripts set, as an application runs.
    const { NODE_PATH: _, ...env } = process.env;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 20_000,
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env,
    });
    expect(child.stderr).toBe('');
    expect(JSON.parse(child.stdout)).toEqual({ algorithm: 'blake3' });
  });

  it('falls back to SHA-256 with a hash-fallback warning when the binding does not load or hashes wrong', () => {
    const missing = chooseChunkHashAlgorithm(() => {
      throw new Error("Cannot find module '@napi-rs/blake-hash-linux-x64-gnu'");
    });
    expect(missing.algorithm).toBe('sha256');
    expect(missing.warning?.code).toBe('hash-fallback');
    expect(missing.warning?.message).toMatch(
      /Cannot find module '@napi-rs\/blake-hash-linux-x64-gnu'.*SHA-256/,
    );
    const wrong = chooseChunkHashAlgorithm(() => ({
      path: '/nowhere',
      binding: {
        blake3: (input: Uint8Array) => new Uint8Array(createHash('sha256').update(input).digest()),
        Blake3Hasher: class {
          update() {}
          digestBuffer() {
            return new Uint8Array(32);
          }
        },
      },
    }));
    expect(wrong).toMatchObject({ algorithm: 'sha256', warning: { code: 'hash-fallback' } });
    // The real binding is still the one used afterwards.
    expect(chooseChunkHashAlgorithm()).toEqual({ algorithm: 'blake3' });
  });
});
