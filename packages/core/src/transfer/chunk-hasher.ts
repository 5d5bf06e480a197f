import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import { blake3BindingPath, type ChunkHashAlgorithm, digestChunk } from './chunk-hash-algorithm.js';

// Runs inside the worker (eval), so it survives bundling into ESM and CJS alike. The worker inherits
// the process's flags, and with --input-type=module the script is an ES module, where there is no
// require: process.getBuiltinModule (Node 20.16+) works in both, and createRequire loads the BLAKE3
// binding from the path the parent resolved (an eval'd worker has no module of its own to resolve from).
const WORKER_SOURCE = `
const { parentPort, workerData } = process.getBuiltinModule('node:worker_threads');
let digestOf;
if (workerData.algorithm === 'blake3') {
  const { createRequire } = process.getBuiltinModule('node:module');
  const binding = createRequire(workerData.bindingPath)(workerData.bindingPath);
  digestOf = (view) => binding.blake3(view);
} else {
  const { createHash } = process.getBuiltinModule('node:crypto');
  digestOf = (view) => createHash('sha256').update(view).digest();
}
parentPort.on('message', (job) => {
  const digest = digestOf(new Uint8Array(job.buffer, job.offset, job.length));
  parentPort.postMessage({ id: job.id, digest: new Uint8Array(digest.buffer, digest.byteOffset, 32) });
});
`;

/**
 * Digests of chunks, with one {@link ChunkHashAlgorithm} (the manifest's).
 * Data on a SharedArrayBuffer is hashed by a worker thread without a copy,
 * so hashing runs on the second core while the event loop moves bytes;
 * anything else is hashed in place on the calling thread (a copy to hand it
 * over would cost about as much as the hash). The worker starts on first use
 * and stops with {@link ChunkHasher.close}.
 */
export class ChunkHasher {
  readonly algorithm: ChunkHashAlgorithm;
  readonly #workers: Array<Worker | undefined>;
  /** Hashes posted to each worker and not answered yet. */
  readonly #inFlight: number[];
  #turn = 0;
  #nextId = 0;
  readonly #pending = new Map<number, { resolve: (d: Uint8Array) => void; reject: (e: unknown) => void }>();

  /**
   * `workers`: threads that hash; default one per core, at most 2 (the event loop needs a core too).
   * `algorithm`: default SHA-256, what a manifest of format 1 holds.
   */
  constructor(options: { workers?: number; algorithm?: ChunkHashAlgorithm } = {}) {
    const count = Math.max(1, options.workers ?? Math.min(2, availableParallelism()));
    this.algorithm = options.algorithm ?? 'sha256';
    this.#workers = new Array(count).fill(undefined);
    this.#inFlight = new Array(count).fill(0);
  }

  /** The 32-byte digest of `data`. Data on a SharedArrayBuffer must not change until this settles. */
  hash(data: Uint8Array): Promise<Uint8Array> {
    if (!(data.buffer instanceof SharedArrayBuffer) || data.byteLength < 64 * 1024) {
      try {
        return Promise.resolve(digestChunk(this.algorithm, data));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const slot = this.#turn++ % this.#workers.length;
    let worker: Worker;
    try {
      worker = this.#start(slot);
    } catch (error) {
      return Promise.reject(error);
    }
    const id = this.#nextId++;
    // An idle worker must not keep the process alive; one with hashes in flight must.
    this.#inFlight[slot] = (this.#inFlight[slot] ?? 0) + 1;
    if (this.#inFlight[slot] === 1) worker.ref();
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.postMessage({ id, buffer: data.buffer, offset: data.byteOffset, length: data.byteLength });
    });
  }

  /** The 32-byte digest of `data`, on the calling thread. */
  hashHere(data: Uint8Array): Uint8Array {
    return digestChunk(this.algorithm, data);
  }

  #start(slot: number): Worker {
    const running = this.#workers[slot];
    if (running !== undefined) return running;
    const bindingPath = this.algorithm === 'blake3' ? blake3BindingPath() : undefined;
    if (this.algorithm === 'blake3' && bindingPath === undefined) {
      // digestChunk says why, typed.
      digestChunk('blake3', new Uint8Array(0));
      throw new SyncproxyError('the BLAKE3 binding does not load', { code: 'unsupported' });
    }
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { algorithm: this.algorithm, bindingPath },
    });
    worker.unref();
    this.#inFlight[slot] = 0;
    worker.on('message', (message: { id: number; digest: Uint8Array }) => {
      const waiter = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      this.#inFlight[slot] = Math.max(0, this.#inFlight[slot]! - 1);
      if (this.#inFlight[slot] === 0) worker.unref();
      waiter?.resolve(message.digest);
    });
    const failAll = (error: unknown): void => {
      // A worker's failure fails every hash in flight (the engine then fails its chunks, typed).
      for (const waiter of this.#pending.values()) waiter.reject(error);
      this.#pending.clear();
      this.#inFlight.fill(0);
      if (this.#workers[slot] === worker) this.#workers[slot] = undefined;
    };
    worker.on('error', failAll);
    worker.on('exit', (code) =>
      failAll(
        new SyncproxyError(`a hashing worker exited (code ${code})`, { code: 'internal', retryable: false }),
      ),
    );
    this.#workers[slot] = worker;
    return worker;
  }

  /** Stops the worker threads; a later {@link ChunkHasher.hash} starts them again. */
  async close(): Promise<void> {
    const running = this.#workers.filter((w): w is Worker => w !== undefined);
    this.#workers.fill(undefined);
    await Promise.all(running.map((w) => w.terminate()));
  }
}
