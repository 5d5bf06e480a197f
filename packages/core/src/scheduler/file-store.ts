import { mkdir, open, readdir, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';
import type { SchedulerState, StateStore, StateUpdate } from '../contracts/scheduler.js';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import { toSyncproxyError } from '../errors/to-syncproxy-error.js';
import { acquireFileLock, isProcessAlive } from './file-lock.js';
import { emptyState, parseStateJson, stateToJson } from './state.js';

export interface FileStateStoreOptions {
  /** The JSON state file; created on the first change. `<path>.lock` and `<path>.tmp-*` live beside it. */
  path: string;
  /** How long a change waits for another process holding the lock. Default 10,000 ms. */
  lockTimeoutMs?: number;
}

interface Cached {
  state: SchedulerState;
  /** Identity of the file the state was read from or written to: inode, size, mtime. */
  stamp: string;
}

const ABSENT = 'absent';

interface PendingUpdate {
  mutate: (state: SchedulerState) => StateUpdate<unknown>;
  resolve: (result: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * A store in one JSON file, the default for a single control-plane host. Every
 * change runs under a lock file and replaces the file atomically (write a
 * temporary file, fsync, rename, fsync the directory), so a process killed at
 * any moment leaves either the old state or the new one, never a mix. Updates
 * that arrive while a write is under way are committed together in the next
 * one (group commit), so concurrent callers share the cost of fsync. Several
 * schedulers (in one process or several) may share the file: each change
 * re-reads it when another writer replaced it.
 */
export function createFileStateStore(options: FileStateStoreOptions): StateStore {
  if (typeof options?.path !== 'string' || options.path.length === 0) {
    throw new SyncproxyError('invalid file state store options: path: must be a non-empty string', {
      code: 'config',
      retryable: false,
    });
  }
  return new FileStateStore(resolve(options.path), options.lockTimeoutMs ?? 10_000);
}

class FileStateStore implements StateStore {
  readonly kind = 'file';
  private cached: Cached | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;
  private tempsCleaned = false;
  private pending: PendingUpdate[] = [];
  private batchQueued = false;

  constructor(
    private readonly path: string,
    private readonly lockTimeoutMs: number,
  ) {}

  read<T>(view: (state: Readonly<SchedulerState>) => T): Promise<T> {
    // Writers rename whole files into place, so reading needs no lock.
    return this.serial(async () => view(await this.load()));
  }

  update<T>(mutate: (state: SchedulerState) => StateUpdate<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ mutate, resolve: resolve as (value: unknown) => void, reject });
      if (this.batchQueued) return;
      this.batchQueued = true;
      this.serial(() => this.commitBatch()).catch((error: unknown) => {
        // Only a closed store gets here (commitBatch settles its own batch): refuse what is queued.
        this.batchQueued = false;
        for (const entry of this.pending.splice(0)) entry.reject(error);
      });
    });
  }

  /**
   * Group commit: every update queued while the previous write was under way
   * runs in order under one lock and lands in one write. Each caller still
   * learns its result only once that write is durable.
   */
  private async commitBatch(): Promise<void> {
    this.batchQueued = false;
    const batch = this.pending.splice(0);
    const failAll = (error: unknown): void => {
      for (const entry of batch) entry.reject(error);
    };
    try {
      await mkdir(dirname(this.path), { recursive: true });
    } catch (error) {
      failAll(toSyncproxyError(error, { operation: `create the directory of ${this.path}` }));
      return;
    }
    let release: () => Promise<void>;
    try {
      release = await acquireFileLock(`${this.path}.lock`, { timeoutMs: this.lockTimeoutMs });
    } catch (error) {
      failAll(error);
      return;
    }
    // Callers hear back only after the lock is gone, so whatever they do next finds the files settled.
    const settle: (() => void)[] = [];
    try {
      if (!this.tempsCleaned) await this.removeDeadTemps();
      const state = await this.load();
      const done: { entry: PendingUpdate; result: unknown }[] = [];
      let changed = false;
      for (const entry of batch) {
        try {
          const outcome = entry.mutate(state);
          changed ||= outcome.changed;
          done.push({ entry, result: outcome.result });
        } catch (error) {
          settle.push(() => entry.reject(error));
        }
      }
      let failure: unknown;
      if (changed) {
        try {
          await this.write(state);
        } catch (error) {
          // The cached state holds changes the file does not: forget it and read the file next time.
          this.cached = undefined;
          failure = toSyncproxyError(error, { operation: `write scheduler state ${this.path}` });
        }
      }
      for (const { entry, result } of done) {
        settle.push(failure === undefined ? () => entry.resolve(result) : () => entry.reject(failure));
      }
    } catch (error) {
      this.cached = undefined;
      settle.splice(0);
      for (const entry of batch) settle.push(() => entry.reject(error));
    } finally {
      await release().catch(() => {});
      for (const fn of settle) fn();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.tail.catch(() => {});
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(() => {
      if (this.closed) {
        throw new SyncproxyError(`file state store ${this.path} is closed`, {
          code: 'aborted',
          retryable: false,
        });
      }
      return fn();
    });
    this.tail = run.catch(() => {});
    return run;
  }

  private async load(): Promise<SchedulerState> {
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(this.path, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw toSyncproxyError(error, { operation: `read scheduler state ${this.path}` });
      }
      if (this.cached?.stamp !== ABSENT) this.cached = { state: emptyState(), stamp: ABSENT };
      return this.cached.state;
    }
    try {
      const stamp = stampOf(await handle.stat({ bigint: true }));
      if (this.cached?.stamp === stamp) return this.cached.state;
      const state = parseStateJson(await handle.readFile('utf8'), this.path);
      this.cached = { state, stamp };
      return state;
    } catch (error) {
      throw toSyncproxyError(error, { operation: `read scheduler state ${this.path}` });
    } finally {
      await handle.close();
    }
  }

  private async write(state: SchedulerState): Promise<void> {
    // rename keeps the inode and mtime, so the written file's stat is also its stamp once in place.
    const stamp = stampOf(await writeFileAtomic(this.path, stateToJson(state), { mode: 0o600 }));
    this.cached = { state, stamp };
  }

  /** Temporary files of writers that were killed before their rename. */
  private async removeDeadTemps(): Promise<void> {
    const prefix = `${basename(this.path)}.tmp-`;
    const dir = dirname(this.path);
    for (const name of await readdir(dir)) {
      if (!name.startsWith(prefix)) continue;
      const pid = Number.parseInt(name.slice(prefix.length), 10);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !isProcessAlive(pid)) {
        await rm(join(dir, name), { force: true });
      }
    }
    this.tempsCleaned = true;
  }
}

function stampOf(stat: { ino: bigint; size: bigint; mtimeNs: bigint }): string {
  return `${stat.ino}:${stat.size}:${stat.mtimeNs}`;
}
