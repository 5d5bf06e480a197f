import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  abortError,
  listenForAbort,
  SyncproxyError,
  type SyncproxyErrorJson,
  type SyncWarning,
} from '@syncproxy/core';
import type { NbdClientOptions } from './client.js';

/** A thread's client options: what structured clone carries (an AbortSignal does not). */
export type ReadThreadClientOptions = Omit<NbdClientOptions, 'signal'>;

/** What the calling thread sends a read thread. `client` numbers a reader's client on the pool. */
export type ReadThreadRequest =
  | { type: 'open'; client: number; options: ReadThreadClientOptions }
  | {
      type: 'read';
      client: number;
      /** Unique in the pool, so an abort names one read. */
      id: number;
      buffer: SharedArrayBuffer;
      byteOffset: number;
      length: number;
      offset: number;
      /** The caller can abort it: the thread then keeps an AbortController for it. */
      abortable: boolean;
    }
  | { type: 'abort'; id: number }
  | { type: 'close'; client: number };

/** What a read thread answers. */
export type ReadThreadReply =
  | {
      type: 'opened';
      client: number;
      sizeBytes: number;
      connections: number;
      warnings: readonly SyncWarning[];
    }
  | { type: 'failed'; client: number; error: SyncproxyErrorJson }
  | { type: 'done'; id: number; error?: SyncproxyErrorJson }
  | { type: 'closed'; client: number };

type Opened = Extract<ReadThreadReply, { type: 'opened' }>;

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
  /** The caller was already answered (it aborted): the thread's reply only frees its slot. */
  settled: boolean;
  stopListening?: (() => void) | undefined;
}

/** One worker thread of a pool: clients of any number of readers, one event loop receiving them. */
class ReadThread {
  readonly #worker: Worker;
  readonly #index: number;
  readonly #reads = new Map<number, Waiter>();
  readonly #opens = new Map<number, { resolve(o: Opened): void; reject(e: unknown): void }>();
  readonly #closes = new Map<number, () => void>();
  /** Clients open or opening here: while there are any, the thread keeps the process alive. */
  #clients = 0;
  #stopped: SyncproxyError | undefined;
  /** Set when the thread is told to stop: no new work goes to it, and what waits fails once it has exited. */
  #stopping: SyncproxyError | undefined;

  readonly #idleTimeoutMs: number;
  #idleTimer: NodeJS.Timeout | undefined;

