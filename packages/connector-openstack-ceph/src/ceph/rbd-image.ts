import { abortError, type Extent, type ReadOptions, SyncproxyError } from '@syncproxy/core';
import { parseRbdDiffJson } from './diff-json.js';
import {
  type ExportDiffHeader,
  ExportDiffParser,
  type ExportDiffRecord,
  IterableByteQueue,
  parseExportDiff,
} from './export-diff.js';
import { preferExitError, type RbdCli, type RbdProcess } from './rbd-cli.js';
import { SocketByteQueue } from './socket-byte-queue.js';

/** `exact` is `rbd diff` (byte ranges); `whole-object` is the form's "rbd du" (whole RADOS objects, fast-diff). */
export type IncrementalMode = 'exact' | 'whole-object';

/** One image at one snapshot, optionally relative to an older snapshot of the same image. */
export interface RbdImageRef {
  pool: string;
  image: string;
  snapshot: string;
  /** The base snapshot for an incremental diff. */
  fromSnapshot?: string;
  mode?: IncrementalMode;
}

export interface RbdImageInfo {
  sizeBytes: number;
  objectSizeBytes: number;
  features: string[];
}

/** Pool, image and snapshot names as Cinder makes them; never an option (`-x`) nor a spec separator (`/`, `@`). */
const SPEC_PART = /^[A-Za-z0-9_.+][A-Za-z0-9_.+:-]{0,254}$/;

function spec(ref: RbdImageRef): string {
  for (const part of [ref.pool, ref.image, ref.snapshot, ref.fromSnapshot]) {
    if (part !== undefined && !SPEC_PART.test(part)) {
      throw new SyncproxyError(`invalid rbd image reference part ${JSON.stringify(part)}`, {
        code: 'config',
        retryable: false,
      });
    }
  }
  return `${ref.pool}/${ref.image}@${ref.snapshot}`;
}

function diffArgs(ref: RbdImageRef): string[] {
  const args: string[] = [];
  if (ref.fromSnapshot !== undefined) args.push('--from-snap', ref.fromSnapshot);
  if (ref.mode === 'whole-object') args.push('--whole-object');
  return args;
}

/** `rbd info --format json` of the snapshot: its size and object size. */
export async function rbdImageInfo(
  cli: RbdCli,
  ref: RbdImageRef,
  options: ReadOptions = {},
): Promise<RbdImageInfo> {
  const text = await cli.run(['info', '--format', 'json', spec(ref)], {
    signal: options.signal,
    what: `rbd info ${spec(ref)}`,
  });
  let json: { size?: unknown; object_size?: unknown; order?: unknown; features?: unknown };
  try {
    json = JSON.parse(text);
  } catch {
    throw new SyncproxyError(`rbd info ${spec(ref)} printed no JSON`, { code: 'protocol', retryable: false });
  }
  const objectSize =
    typeof json.object_size === 'number'
      ? json.object_size
      : typeof json.order === 'number'
        ? 2 ** json.order
        : NaN;
  if (!Number.isSafeInteger(json.size) || !Number.isSafeInteger(objectSize) || objectSize <= 0) {
    throw new SyncproxyError(`rbd info ${spec(ref)} lacks size/object_size`, {
      code: 'protocol',
      retryable: false,
    });
  }
  return {
    sizeBytes: json.size as number,
    objectSizeBytes: objectSize,
    features: Array.isArray(json.features)
      ? json.features.filter((f): f is string => typeof f === 'string')
      : [],
  };
}

/**
 * The extents of `rbd diff --format json` for the snapshot (from its base, when
 * given), streamed as they are parsed: `exists:"false"` becomes `zero`.
 * Checked to be sorted, non-overlapping and inside `diskSize`; the iteration
 * completes only when rbd exited with status 0.
 */
export async function* rbdDiffExtents(
  cli: RbdCli,
  ref: RbdImageRef,
  diskSize: number,
  options: ReadOptions = {},
): AsyncGenerator<Extent, void, undefined> {
  yield* diffExtentsOf(spawnRbdDiff(cli, ref, { signal: options.signal }), ref, diskSize);
}

/** Starts `rbd diff --format json` of the snapshot (from its base, when given), for {@link diffExtentsOf}. */
export function spawnRbdDiff(
  cli: RbdCli,
  ref: RbdImageRef,
  options: { signal?: AbortSignal } = {},
): RbdProcess {
  return cli.spawn(['diff', '--format', 'json', ...diffArgs(ref), spec(ref)], {
    signal: options.signal,
    what: `rbd diff ${spec(ref)}`,
  });
}

/**
 * The extents of a running `rbd diff` of `ref` ({@link spawnRbdDiff}), as {@link rbdDiffExtents}
 * gives them; `stopOn` stops it (one started ahead of its reader, under another signal).
 */
