// Row `hash-blake3`: BLAKE3 (the @napi-rs/blake-hash binding) against Node's SHA-256 on 4 MiB chunks,
// on one thread and through ChunkHasher's worker hand-off (chunks on a SharedArrayBuffer, as the engine
// hands them over). Runs interleave (SHA-256, BLAKE3, SHA-256, ...); each figure is the median of
// BENCH_REPS. Size: BENCH_HASH_MIB (1024) hashed per run, from a 64 MiB pool so the data is not in cache.
import { randomFillSync } from 'node:crypto';
import { median, recordRow } from '../../../scripts/bench/record.mjs';
import { type ChunkHashAlgorithm, digestChunk } from '../src/transfer/chunk-hash-algorithm.js';
import { ChunkHasher } from '../src/transfer/chunk-hasher.js';

const MiB = 1024 ** 2;
const CHUNK_BYTES = 4 * MiB;
const POOL_CHUNKS = 16;

function pool(shared: boolean): Uint8Array[] {
  return Array.from({ length: POOL_CHUNKS }, () => {
    const chunk = new Uint8Array(shared ? new SharedArrayBuffer(CHUNK_BYTES) : new ArrayBuffer(CHUNK_BYTES));
    return randomFillSync(chunk);
  });
}

/** MB/s of `algorithm` on one thread. */
function oneThread(algorithm: ChunkHashAlgorithm, chunks: Uint8Array[], totalBytes: number): number {
  const count = totalBytes / CHUNK_BYTES;
  const started = performance.now();
  for (let i = 0; i < count; i++) digestChunk(algorithm, chunks[i % chunks.length]!);
  return totalBytes / 1e6 / ((performance.now() - started) / 1000);
}

/** MB/s of `algorithm` through the worker hand-off, 4 chunks in flight (the engine's default budget holds 16). */
async function handOff(hasher: ChunkHasher, chunks: Uint8Array[], totalBytes: number): Promise<number> {
  const count = totalBytes / CHUNK_BYTES;
  const started = performance.now();
  const inFlight = new Set<Promise<unknown>>();
  for (let i = 0; i < count; i++) {
    const p: Promise<unknown> = hasher.hash(chunks[i % chunks.length]!).then(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= 4) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  return totalBytes / 1e6 / ((performance.now() - started) / 1000);
}

export async function benchHash(reps: number): Promise<void> {
  const totalBytes = Math.max(1, Math.round(Number(process.env.BENCH_HASH_MIB ?? 1024) / 4)) * CHUNK_BYTES;
  const plain = pool(false);
  const shared = pool(true);
  const sha = new ChunkHasher({ algorithm: 'sha256' });
  const blake = new ChunkHasher({ algorithm: 'blake3' });
  const runs = {
    sha: [] as number[],
    blake: [] as number[],
    shaHandOff: [] as number[],
    blakeHandOff: [] as number[],
  };
  try {
    // Warm-up: workers started, code compiled.
    oneThread('sha256', plain, 16 * MiB);
    oneThread('blake3', plain, 16 * MiB);
    await handOff(sha, shared, 16 * MiB);
    await handOff(blake, shared, 16 * MiB);
    for (let rep = 0; rep < reps; rep++) {
      runs.sha.push(oneThread('sha256', plain, totalBytes));
      runs.blake.push(oneThread('blake3', plain, totalBytes));
      runs.shaHandOff.push(await handOff(sha, shared, totalBytes));
      runs.blakeHandOff.push(await handOff(blake, shared, totalBytes));
    }
  } finally {
    await sha.close();
    await blake.close();
  }
  const ratio = median(runs.blake) / median(runs.sha);
  const handOffRatio = median(runs.blakeHandOff) / median(runs.shaHandOff);
  const fmt = (values: number[]) => `${median(values).toFixed(0)} MB/s`;
  recordRow({
    id: 'hash-blake3',
    path: 'chunk hash, 4 MiB chunks, one thread',
    project: 'BLAKE3 (@napi-rs/blake-hash)',
    anchor: 'SHA-256 (node:crypto, SHA-NI)',
    projectRuns: runs.blake,
    anchorRuns: runs.sha,
    unit: 'MB/s',
    ratio,
    ratioMeaning: 'BLAKE3 MB/s / SHA-256 MB/s, one thread (higher is better)',
    required: '>= 1.5',
    aim: '>= 2',
    pass: ratio >= 1.5,
    note: `${totalBytes / MiB} MiB per run; one thread: BLAKE3 ${fmt(runs.blake)}, SHA-256 ${fmt(runs.sha)}; worker hand-off (2 workers, 4 in flight): BLAKE3 ${fmt(runs.blakeHandOff)}, SHA-256 ${fmt(runs.shaHandOff)}, ratio ${handOffRatio.toFixed(2)}`,
  });
}