  constructor(
    entry: WorkerEntry,
    index: number,
    idleTimeoutMs: number,
    onStopped: (thread: ReadThread) => void,
  ) {
    this.#index = index;
    this.#idleTimeoutMs = idleTimeoutMs;
    this.#worker = new Worker(entry.url, {
      ...(entry.execArgv ? { execArgv: entry.execArgv } : {}),
      ...(entry.env ? { env: entry.env } : {}),
    });
    this.#worker.unref();
    this.#worker.on('message', (reply: ReadThreadReply) => this.#answer(reply));
    const stopped = (why: string, cause?: unknown) =>
      new SyncproxyError(`NBD read thread ${index} stopped: ${why}`, {
        code: 'internal',
        // The reader carries on over its other threads, or its own client: a retry can succeed.
        retryable: true,
        cause,
      });
    // What waits on the thread fails on 'exit', once nothing can land in a caller's buffer any more.
    this.#worker.on('error', (error) => {
      this.#stopping ??= stopped(error.message, error);
    });
    this.#worker.on('exit', (code) => {
      this.#stop(this.#stopping ?? stopped(`it exited with code ${code}`));
      onStopped(this);
    });
  }

  get isAlive(): boolean {
    return this.#stopped === undefined && this.#stopping === undefined;
  }

  /** Reads in flight here, for every reader: a reader sends its next read to its least busy thread. */
  get load(): number {
    return this.#reads.size;
  }

  open(client: number, options: ReadThreadClientOptions): Promise<Opened> {
    const stopped = this.#stopped ?? this.#stopping;
    if (stopped) return Promise.reject(stopped);
    this.#hold(1);
    return new Promise<Opened>((resolve, reject) => {
      this.#opens.set(client, { resolve, reject });
      this.#worker.postMessage({ type: 'open', client, options } satisfies ReadThreadRequest);
    }).catch((error: unknown) => {
      this.#hold(-1);
      throw error;
    });
  }

  read(
    client: number,
    id: number,
    target: Uint8Array<SharedArrayBuffer>,
    offset: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const stopped = this.#stopped ?? this.#stopping;
    if (stopped) return Promise.reject(stopped);
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, settled: false };
      if (signal) {
        waiter.stopListening = listenForAbort(signal, () => {
          waiter.settled = true;
          reject(abortError(signal, 'NBD READ'));
          this.#worker.postMessage({ type: 'abort', id } satisfies ReadThreadRequest);
        });
      }
      this.#reads.set(id, waiter);
      this.#worker.postMessage({
        type: 'read',
        client,
        id,
        buffer: target.buffer,
        byteOffset: target.byteOffset,
        length: target.length,
        offset,
        abortable: signal !== undefined,
      } satisfies ReadThreadRequest);
    });
  }

  /** Closes a client (after its reads in flight: the thread's client sends DISC after them). */
  closeClient(client: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.#closes.set(client, resolve);
      this.#worker.postMessage({ type: 'close', client } satisfies ReadThreadRequest);
    });
  }

  /**
   * Stops the thread. Its reads in flight fail only once it has exited: until then a socket read
   * may still land in a caller's buffer, and a caller told "failed" may read into that buffer again.
   */
  terminate(why: string): Promise<void> {
    clearTimeout(this.#idleTimer);
    const error = new SyncproxyError(`NBD read thread ${this.#index} stopped: ${why}`, {
      code: 'internal',
      retryable: true,
    });
    this.#stopping ??= error;
    return this.#worker.terminate().then(() => this.#stop(error));
  }

  #answer(reply: ReadThreadReply): void {
    switch (reply.type) {
      case 'done': {
        const waiter = this.#reads.get(reply.id);
        if (waiter === undefined) return;
        this.#reads.delete(reply.id);
        waiter.stopListening?.();
        if (waiter.settled) return;
        if (reply.error) waiter.reject(SyncproxyError.fromJSON(reply.error));
        else waiter.resolve();
        return;
      }
      case 'opened':
      case 'failed': {
        const open = this.#opens.get(reply.client);
        this.#opens.delete(reply.client);
        if (reply.type === 'opened') open?.resolve(reply);
        else open?.reject(SyncproxyError.fromJSON(reply.error));
        return;
      }
      case 'closed': {
        const closed = this.#closes.get(reply.client);
        this.#closes.delete(reply.client);
        this.#hold(-1);
        closed?.();
        return;
      }
    }
  }

  /** Counts clients; the thread stops after idleTimeoutMs without any (an unref'd timer). */
  #hold(delta: number): void {
    this.#clients += delta;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    if (this.#clients > 0) {
      this.#worker.ref();
      return;
    }
    this.#worker.unref();
    if (this.#stopped) return;
    this.#idleTimer = setTimeout(() => {
      if (this.#clients === 0) void this.terminate(`idle for ${this.#idleTimeoutMs} ms`);
    }, this.#idleTimeoutMs);
    this.#idleTimer.unref();
  }

  /** Fails everything waiting on the thread (it stopped) and takes it out of use. */
  #stop(error: SyncproxyError): void {
    if (this.#stopped) return;
    this.#stopped = error;
    for (const waiter of this.#reads.values()) {
      waiter.stopListening?.();
      if (!waiter.settled) waiter.reject(error);
    }
    for (const open of this.#opens.values()) open.reject(error);
    for (const closed of this.#closes.values()) closed();
    this.#reads.clear();
    this.#opens.clear();
    this.#closes.clear();
  }
}

export interface OpenReadClientsOptions {
  /** Connections in all, shared out among the threads (one thread each at most). */
  connections: number;
  client: ReadThreadClientOptions;
  /** The export's size as the reader's own client saw it: a thread that sees another is refused. */
  sizeBytes: number;
  signal?: AbortSignal | undefined;
}

/**
 * Opens a reader's clients on a pool's threads. The lease is undefined when none connected (the
 * reader then reads on its own client); what fell short is a warning.
 */
export let openReadClients: (
  pool: NbdReadThreadPool,
  options: OpenReadClientsOptions,
) => Promise<{ lease: ReadLease | undefined; warnings: SyncWarning[] }>;

export interface NbdReadThreadPoolOptions {
  /** Worker threads: default one a core, at most 2 (the engine's event loop and hashing need the rest). */
  threads?: number;
  /**
   * A thread with no reader open on it for this long stops (default 5000): long enough for the
   * next disk of a host sync to find it warm, short enough that an idle process holds nothing.
   */
  idleTimeoutMs?: number;
}

/**
 * Worker threads that receive NBD reads, shared by the readers that use the pool: each reader
 * has a client of its own on each thread, with its share of the connections, and its reads
 * land straight in its SharedArrayBuffers (the engine's chunk buffers): one message each way,
 * no copy.
 *
 * Why threads: one event loop receiving every connection was the bottleneck against nbdkit on
 * a 2-core machine. The server's senders filled the socket buffers and blocked, their data left
 * the cache, and every reply cost a wakeup across cores: nbdkit spent 2.2 to 2.7 times the CPU
 * serving us than serving nbdcopy, which receives on a thread per connection.
 *
 * Why a pool that outlives its readers: a new thread's JavaScript starts cold, and a reader's
 * first seconds then cost more CPU than the thread saves (4 GiB, 2 cores: 0.58 of nbdcopy with a
 * new thread per reader, 0.79 on the calling thread). Threads start on first use, keep the process
 * alive only while a reader is open on them, and stop after `idleTimeoutMs` without one.
 * {@link NbdReadThreadPool.shared} is the pool readers use unless told otherwise; a connector
 * session that opens readers keeps a pool of its own and closes it with the session.
 */
export class NbdReadThreadPool {
  static #shared: NbdReadThreadPool | undefined;
  /** Threads of this pool. */
  readonly threads: number;
  /** How long a thread with no reader stays. */
  readonly idleTimeoutMs: number;
  readonly #slots: Array<ReadThread | undefined>;
  #nextClient = 0;
  #nextRead = 0;

  constructor(options: NbdReadThreadPoolOptions = {}) {
    const threads = options.threads ?? Math.min(2, availableParallelism());
    if (!Number.isSafeInteger(threads) || threads < 1 || threads > 64) {
      throw new SyncproxyError(
        `NBD read thread pool option threads must be an integer from 1 to 64 (got ${options.threads})`,
        { code: 'config' },
      );
    }
    const idleTimeoutMs = options.idleTimeoutMs ?? 5000;
    if (!Number.isSafeInteger(idleTimeoutMs) || idleTimeoutMs < 0) {
      throw new SyncproxyError(
        `NBD read thread pool option idleTimeoutMs must be an integer of 0 or more (got ${options.idleTimeoutMs})`,
        { code: 'config' },
      );
    }
    this.threads = threads;
    this.idleTimeoutMs = idleTimeoutMs;
    this.#slots = new Array(threads).fill(undefined);
  }

  /** Threads running now (they start with the first reader and stop when idle or closed). */
  get running(): number {
    return this.#slots.filter((t) => t?.isAlive).length;
  }

  /** The pool every reader uses by default, made on first use. */
  static get shared(): NbdReadThreadPool {
    NbdReadThreadPool.#shared ??= new NbdReadThreadPool();
    return NbdReadThreadPool.#shared;
  }

  /**
   * Stops the threads now: reads in flight on them fail (retryable; a reader then reads on its own
   * client). A later reader starts them again.
   */
  async close(): Promise<void> {
    const running = this.#slots.filter((t): t is ReadThread => t !== undefined);
    this.#slots.fill(undefined);
    await Promise.all(running.map((t) => t.terminate('its pool was closed')));
  }

  static {
    openReadClients = (pool, options) => pool.#open(options);
  }

  async #open(
    options: OpenReadClientsOptions,
  ): Promise<{ lease: ReadLease | undefined; warnings: SyncWarning[] }> {
    const count = Math.min(this.threads, options.connections);
    const entry = workerEntry();
    const threads = Array.from({ length: count }, (_, i) => {
      let thread = this.#slots[i];
      if (thread === undefined || !thread.isAlive) {
        const made: ReadThread = new ReadThread(entry, i, this.idleTimeoutMs, (stopped) => {
          if (this.#slots[i] === stopped) this.#slots[i] = undefined;
        });
        this.#slots[i] = made;
        thread = made;
      }
      return thread;
    });
    const opened = await Promise.allSettled(
      threads.map(async (thread, i) => {
        const connections =
          Math.floor(options.connections / count) + (i < options.connections % count ? 1 : 0);
        const client = this.#nextClient++;
        const reply = await thread.open(client, { ...options.client, connections });
        const entry = { thread, client };
        if (reply.sizeBytes !== options.sizeBytes) {
          await thread.closeClient(client);
          throw new SyncproxyError(
            `NBD read thread ${i} saw an export of ${reply.sizeBytes} bytes, the reader ${options.sizeBytes}`,
            { code: 'conflict', retryable: false },
          );
        }
        return { entry, warnings: reply.warnings };
      }),
    );
    const entries = opened.flatMap((r) => (r.status === 'fulfilled' ? [r.value.entry] : []));
    const lease = entries.length > 0 ? new ReadLease(entries, () => this.#nextRead++) : undefined;
    if (options.signal?.aborted) {
      await lease?.close();
      throw abortError(options.signal, 'NBD read threads open');
    }
    const warnings = opened.flatMap((r) => (r.status === 'fulfilled' ? r.value.warnings : []));
    const failed = opened.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length > 0) {
      const reason = (failed[0]!.reason as Error)?.message ?? String(failed[0]!.reason);
      warnings.push({
        code: 'nbd-fewer-read-threads',
        message: `${failed.length} of ${count} NBD read threads did not connect (${reason}); reading on ${entries.length > 0 ? `${entries.length}` : 'the calling thread'}`,
      });
    }
    return { lease, warnings };
  }
}

/** One reader's clients on a pool's threads. */
export class ReadLease {
  readonly #entries: ReadonlyArray<{ thread: ReadThread; client: number }>;
  readonly #nextRead: () => number;

  constructor(entries: ReadonlyArray<{ thread: ReadThread; client: number }>, nextRead: () => number) {
    this.#entries = entries;
    this.#nextRead = nextRead;
  }

  /** Threads this reader reads on. */
  get threads(): number {
    return this.#entries.length;
  }

  /**
   * Reads into `target` on the least busy thread, or returns undefined when none is alive (the
   * caller reads on its own). Aborting rejects at once; the bytes of an aborted read may still
   * land in `target` until the thread answers, as with a read on the calling thread.
   */
  readInto(
    target: Uint8Array<SharedArrayBuffer>,
    offset: number,
    signal: AbortSignal | undefined,
  ): Promise<void> | undefined {
    let best: { thread: ReadThread; client: number } | undefined;
    for (const e of this.#entries) {
      if (e.thread.isAlive && (best === undefined || e.thread.load < best.thread.load)) best = e;
    }
    if (best === undefined) return undefined;
    if (signal?.aborted) return Promise.reject(abortError(signal, 'NBD READ'));
    return best.thread.read(best.client, this.#nextRead(), target, offset, signal);
  }

  /** Closes this reader's clients (each after its reads in flight). */
  async close(): Promise<void> {
    await Promise.all(this.#entries.map((e) => e.thread.closeClient(e.client)));
  }
}

interface WorkerEntry {
  url: URL;
  execArgv?: string[];
  env?: NodeJS.ProcessEnv;
}

/**
 * The worker's file beside this one: dist/read-worker.js in the package, with no flags. From the
 * TypeScript sources (this repository's tests) tsx loads read-worker.ts, and the
 * package's tsconfig maps `@syncproxy/*` to the sources as vitest does.
 */
function workerEntry(): WorkerEntry {
  const here = import.meta.url;
  // The process's own flags are not the thread's business, and some refuse a file entry
  // (`--input-type` of a `node -e` script): the built worker needs none.
  if (!here.endsWith('.ts')) return { url: new URL('./read-worker.js', here), execArgv: [] };
  const tsx = createRequire(here).resolve('tsx');
  return {
    url: new URL('./read-worker.ts', here),
    execArgv: ['--import', pathToFileURL(tsx).href],
    env: { ...process.env, TSX_TSCONFIG_PATH: fileURLToPath(new URL('../tsconfig.json', here)) },
  };
}