export async function* diffExtentsOf(
  proc: RbdProcess,
  ref: RbdImageRef,
  diskSize: number,
  stopOn?: AbortSignal,
): AsyncGenerator<Extent, void, undefined> {
  const onAbort = (): void => void proc.stop();
  if (stopOn?.aborted) {
    await proc.stop();
    throw abortError(stopOn, `rbd diff ${spec(ref)}`);
  }
  stopOn?.addEventListener('abort', onAbort, { once: true });
  let end = 0;
  try {
    for await (const entry of parseRbdDiffJson(proc.stdout)) {
      if (entry.length === 0) continue;
      if (entry.offset < end) {
        throw new SyncproxyError(
          `rbd diff ${spec(ref)}: extent at ${entry.offset} overlaps or precedes ${end}`,
          {
            code: 'protocol',
            retryable: false,
          },
        );
      }
      if (entry.offset + entry.length > diskSize) {
        throw new SyncproxyError(
          `rbd diff ${spec(ref)}: extent ${entry.offset}+${entry.length} ends beyond the disk size ${diskSize}`,
          { code: 'protocol', retryable: false },
        );
      }
      end = entry.offset + entry.length;
      yield { offset: entry.offset, length: entry.length, kind: entry.exists ? 'data' : 'zero' };
    }
    await proc.exited;
  } catch (error) {
    throw await stopAndExplain(proc, error);
  } finally {
    stopOn?.removeEventListener('abort', onAbort);
    await proc.stop();
  }
}

/** Stops `proc`, then the error to throw: rbd's own exit error when it failed (it says why), else `error`. */
async function stopAndExplain(proc: Pick<RbdProcess, 'stop' | 'exited'>, error: unknown): Promise<unknown> {
  await proc.stop();
  return preferExitError(
    await proc.exited.then(
      () => undefined,
      (e: unknown) => e,
    ),
    error,
  );
}

/** The records of `rbd export-diff` of the snapshot, ending only after rbd exited with status 0. */
export async function* rbdExportDiff(
  cli: RbdCli,
  ref: RbdImageRef,
  options: ReadOptions & { maxPieceBytes?: number } = {},
): AsyncGenerator<ExportDiffRecord, void, undefined> {
  const proc = cli.spawn(['export-diff', '--no-progress', ...diffArgs(ref), spec(ref), '-'], {
    signal: options.signal,
    what: `rbd export-diff ${spec(ref)}`,
  });
  try {
    for await (const record of parseExportDiff(proc.stdout, {
      maxPieceBytes: options.maxPieceBytes,
      signal: options.signal,
    })) {
      if (record.type === 'end') await proc.exited;
      yield record;
    }
  } catch (error) {
    throw await stopAndExplain(proc, error);
  } finally {
    await proc.stop();
  }
}

/**
 * `rbd export-diff` of the snapshot as a pull parser whose data lands in the
 * caller's buffers: rbd writes to a Unix socket read with net's `onread`
 * ({@link SocketByteQueue}; Node's pipe to a child would hand the bytes over in
 * 64 KiB chunks, each allocated and then copied). Where no socket can be made
 * it falls back to that pipe. `next()` returns `end` only after rbd exited with
 * status 0; any failure is rbd's own exit error when it has one.
 */
export class RbdExportDiffStream {
  readonly #parser: ExportDiffParser;
  readonly #proc: Pick<RbdProcess, 'stop' | 'exited'>;

  private constructor(parser: ExportDiffParser, proc: Pick<RbdProcess, 'stop' | 'exited'>) {
    this.#parser = parser;
    this.#proc = proc;
  }

  static async open(
    cli: RbdCli,
    ref: RbdImageRef,
    options: ReadOptions & { useSocket?: boolean } = {},
  ): Promise<RbdExportDiffStream> {
    const args = ['export-diff', '--no-progress', ...diffArgs(ref), spec(ref), '-'];
    const how = { signal: options.signal, what: `rbd export-diff ${spec(ref)}` };
    if (options.useSocket !== false) {
      const queue = new SocketByteQueue(options.signal);
      const proc = await cli.spawnToSocket(args, queue, how).catch((error: unknown) => {
        if (SyncproxyError.isInstance(error) && error.code === 'unsupported') return undefined;
        throw error;
      });
      if (proc) return new RbdExportDiffStream(new ExportDiffParser(queue), proc);
    }
    const piped = cli.spawn(args, how);
    return new RbdExportDiffStream(
      new ExportDiffParser(new IterableByteQueue(piped.stdout, options.signal)),
      piped,
    );
  }

  /** Data bytes of the current `write` record not taken yet, and the image offset of the first. */
  get dataLeft(): number {
    return this.#parser.dataLeft;
  }

  get dataOffset(): number {
    return this.#parser.dataOffset;
  }

  async next(): Promise<ExportDiffHeader> {
    const record = await this.#guard(() => this.#parser.next());
    if (record.type === 'end') await this.#guard(() => this.#proc.exited);
    return record;
  }

  readData(target: Uint8Array, at: number, length: number): Promise<void> {
    return this.#guard(() => this.#parser.readData(target, at, length));
  }

  skipData(length: number): Promise<void> {
    return this.#guard(() => this.#parser.skipData(length));
  }

  /** Stops rbd (when still running) and frees the stream; waits for a read in progress. */
  async close(): Promise<void> {
    await this.#proc.stop();
    await this.#parser.close();
  }

  async #guard<T>(step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (error) {
      const explained = await stopAndExplain(this.#proc, error);
      await this.#parser.close().catch(() => {});
      throw explained;
    }
  }
}
