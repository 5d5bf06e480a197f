import { setMaxListeners } from 'node:events';
import pLimit from 'p-limit';
import { raceAbort } from '../abortable.js';
import { type Clock, systemClock } from '../clock.js';
import type { Logger } from '../contracts/logger.js';
import type { ChangedBlockReader, Extent, SyncWarning } from '../contracts/reader.js';
import type { BlockSink } from '../contracts/sink.js';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import { abortError, toSyncproxyError } from '../errors/to-syncproxy-error.js';
import { type RetryContext, type RetryOptions, resolveRetryPolicy, withRetry } from '../retry.js';
import { AdaptiveConcurrency } from './adaptive-concurrency.js';
import {
  type CheckpointStore,
  ChunkLedger,
  FileCheckpointStore,
  type TransferCheckpoint,
} from './checkpoint.js';
import { ChunkBufferPool } from './chunk-buffers.js';
import {
  type ChunkHashAlgorithm,
  canDigest,
  chooseChunkHashAlgorithm,
  createChunkDigest,
} from './chunk-hash-algorithm.js';
import { ChunkHasher } from './chunk-hasher.js';
import type { ChunkIntentLog } from './chunk-intents.js';
import { type ChunkJob, type ChunkPiece, planChunks } from './chunk-plan.js';
import { DEFAULT_CHUNK_SIZE_BYTES } from './hash-diff-reader.js';
import { InFlightBudget } from './in-flight-budget.js';
import {
  DiskManifest,
  entryBytes,
  entryMatches,
  FileManifestStore,
  type ManifestStore,
  UNKNOWN_ENTRY,
} from './manifest.js';
import { ProgressMeter, type TransferProgress } from './progress.js';
import type { TokenBucket } from './token-bucket.js';
import { isAllZero, ZERO_BLOCK, zeroFill } from './zero-detection.js';

export interface TransferOptions {
  reader: ChangedBlockReader;
  /** Opened by the engine with the disk size; flushed, and closed unless `closeSink` is false. */
  sink: BlockSink;
  /**
   * The grid of work, hashes and checkpoints; a multiple of the reader's
   * granularity. Default: the reader's own `chunkSizeBytes` when it has one
   * (the hash-diff reader: the new manifest keeps the previous grid), else
   * 4 MiB rounded up to the granularity. Keep it the same between the
   * transfers of one target, or the manifest starts over.
   */
  chunkSizeBytes?: number;
  /**
   * Reads in flight. Default: adaptive (`AdaptiveConcurrency`, docs/transfer.md): from 8, grown while
   * throughput grows and cut when the platform's throttling rises with load, within the memory
   * budget (at most 4 reads per chunk `maxInFlightBytes` holds) and within the reader's
   * `hints.readBytesInFlight` when it declares one. A number fixes it.
   */
  concurrency?: number;
  /** Bytes of chunk buffers held at once, reads and writes together (default 64 MiB). */
  maxInFlightBytes?: number;
  /**
   * Where progress is kept for a resume. Default: `<statePath>.checkpoint.json`
   * beside a {@link FileSink}'s image; none for other sinks. `false`: none.
   */
  checkpoint?: CheckpointStore | false;
  /**
   * When a checkpoint is saved: after this many chunks or this much time, whichever first
   * (256 chunks, 10 s). Each save flushes the sink, which costs throughput on local disks;
   * a crash makes the next call read again at most `chunks` chunks plus `maxInFlightBytes`.
   */
  checkpointEvery?: { chunks?: number; ms?: number };
  /** Where the manifest is kept. Default: `<statePath>.manifest` beside a FileSink's image. `false`: none, and then chunks are hashed only for `verify`. */
  manifest?: ManifestStore | false;
  /** Re-read every chunk this run wrote from the sink and compare with the hashes of the source bytes. */
  verify?: boolean;
  retry?: RetryOptions;
  /** A bandwidth limit on bytes read from the source; share one bucket between the transfers of a proxy. */
  bandwidth?: TokenBucket;
  onProgress?: (progress: TransferProgress) => void;
  /**
   * With `verify`: the bytes re-read from the sink so far and in all, once with 0
   * as the verification starts (it follows the transfer) and after each chunk.
   */
  onVerifyProgress?: (bytesDone: number, bytesTotal: number) => void;
  signal?: AbortSignal;
  /**
   * Names this transfer (e.g. the snapshot id). A checkpoint saved under another
   * id, or under another disk or chunk size, is not resumed.
   */
  transferId?: string;
  /**
   * The reader's extents describe the whole disk (a full sync): ranges no
   * extent names read as zeroes and are zeroed on the target too, so a target
   * that holds an older image or any other bytes ends exact. false: ranges no
   * extent names are left as they are (an incremental). Default: what the
   * reader declares in `hints.incremental` (false there means full). With
   * neither, the transfer is refused with a `config` error naming `full`:
   * either guess could end with a wrong image. See docs/transfer.md, "Target
   * safety".
   */
  full?: boolean;
  /** Data extents of one chunk at most this many bytes apart are read as one (default 0). */
  coalesceGapBytes?: number;
  /**
   * List the extents once before transferring, to know totals for progress
   * and ETA (default true, except for readers whose listing reads the disk).
   * Up to 16384 extents listed so are kept and planned from, so the reader
   * lists them once, not twice.
   */
  prescan?: boolean;
  /**
   * For chunks the extents cover only in part: read the target's bytes around the pieces before
   * writing, prove them against the manifest, and record the digest of the chunk they make with the
   * pieces (default true when the sink can read). A target that differs from an exact entry there
   * rejects with `integrity` ({@link TARGET_DIFFERS_FROM_MANIFEST}); bytes nothing proves leave the
   * entry `unknown` (warning `manifest-unproven`). False: such chunks' entries become `unknown`.
   */
  manifestReadBack?: boolean;
  /** Close the sink when done or failed (default true). */
  closeSink?: boolean;
  logger?: Logger;
  /** Time source for backoff, bandwidth, progress and checkpoint intervals (tests). */
  clock?: Clock;
  /** Uniform [0, 1) source for backoff jitter (tests). */
  random?: () => number;
}

/**
 * `details.reason` of the `integrity` error a transfer rejects with when a chunk it writes in part
 * does not match the target's manifest around its changes: the target is not the base the changes
 * apply to, and only a full transfer makes it exact. Nothing of that chunk was written.
 */
export const TARGET_DIFFERS_FROM_MANIFEST = 'target-differs-from-manifest';

export interface TransferResult {
  /** Bytes read from the source this run. */
  bytesRead: number;
  /**
   * Bytes of the disk written to the sink as data by this transfer, each once: a resumed
   * transfer counts what its checkpoint names as done and what this run wrote, and a chunk an
   * earlier run wrote but no checkpoint named (re-sent after a crash) only once.
   */
  bytesWritten: number;
  /** Bytes made to read as zeroes (zero extents and data that read as zeroes), counted like {@link bytesWritten}; never read from the source twice. */
  zeroBytes: number;
  /** Chunks done this run. */
  chunks: number;
  /** Chunks a resumed checkpoint had already done, not sent again. */
  chunksSkipped: number;
  retries: number;
  durationMs: number;
  /** Bytes this run wrote and zeroed, per second of this run (resumed chunks excluded). */
  throughputBytesPerSec: number;
  /** {@link DiskManifest.digest} of the target's manifest after the transfer; empty when nothing was hashed (no manifest store, no verify). */
  manifestDigest: string;
  /** Chunks of the target whose hash the manifest does not know (regions no transfer has written yet). */
  unknownChunks: number;
  resumed: boolean;
  verified: boolean;
  warnings: SyncWarning[];
}

const DEFAULT_CONCURRENCY = 8;
const DEFAULT_MAX_IN_FLIGHT_BYTES = 64 << 20;
const DEFAULT_CHECKPOINT_CHUNKS = 256;
const DEFAULT_CHECKPOINT_MS = 10_000;

function configError(message: string): SyncproxyError {
  return new SyncproxyError(`transferDisk: ${message}`, { code: 'config', retryable: false });
}

interface Settings {
  diskSize: number;
  chunkSizeBytes: number;
  chunkCount: number;
  concurrency: number;
  /** Bytes of reads in flight at most: the reader's hint, else `concurrency` chunks (the memory budget when adaptive). */
  readBytesInFlight: number;
  /** Bytes of one read into a chunk buffer at most: `readBytesInFlight / concurrency`, whole blocks, at most a chunk. */
  readBytes: number;
  /** The most reads in flight the adaptive limit may reach; undefined when `concurrency` was given. */
  adaptiveMaxConcurrency: number | undefined;
  maxInFlightBytes: number;
  checkpointChunks: number;
  checkpointMs: number;
}

function resolveSettings(options: TransferOptions): Settings {
  const { reader } = options;
  if (reader === undefined || typeof reader.read !== 'function' || typeof reader.extents !== 'function') {
    throw configError('reader must be a ChangedBlockReader');
  }
  const sink = options.sink;
  if (sink === undefined || typeof sink.write !== 'function' || typeof sink.writeZeroes !== 'function') {
    throw configError('sink must be a BlockSink');
  }
  if (options.full !== undefined && typeof options.full !== 'boolean')
    throw configError(`full must be true or false (got ${String(options.full)})`);
  // Neither said: a full sync and an incremental write the same listed ranges, and differ in what
  // they do to the rest of the target (zeroed, or kept). Guessing either way can end with a wrong
  // image and no error: an old image's bytes kept where the disk is now zero, or a good image
  // zeroed where nothing changed.
  if (options.full === undefined && typeof reader.hints?.incremental !== 'boolean') {
    throw configError(
      'full is not set and the reader does not declare hints.incremental: pass full: true when its extents describe the whole disk (ranges they do not name are zeroed on the target) or full: false when they are the changes since a base (the rest of the target is kept)',
    );
  }
  const diskSize = reader.diskSize;
  if (!Number.isSafeInteger(diskSize) || diskSize < 0)
    throw configError(`reader.diskSize ${diskSize} is not a byte count`);
  const granularity = reader.granularity > 0 ? reader.granularity : 1;
  if (!Number.isSafeInteger(granularity))
    throw configError(`reader.granularity ${reader.granularity} is not a byte count`);
  const hinted = reader.hints?.chunkSizeBytes;
  let chunkSizeBytes: number;
  if (options.chunkSizeBytes !== undefined) {
    chunkSizeBytes = options.chunkSizeBytes;
    if (!Number.isSafeInteger(chunkSizeBytes) || chunkSizeBytes <= 0 || chunkSizeBytes % granularity !== 0) {
      throw configError(
        `chunkSizeBytes ${chunkSizeBytes} must be a positive multiple of the reader's granularity ${granularity}`,
      );
    }
  } else if (
    typeof hinted === 'number' &&
    Number.isSafeInteger(hinted) &&
    hinted > 0 &&
    hinted % granularity === 0
  ) {
    chunkSizeBytes = hinted;
  } else {
    chunkSizeBytes = Math.ceil(DEFAULT_CHUNK_SIZE_BYTES / granularity) * granularity;
  }
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw configError(`concurrency must be an integer >= 1 (got ${concurrency})`);
  const maxInFlightBytes = options.maxInFlightBytes ?? DEFAULT_MAX_IN_FLIGHT_BYTES;
  if (!Number.isSafeInteger(maxInFlightBytes) || maxInFlightBytes < 1) {
    throw configError(`maxInFlightBytes must be a positive integer (got ${maxInFlightBytes})`);
  }
  const readHint = reader.hints?.readBytesInFlight;
  const readBytesInFlight =
    typeof readHint === 'number' && Number.isSafeInteger(readHint) && readHint > 0
      ? readHint
      : options.concurrency === undefined
        ? // Adaptive: the count grows past 8, and the buffer budget bounds the bytes.
          Math.max(concurrency * chunkSizeBytes, maxInFlightBytes)
        : concurrency * chunkSizeBytes;
  const readBytes = Math.min(
    chunkSizeBytes,
    Math.max(granularity, Math.floor(readBytesInFlight / concurrency / granularity) * granularity),
  );
  const checkpointChunks = options.checkpointEvery?.chunks ?? DEFAULT_CHECKPOINT_CHUNKS;
  const checkpointMs = options.checkpointEvery?.ms ?? DEFAULT_CHECKPOINT_MS;
  if (!Number.isInteger(checkpointChunks) || checkpointChunks < 1 || !(checkpointMs > 0)) {
    throw configError('checkpointEvery.chunks must be an integer >= 1 and checkpointEvery.ms > 0');
  }
  if (options.coalesceGapBytes !== undefined && !(options.coalesceGapBytes >= 0))
    throw configError('coalesceGapBytes must be >= 0');
  return {
    diskSize,
    chunkSizeBytes,
    chunkCount: Math.ceil(diskSize / chunkSizeBytes),
    concurrency,
    readBytesInFlight,
    readBytes,
    adaptiveMaxConcurrency:
      options.concurrency === undefined
        ? Math.max(concurrency, 4 * Math.max(1, Math.floor(maxInFlightBytes / chunkSizeBytes)))
        : undefined,
    maxInFlightBytes,
    checkpointChunks,
    checkpointMs,
  };
}

/** The default stores live beside a sink that names a state path (a FileSink's image). */
function resolveStores(options: TransferOptions): { checkpoint?: CheckpointStore; manifest?: ManifestStore } {
  const statePath = options.sink.statePath;
  const base = typeof statePath === 'string' && statePath !== '' ? statePath : undefined;
  const checkpoint =
    options.checkpoint === false
      ? undefined
      : (options.checkpoint ??
        (base === undefined ? undefined : new FileCheckpointStore(`${base}.checkpoint.json`)));
  const manifest =
    options.manifest === false
      ? undefined
      : (options.manifest ?? (base === undefined ? undefined : new FileManifestStore(`${base}.manifest`)));
  return { checkpoint, manifest };
}

function resumable(
  checkpoint: TransferCheckpoint | undefined,
  settings: Settings,
  transferId: string | undefined,
  targetId: string | undefined,
): boolean {
  return (
    checkpoint !== undefined &&
    checkpoint.diskSize === settings.diskSize &&
    checkpoint.chunkSizeBytes === settings.chunkSizeBytes &&
    checkpoint.transferId === transferId &&
    sameTarget(checkpoint.targetId, targetId) &&
    withinDisk(checkpoint, settings)
  );
}

/** The chunk index ranges a checkpoint names done: `[0, doneBelow)` and its runs. */
function doneRanges(checkpoint: TransferCheckpoint): Array<readonly [number, number]> {
  return [[0, checkpoint.doneBelow], ...checkpoint.doneRuns];
}

/**
 * Whether state saved for the target `saved` names may be continued on the target the sink names
 * now. State from before targets were named (`saved` undefined) is taken as it always was.
 */
function sameTarget(saved: string | undefined, current: string | undefined): boolean {
  return saved === undefined || saved === current;
}

/**
 * Every field of a checkpoint stays within the disk it claims: a checkpoint
 * edited to say more is done than the disk holds is never resumed (it would
 * skip chunks and report the image complete).
 */
function withinDisk(checkpoint: TransferCheckpoint, settings: Settings): boolean {
  const { chunkCount, diskSize } = settings;
  const inRange = (n: unknown, max: number) =>
    Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) <= max;
  if (!inRange(checkpoint.doneBelow, chunkCount)) return false;
  for (const n of [checkpoint.dataBytes, checkpoint.zeroBytes])
    if (n !== undefined && !inRange(n, checkpoint.bytesDone)) return false;
  if (!inRange(checkpoint.bytesDone, diskSize) || !inRange(checkpoint.chunksDone, chunkCount)) return false;
  let previous = checkpoint.doneBelow;
  for (const run of checkpoint.doneRuns) {
    if (!Array.isArray(run) || !inRange(run[0], chunkCount) || !inRange(run[1], chunkCount)) return false;
    if (run[0] < previous || run[1] <= run[0]) return false;
    previous = run[1];
  }
  return true;
}

/**
 * Streams a disk from a {@link ChangedBlockReader} into a {@link BlockSink}.
 *
 * Extents are cut into chunks of a fixed grid; up to `concurrency` reads and
 * any number of writes run at once within `maxInFlightBytes` of buffers, so
 * memory is flat whatever the disk size (the only thing that grows with it is
 * the manifest, 32 bytes a chunk). Zero extents are never read; data that
 * reads as zeroes is written with `writeZeroes`. Every chunk's digest (BLAKE3, or SHA-256 in a manifest that began with it) goes
 * into the manifest; a checkpoint records finished chunks so that the same
 * call after a crash, abort or failure sends only what was not done.
 *
 * Rejects with a {@link SyncproxyError}: the first non-retryable error (or a
 * retryable one that ran out of attempts), `aborted` on abort, `integrity`
 * when verification finds a difference. In every case the checkpoint is kept
 * and the manifest is left marked incomplete: a target is never reported
 * complete when it is not.
 */
export async function transferDisk(options: TransferOptions): Promise<TransferResult> {
  const clock = options.clock ?? systemClock;
  const startedAt = clock.now();
  const settings = resolveSettings(options);
  const { reader, sink } = options;
  const { diskSize, chunkCount } = settings;
  if (options.signal?.aborted) throw abortError(options.signal, 'transfer');
  if (options.verify && typeof sink.read !== 'function') {
    throw new SyncproxyError('transferDisk: verify needs a sink that can read back (sink.read)', {
      code: 'unsupported',
      retryable: false,
    });
  }
  const retryPolicy = resolveRetryPolicy(options.retry);
  const warnings: SyncWarning[] = [...(reader.warnings ?? [])];
  const logger = options.logger;

  // One internal signal stops everything, whether the caller aborted or a chunk failed for good.
  const stop = new AbortController();
  // Every read, write and wait in flight listens to it: far more than the default 10 listeners.
  setMaxListeners(0, stop.signal);
  // Made once the manifest is known: chunks are hashed with the algorithm of the manifest they go into.
  let hasher: ChunkHasher | undefined;
  let intents: ChunkIntentLog | undefined;
  const onCallerAbort = () => stop.abort(abortError(options.signal, 'transfer'));
  options.signal?.addEventListener('abort', onCallerAbort, { once: true });
  const signal = stop.signal;

  let sinkOpened = false;
  try {
    try {
      await sink.open?.(diskSize);
      sinkOpened = true;
    } catch (error) {
      throw toSyncproxyError(error, { operation: 'open sink' });
    }
    if (sink.size !== undefined && sink.size < diskSize) {
      throw new SyncproxyError(
        `transferDisk: the sink holds ${sink.size} bytes, less than the disk's ${diskSize}`,
        {
          code: 'no-capacity',
          retryable: false,
        },
      );
    }
    const stores = resolveStores(options);
    const previousCheckpoint = await stores.checkpoint?.load().catch((error: unknown) => {
      warnings.push({
        code: 'checkpoint-unreadable',
        message: `checkpoint ignored: ${toSyncproxyError(error).message}`,
      });
      return undefined;
    });
    const targetId = sink.targetId;
    const resuming = resumable(previousCheckpoint, settings, options.transferId, targetId);
    if (previousCheckpoint !== undefined && !resuming) {
      warnings.push({
        code: 'checkpoint-discarded',
        message: sameTarget(previousCheckpoint.targetId, targetId)
          ? 'a checkpoint of another transfer (other id, disk size or chunk size) was found and not resumed'
          : 'a checkpoint of another target was found and not resumed: the image was replaced or made anew since it was saved',
      });
    }
    let manifest: DiskManifest;
    ({ manifest, intents } = await loadBaseManifest(
      stores.manifest,
      settings,
      resuming,
      previousCheckpoint,
      isFullTransfer(options),
      { transferId: options.transferId, targetId },
      warnings,
    ));
    hasher = new ChunkHasher({ algorithm: manifest.hashAlgorithm });
    const ledger = new ChunkLedger(resuming ? previousCheckpoint : undefined);
    for (const warning of warnings) logger?.warn({ code: warning.code }, warning.message);

    const prescan = options.prescan ?? reader.hints?.extentsReadData !== true;
    const totals = prescan ? await countPlan(options, settings, signal) : undefined;

    const run = new TransferRun(options, settings, {
      clock,
      signal,
      stop,
      manifest,
      exactBelow: resuming ? manifest.pendingFrom : settings.chunkCount,
      ledger,
      stores,
      retryPolicy,
      hasher,
      intents,
    });
    run.progress.setBaseline(ledger.bytesDone, ledger.dataBytes);
    if (totals !== undefined) run.totals = totals;
    await run.execute();
    if (run.unproven > 0) {
      warnings.push({
        code: 'manifest-unproven',
        message: `${run.unproven} chunk(s) written in part keep target bytes that no manifest entry proves (their entries were unknown, or a resumed transfer's stopped run may have written them): their entries stay unknown`,
      });
    }

    // Complete: everything durable first, then the manifest says so, then the checkpoint goes.
    await run.flushSink();
    const verified = options.verify === true ? await run.verify() : false;
    manifest.complete = true;
    manifest.pendingFrom = chunkCount;
    await stores.manifest?.save(manifest);
    await stores.checkpoint?.clear();
    // The manifest now describes every chunk: nothing is left for a later run to prove.
    await intents?.discard();
    intents = undefined;
    run.report(true);
    const durationMs = clock.now() - startedAt;
    const moved = run.bytesWritten + run.zeroBytes;
    return {
      bytesRead: run.bytesRead,
      bytesWritten: ledger.dataBytes,
      zeroBytes: ledger.zeroBytes,
      chunks: run.chunks,
      chunksSkipped: run.chunksSkipped,
      retries: run.retries,
      durationMs,
      throughputBytesPerSec: durationMs > 0 ? (moved / durationMs) * 1000 : 0,
      manifestDigest: run.hashes ? manifest.digest() : '',
      unknownChunks: manifest.unknownCount(),
      resumed: resuming,
      verified,
      warnings,
    };
  } finally {
    options.signal?.removeEventListener('abort', onCallerAbort);
    await hasher?.close();
    await intents?.close();
    if (sinkOpened && options.closeSink !== false) {
      await sink.close().catch((error: unknown) => {
        logger?.warn({ error: toSyncproxyError(error).message }, 'closing the sink failed');
      });
    }
  }
}

/**
 * The manifest this transfer updates. A stored one of the same geometry keeps its hash algorithm (an
 * incremental updates only the chunks it writes, and one manifest holds digests of one algorithm);
 * a new one, or the one a full transfer that is not resuming rewrites anyway, gets BLAKE3, or
 * SHA-256 with a `hash-fallback` warning where the BLAKE3 binding does not load.
 */
async function loadBaseManifest(
  store: ManifestStore | undefined,
  settings: Settings,
  resuming: boolean,
  checkpoint: TransferCheckpoint | undefined,
  full: boolean,
  names: { transferId: string | undefined; targetId: string | undefined },
  warnings: SyncWarning[],
): Promise<{ manifest: DiskManifest; intents: ChunkIntentLog | undefined }> {
  let stored: DiskManifest | undefined;
  try {
    stored = await store?.load();
  } catch (error) {
    warnings.push({
      code: 'manifest-unreadable',
      message: `manifest ignored: ${toSyncproxyError(error).message}`,
    });
  }
  const choice = chooseChunkHashAlgorithm();
  const fresh = () => {
    if (choice.warning !== undefined) warnings.push(choice.warning);
    return DiskManifest.create({
      diskSize: settings.diskSize,
      chunkSizeBytes: settings.chunkSizeBytes,
      hashAlgorithm: choice.algorithm,
    });
  };
  let manifest: DiskManifest;
  let intents: ChunkIntentLog | undefined;
  if (stored !== undefined && !sameTarget(stored.targetId, names.targetId)) {
    // Its digests describe an image that is gone: the one at the path now was replaced or made anew.
    warnings.push({
      code: 'manifest-reset',
      message:
        'the stored manifest describes another target (the image was replaced or made anew since): a new one is started',
    });
    manifest = fresh();
  } else if (stored?.sameGeometry(settings) && !canDigest(stored.hashAlgorithm)) {
    // A BLAKE3 manifest where the binding does not load: its digests cannot be continued.
    warnings.push({
      code: 'manifest-reset',
      message: `the stored manifest holds ${stored.hashAlgorithm} digests, which cannot be taken here: a new one is started`,
    });
    manifest = fresh();
  } else if (
    stored?.sameGeometry(settings) &&
    full &&
    !resuming &&
    stored.hashAlgorithm !== choice.algorithm
  ) {
    // Every chunk is written again: the new manifest moves to the preferred algorithm.
    manifest = fresh();
  } else if (stored?.sameGeometry(settings)) {
    manifest = stored.clone();
    intents = await openIntentLog(store, names.transferId, full, manifest.hashAlgorithm);
    // An interrupted transfer that is not being resumed may have left half-written chunks from
    // pendingFrom on: any of them, unless it was a run of this very transfer, whose log names every
    // chunk it began writing.
    if (!manifest.complete && !resuming) {
      const touched = stored.transferId === names.transferId ? intents?.earlier : undefined;
      for (let i = manifest.pendingFrom; i < manifest.chunkCount; i++) {
        if (touched === undefined || touched.has(i)) manifest.set(i, 'unknown');
      }
    }
    // A resumed checkpoint never names a done chunk at or above the manifest's pendingFrom: the
    // manifest is saved first. If it does (journal batches lost), those chunks' digests are not
    // known: the resume skips them, so they must not keep the entries of the image before.
    if (!manifest.complete && resuming && checkpoint !== undefined) {
      for (const [start, end] of doneRanges(checkpoint)) {
        for (let i = Math.max(start, manifest.pendingFrom); i < end; i++) manifest.set(i, 'unknown');
      }
    }
  } else {
    if (stored !== undefined) {
      warnings.push({
        code: 'manifest-reset',
        message: 'the stored manifest describes another disk or chunk size: a new one is started',
      });
    }
    manifest = fresh();
  }
  manifest.complete = false;
  manifest.transferId = names.transferId;
  manifest.targetId = names.targetId;
  intents ??= await openIntentLog(store, names.transferId, full, manifest.hashAlgorithm);
  return { manifest, intents };
}

/**
 * The log in which an incremental named `transferId` records the chunks it begins writing (see
 * {@link ChunkIntentLog}), with what earlier runs of it recorded. A full transfer writes every chunk
 * whole and records nothing: it removes a log an earlier run of the same name left, which would
 * otherwise speak for chunks this one rewrites.
 */
async function openIntentLog(
  store: ManifestStore | undefined,
  transferId: string | undefined,
  full: boolean,
  hashAlgorithm: ChunkHashAlgorithm,
): Promise<ChunkIntentLog | undefined> {
  if (transferId === undefined || store?.openIntents === undefined) return undefined;
  const log = await store.openIntents(transferId, hashAlgorithm);
  if (!full) return log;
  await log.discard();
  return undefined;
}

/**
 * Extents the count keeps for the transfer to plan from (about 100 bytes each): a second listing
 * is a second round of the platform's calls (BLOCK_STATUS, ListChangedBlocks pages, `rbd diff`).
 */
const MAX_KEPT_EXTENTS = 16_384;

/** What the transfer covers, and the extents listed to count it when there are few. */
interface PlanTotals {
  bytes: number;
  chunks: number;
  extents: Extent[] | undefined;
}

/** Lists the plan once to know what the transfer covers. */
async function countPlan(
  options: TransferOptions,
  settings: Settings,
  signal: AbortSignal,
): Promise<PlanTotals> {
  let bytes = 0;
  let chunks = 0;
  let kept: Extent[] | undefined = [];
  async function* keeping(source: AsyncIterable<Extent>): AsyncGenerator<Extent> {
    for await (const extent of source) {
      if (kept !== undefined) {
        if (kept.length < MAX_KEPT_EXTENTS)
          kept.push({ offset: extent.offset, length: extent.length, kind: extent.kind });
        else kept = undefined;
      }
      yield extent;
    }
  }
  try {
    const source = keeping(options.reader.extents({ signal }));
    for await (const job of planChunks(source, planOptions(options, settings))) {
      chunks++;
      for (const piece of job.pieces) bytes += piece.length;
    }
  } catch (error) {
    throw toSyncproxyError(signal.aborted ? signal.reason : error, { operation: 'list extents' });
  }
  return { bytes, chunks, extents: kept };
}

async function* replay(extents: readonly Extent[]): AsyncGenerator<Extent> {
  yield* extents;
}

/**
 * Whether ranges no extent names must read as zeroes on the target: the
 * caller's `full`, else what the reader declares (`hints.incremental: false`,
 * which `defineConnector` sets for a reader opened without a base).
 */
export function isFullTransfer(options: Pick<TransferOptions, 'full' | 'reader'>): boolean {
  return options.full ?? options.reader.hints?.incremental === false;
}

function planOptions(options: TransferOptions, settings: Settings) {
  return {
    diskSize: settings.diskSize,
    chunkSizeBytes: settings.chunkSizeBytes,
    fillGaps: isFullTransfer(options),
    coalesceGapBytes: options.coalesceGapBytes,
  };
}

interface RunContext {
  clock: Clock;
  signal: AbortSignal;
  stop: AbortController;
  manifest: DiskManifest;
  /**
   * Below this chunk, a known manifest entry describes the target exactly. A resumed transfer's
   * entries from the saved manifest's `pendingFrom` on may predate what the stopped run wrote.
   */
  exactBelow: number;
  ledger: ChunkLedger;
  stores: { checkpoint?: CheckpointStore; manifest?: ManifestStore };
  retryPolicy: ReturnType<typeof resolveRetryPolicy>;
  hasher: ChunkHasher;
  /**
   * Where an incremental records what each chunk may hold before it writes the chunk, with what
   * earlier runs of the same transfer recorded. Undefined for a full transfer, and where the
   * manifest store keeps no such log.
   */
  intents: ChunkIntentLog | undefined;
}

/** One call of transferDisk: the pipeline, its counters and its checkpoints. */
class TransferRun {
  bytesRead = 0;
  bytesWritten = 0;
  zeroBytes = 0;
  chunks = 0;
  chunksSkipped = 0;
  retries = 0;
  /** Chunks written in part whose kept target bytes nothing proved: their entries are `unknown`. */
  unproven = 0;
  totals: PlanTotals | undefined;
  readonly progress: ProgressMeter;

  private failure: SyncproxyError | undefined;
  private readonly inFlight = new Map<number, Promise<void>>();
  /**
   * Chunks started and not yet finished, whose bytes on the target may be half written: a
   * checkpoint's manifest marks them `unknown`. A chunk leaves it in the same step that records
   * its entry and counts it done, so no save sees it done and unknown at once (`inFlight` keeps a
   * finished chunk a few microtasks longer).
   */
  private readonly unfinished = new Set<number>();
  private readonly written: Uint8Array;
  /** Data and zeroed bytes of each chunk this run wrote, kept for `verify`: a chunk found wrong is not done. */
  private readonly split: Map<number, [number, number]> | undefined;
  /**
   * Reads in flight: at most `concurrency` of them (tuned by `adaptive`) and `readBytesInFlight`
   * bytes. The one place that decides how many reads run at once; every read of the source goes
   * through {@link TransferRun.admitRead}.
   */
  private readonly reads: InFlightBudget;
  /** Tunes the count of `reads` from throughput and throttling, unless the caller fixed `concurrency`. */
  private readonly adaptive: AdaptiveConcurrency | undefined;
  /** Told of every retry, the engine's and those a reader makes itself: throttling feeds the adaptive limit. */
  private readonly observeRetry = (error: SyncproxyError): void => {
    if (error.code === 'throttled') this.adaptive?.throttled();
  };
  /**
   * Chunks are hashed only when the hashes go somewhere: a manifest store, or
   * `verify`. With neither (`manifest: false`, a sink with no default store)
   * hashing would be CPU spent for nothing, and the result's digest is empty.
   */
  readonly hashes: boolean;
  /**
   * Reused chunk buffers on shared memory: for the source's pieces where the reader can read into one
   * (`readInto`), and for the target's bytes read back (kept bytes, `verify`), which the hashing threads
   * then take without a copy.
   */
  private readonly buffers: ChunkBufferPool;
  /** The reader reads into the chunk buffers. */
  private readonly readsInto: boolean;
  private readonly retry: RetryContext;
  private doneSinceSave = 0;
  /**
   * Chunks whose manifest entry changed since the last checkpoint, once the whole manifest has been
   * saved in this run (`undefined` before): later checkpoints save only these, through the store's
   * `saveChanges`, so their cost follows the chunks written, not the size of the disk.
   */
  private changedSinceSave: number[] | undefined;
  private lastSaveAt: number;
  private saving: Promise<void> | undefined;
  private cursor = 0;

  constructor(
    private readonly options: TransferOptions,
    private readonly settings: Settings,
    private readonly context: RunContext,
  ) {
    this.progress = new ProgressMeter(context.clock, options.onProgress);
    this.written = new Uint8Array(Math.ceil(settings.chunkCount / 8));
    this.split = options.verify === true ? new Map() : undefined;
    this.reads = new InFlightBudget(settings.readBytesInFlight, settings.concurrency);
    this.adaptive =
      settings.adaptiveMaxConcurrency === undefined
        ? undefined
        : new AdaptiveConcurrency({
            initialLimit: settings.concurrency,
            maxLimit: settings.adaptiveMaxConcurrency,
            clock: context.clock,
            onLimitChange: (limit) => {
              this.reads.setMaxJobs(limit);
              options.logger?.debug({ readsInFlight: limit }, 'adaptive concurrency: new limit');
            },
          });
    this.hashes = context.stores.manifest !== undefined || options.verify === true;
    this.buffers = new ChunkBufferPool(
      settings.chunkSizeBytes,
      Math.ceil(settings.maxInFlightBytes / settings.chunkSizeBytes),
    );
    this.readsInto = typeof options.reader.readInto === 'function';
    this.lastSaveAt = context.clock.now();
    this.retry = {
      policy: context.retryPolicy,
      clock: context.clock,
      random: options.random ?? Math.random,
      signal: context.signal,
      onRetry: (error, attempt) => {
        this.retries++;
        this.observeRetry(error);
        options.logger?.debug(
          {
            code: error.code,
            attempt,
            error: error.message,
          },
          'retrying after a retryable error',
        );
      },
    };
  }

  private get hasStores(): boolean {
    return this.context.stores.checkpoint !== undefined || this.context.stores.manifest !== undefined;
  }

  report(final = false): void {
    this.progress.report(
      {
        bytesDone: this.context.ledger.bytesDone,
        bytesTotal: this.totals?.bytes,
        chunksDone: this.context.ledger.chunksDone,
        chunksTotal: this.totals?.chunks,
        retries: this.retries,
        dataBytes: this.context.ledger.dataBytes,
      },
      final,
    );
  }

  private fail(error: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = toSyncproxyError(error, { operation: 'transfer' });
    if (!this.context.stop.signal.aborted) this.context.stop.abort(this.failure);
  }

  async execute(): Promise<void> {
    const { signal, ledger } = this.context;
    const { settings } = this;
    const budget = new InFlightBudget(settings.maxInFlightBytes, settings.concurrency * 4);
    // The extents the count kept, if it kept them; the reader lists them otherwise.
    const kept = this.totals?.extents;
    const source = kept === undefined ? this.options.reader.extents({ signal }) : replay(kept);
    const plan = planChunks(source, planOptions(this.options, settings));
    const iterator = plan[Symbol.asyncIterator]();
    let finished = false;
    try {
      while (!signal.aborted) {
        const next = await raceAbort(iterator.next(), signal);
        if (next.done) {
          finished = true;
          break;
        }
        const job = next.value;
        this.cursor = job.index + 1;
        if (ledger.isDone(job.index)) {
          ledger.reach(job.index);
          this.chunksSkipped++;
          continue;
        }
        ledger.reach(job.index);
        // Of partly covered chunks the target's bytes are read whole to prove and hash them; the budget covers that buffer too.
        const weight = job.covered
          ? job.dataBytes
          : Math.max(job.dataBytes, this.readsBack() ? job.length : 0);
        await budget.acquire(weight, signal);
        // Checked after the wait for budget, right before the start: at any moment, what a crash would make
        // a resume read again is under checkpointEvery.chunks done chunks plus maxInFlightBytes in flight.
        try {
          await this.checkpointIfDue();
        } catch (error) {
          budget.release(weight);
          throw error;
        }
        if (signal.aborted) {
          budget.release(weight);
          break;
        }
        // Before the first write, the stored manifest says the image is being written: a run killed before
        // its first checkpoint must not leave a complete manifest whose digests a half-written chunk belies.
        if (this.changedSinceSave === undefined && this.context.stores.manifest !== undefined) {
          try {
            // pendingFrom is this chunk: it has not been written yet, and nothing above it has either.
            await this.manifestSave(job.index)!();
          } catch (error) {
            budget.release(weight);
            throw error;
          }
        }
        this.unfinished.add(job.index);
        const done = this.runJob(job).then(
          ({ entry, written, zeroed }) => {
            this.unfinished.delete(job.index);
            this.setEntry(job.index, entry);
            this.written[job.index >> 3]! |= 1 << (job.index & 7);
            this.split?.set(job.index, [written, zeroed]);
            ledger.finish(
              job.index,
              job.pieces.reduce((sum, piece) => sum + piece.length, 0),
              written,
              zeroed,
            );
            this.chunks++;
            this.doneSinceSave++;
            this.report();
          },
          (error: unknown) => {
            this.fail(error);
            // Its bytes on the target may be half written: below pendingFrom every entry must be exact.
            this.unfinished.delete(job.index);
            this.setEntry(job.index, 'unknown');
          },
        );
        this.inFlight.set(
          job.index,
          done.finally(() => {
            budget.release(weight);
            this.inFlight.delete(job.index);
          }),
        );
      }
    } catch (error) {
      this.fail(signal.aborted ? signal.reason : toSyncproxyError(error, { operation: 'list extents' }));
    } finally {
      // Not awaited: a listing stuck in the reader must not hold the rejection back.
      if (!finished) iterator.return?.(undefined).catch(() => {});
    }
    // In-flight writes finish; reads of stopped jobs are dropped before they write.
    await Promise.all(this.inFlight.values());
    await this.saving;
    if (this.failure === undefined && signal.aborted) this.fail(signal.reason);
    if (this.failure !== undefined) {
      await this.saveCheckpoint().catch((error: unknown) => {
        this.options.logger?.error(
          {
            error: toSyncproxyError(error).message,
          },
          'saving the checkpoint after a failure failed',
        );
      });
      this.report(true);
      throw this.failure;
    }
    ledger.end(settings.chunkCount);
  }

  private readsBack(): boolean {
    return this.options.manifestReadBack !== false && typeof this.options.sink.read === 'function';
  }

  /** Reads, classifies, hashes and writes one chunk; resolves with its manifest entry and its bytes written and zeroed. */
  private async runJob(job: ChunkJob): Promise<ChunkOutcome> {
    // One buffer laid out like the chunk: pieces are read into it where they sit, so a covered chunk
    // is hashed in one piece, off the event loop, without a copy. It is taken when the job's first read
    // is let through, not when the job is queued: the buffers in use are then only those being read,
    // hashed or written, and the pool hands back the one released last, still in the CPU cache.
    let chunk: Uint8Array | undefined;
    const pool = this.buffers;
    const buffer = this.readsInto ? () => (chunk ??= pool.acquire(job.length)) : undefined;
    const entry = await this.moveChunk(job, buffer);
    // Only a job that succeeded gives its buffer back: after a failure an aborted readInto may still land in it.
    if (chunk !== undefined) pool.release(chunk);
    return entry;
  }

  /**
   * Runs one read of `bytes` once the reads in flight leave room for it. Plain promise chains, no
   * async layers: this runs once per read, thousands of times a second, and each layer costs
   * microtask turns between a reply and the next request (measured: 6% of a copy's time).
   */
  private admitRead<T>(bytes: number, read: () => Promise<T>): Promise<T> {
    const run = (): Promise<T> => {
      let reading: Promise<T>;
      try {
        reading = read();
      } catch (error) {
        reading = Promise.reject(error);
      }
      return reading.then(
        (value) => {
          this.reads.release(bytes);
          return value;
        },
        (error: unknown) => {
          this.reads.release(bytes);
          throw error;
        },
      );
    };
    return this.reads.tryAcquire(bytes) ? run() : this.reads.acquire(bytes, this.context.signal).then(run);
  }

  /** Reads a piece into a buffer of its own (a reader without `readInto`). */
  private readPiece(piece: ChunkPiece): Promise<Uint8Array> {
    const { reader, bandwidth } = this.options;
    const { signal } = this.context;
    return withRetry(
      `read [${piece.offset}, ${piece.offset + piece.length})`,
      () =>
        this.admitRead(piece.length, async () => {
          if (signal.aborted) throw abortError(signal, 'transfer');
          await bandwidth?.take(piece.length, signal);
          const data = await raceAbort(
            reader.read(piece.offset, piece.length, { signal, onRetry: this.observeRetry }),
            signal,
          );
          if (data.length !== piece.length) {
            throw new SyncproxyError(
              `reader returned ${data.length} bytes for [${piece.offset}, ${piece.offset + piece.length})`,
              { code: 'protocol', retryable: false },
            );
          }
          this.bytesRead += data.length;
          this.adaptive?.readDone(data.length);
          return data;
        }),
      this.retry,
    );
  }

  /**
   * Reads a piece into its place in the chunk buffer, in reads of at most `readBytes` each, each let
   * through on its own: a reader that hints fewer bytes in flight than `concurrency` chunks still
   * has `concurrency` reads in flight, each starting as soon as one ends, instead of a few whole
   * chunks whose last request holds the next chunk back.
   */
  private readIntoChunk(buffer: () => Uint8Array, at: number, piece: ChunkPiece): Promise<Uint8Array> {
    const { reader, bandwidth } = this.options;
    const { signal } = this.context;
    const step = this.settings.readBytes;
    const reads: Array<Promise<void>> = [];
    for (let done = 0; done < piece.length; done += step) {
      const length = Math.min(step, piece.length - done);
      const offset = piece.offset + done;
      reads.push(
        withRetry(
          `read [${offset}, ${offset + length})`,
          () => {
            // The slot is given back as the reader's own promise settles, one turn after the reply: the
            // next read starts then. raceAbort only stops waiting for it.
            const reading = this.admitRead(length, () => {
              if (signal.aborted) return Promise.reject(abortError(signal, 'transfer'));
              const read = () => {
                // The buffer is taken here, by the first read let through (see runJob).
                const part = buffer().subarray(at + done, at + done + length);
                return reader.readInto!(part, offset, { signal, onRetry: this.observeRetry });
              };
              return bandwidth === undefined ? read() : bandwidth.take(length, signal).then(read);
            });
            return raceAbort(reading, signal).then(() => {
              this.bytesRead += length;
              this.adaptive?.readDone(length);
            });
          },
          this.retry,
        ),
      );
    }
    return Promise.all(reads).then(() => buffer().subarray(at, at + piece.length));
  }

  private async moveChunk(job: ChunkJob, buffer: (() => Uint8Array) | undefined): Promise<ChunkOutcome> {
    const { sink } = this.options;
    const { signal, hasher, manifest, intents } = this.context;
    const writeRetry: RetryContext = { ...this.retry, signal: undefined };
    // Before anything of the chunk is written: the entry it holds now. A later run of this transfer
    // may find the chunk so, written, or torn by a crash; this record tells it that the stopped run
    // touched the chunk, and what it may hold.
    // (An unknown entry is recorded too: it matches nothing, and says the chunk was touched.)
    const noted = intents?.note(job.index, manifest.raw(job.index));
    noted?.catch(() => {});
    // A chunk the extents cover in part keeps the target's bytes around its pieces: read (and proven)
    // while the pieces are read, before anything of the chunk is written.
    const kept =
      !job.covered && this.hashes && this.readsBack() ? this.keptBytes(job, writeRetry) : undefined;
    kept?.catch(() => {});
    const [keptBytes, ...buffers] = await Promise.all([
      kept,
      ...job.pieces.map((piece) => {
        if (piece.kind === 'zero') return undefined;
        if (buffer === undefined) return this.readPiece(piece);
        return this.readIntoChunk(buffer, piece.offset - job.offset, piece);
      }),
    ]);
    // Past this point the chunk is written whole even if the transfer stops: no torn chunk is left by an abort.
    if (signal.aborted) throw abortError(signal, 'transfer');
    // The buffer holds the whole chunk for hashing only: zero pieces are filled in just when a hash of
    // the chunk will be taken over data (an all-zero chunk is recorded as 'zero' without a hash).
    const chunk = buffer !== undefined && job.dataBytes > 0 ? buffer() : undefined;
    if (chunk !== undefined && job.covered && this.hashes) {
      for (const piece of job.pieces) {
        if (piece.kind === 'zero') zeroFill(chunk, piece.offset - job.offset, piece.length);
      }
    }

    const writes: Array<{ piece: ChunkPiece; data: Uint8Array | undefined }> = job.pieces.map((piece, i) => {
      const data = buffers[i];
      return { piece, data: data !== undefined && !isAllZero(data) ? data : undefined };
    });
    // Hashing runs while the chunk is written: neither waits for the other.
    let hashing: Promise<Uint8Array | 'zero'> | undefined;
    if (job.covered && this.hashes) {
      if (writes.every(({ data }) => data === undefined)) hashing = Promise.resolve('zero');
      else if (chunk !== undefined) hashing = hasher.hash(chunk.subarray(0, job.length));
      else hashing = hashPieces(writes, hasher);
    }
    hashing?.catch(() => {});
    // A chunk written in part: the chunk as it will be on the target, its proven bytes with the
    // pieces laid over them. Its entry is known before anything of it is written, and recorded.
    let after: Uint8Array | 'zero' | undefined;
    if (keptBytes !== undefined) {
      for (const { piece, data } of writes) {
        const at = piece.offset - job.offset;
        if (data === undefined) zeroFill(keptBytes, at, piece.length);
        else keptBytes.set(data, at);
      }
      after = await digestOrZero(keptBytes, hasher);
      this.buffers.release(keptBytes);
    }
    if (intents !== undefined) {
      await noted;
      if (after !== undefined) await intents.note(job.index, entryBytes(after));
    }
    let written = 0;
    let zeroed = 0;
    await Promise.all(
      writes.map(({ piece, data }) =>
        withRetry(
          `write [${piece.offset}, ${piece.offset + piece.length})`,
          () =>
            data === undefined
              ? sink.writeZeroes(piece.offset, piece.length)
              : sink.write(piece.offset, data),
          writeRetry,
        ).then(() => {
          if (data === undefined) {
            this.zeroBytes += piece.length;
            zeroed += piece.length;
          } else {
            this.bytesWritten += piece.length;
            written += piece.length;
          }
        }),
      ),
    );

    const entry: Uint8Array | 'zero' | 'unknown' =
      after ?? (hashing === undefined ? 'unknown' : await hashing);
    return { entry, written, zeroed };
  }

  /**
   * The target's bytes of a chunk the extents cover in part, read before its pieces are written. The
   * chunk's new digest is taken over them, so they must be proven first, or the manifest would vouch
   * for whatever the target holds: they are when the chunk matches its manifest entry. Where the
   * entry describes the target exactly, a mismatch means the target is not the base the changes
   * apply to: an `integrity` error ({@link TARGET_DIFFERS_FROM_MANIFEST}), before anything is written.
   * Where nothing proves them (no entry, or a resumed transfer's entry that may predate the stopped
   * run's writes): undefined, and the chunk's entry becomes `unknown`.
   */
  private async keptBytes(job: ChunkJob, retry: RetryContext): Promise<Uint8Array | undefined> {
    const { manifest, hasher, exactBelow, intents } = this.context;
    // What an earlier run of this transfer recorded before it wrote the chunk: it holds one of these,
    // or its manifest entry, unless a crash tore it.
    const earlier = intents?.earlier.get(job.index);
    if (manifest.entry(job.index).state === 'unknown' && earlier === undefined) {
      this.unproven++;
      return undefined;
    }
    const holds = (actual: Uint8Array | 'zero') =>
      manifest.matches(job.index, actual) || (earlier?.some((entry) => entryMatches(entry, actual)) ?? false);
    // A chunk that should read as zeroes (changes written into a sparse image's hole) is proven so by
    // the sink where it can do that cheaply: a FileSink reads it past the page cache, where a read into
    // memory made 4 MiB of zero pages in the cache for each such chunk. Its kept bytes are then zeroes.
    const { sink } = this.options;
    if (typeof sink.readsAsZeroes === 'function' && holds('zero')) {
      const zero = await withRetry(
        `read chunk ${job.index} of the target`,
        () => sink.readsAsZeroes!(job.offset, job.length),
        retry,
      );
      if (zero) {
        const target = this.buffers.acquire(job.length);
        zeroFill(target, 0, job.length);
        return target;
      }
      // Not zero: read, and proven against the other entries or not at all, below.
    }
    // Read into a shared chunk buffer and hashed on a hashing thread: a scattered incremental does
    // this for every chunk it touches, twice (here, then over the new bytes), and on the event loop
    // the hashes held up every read and write behind them.
    const target = this.buffers.acquire(job.length);
    let proven = false;
    try {
      await withRetry(
        `read chunk ${job.index} of the target`,
        () => this.readTarget(job.offset, target),
        retry,
      );
      proven = (isAllZero(target) && holds('zero')) || holds(await hasher.hash(target));
    } finally {
      // Each read above has settled (fs reads cannot be abandoned), so nothing lands in it later.
      if (!proven) this.buffers.release(target);
    }
    if (proven) return target;
    if (job.index >= exactBelow || earlier !== undefined) {
      this.unproven++;
      return undefined;
    }
    throw new SyncproxyError(
      `chunk ${job.index} of the target differs from its manifest at [${job.offset}, ${job.offset + job.length}): the bytes this transfer would keep around its changes are not the base's (the target was changed since the transfer that left the manifest); sync the disk in full`,
      {
        code: 'integrity',
        retryable: false,
        details: { chunk: job.index, reason: TARGET_DIFFERS_FROM_MANIFEST },
      },
    );
  }

  /** Reads the target's bytes at `offset` into `target`: with the sink's `readInto`, else its `read`. */
  private async readTarget(offset: number, target: Uint8Array, signal?: AbortSignal): Promise<void> {
    const { sink } = this.options;
    const options = signal === undefined ? undefined : { signal };
    if (typeof sink.readInto === 'function') {
      await sink.readInto(offset, target, options);
      return;
    }
    const data = await sink.read!(offset, target.length, options);
    if (data.length !== target.length) {
      throw new SyncproxyError(
        `the sink returned ${data.length} bytes for [${offset}, ${offset + target.length}) of the target`,
        { code: 'protocol', retryable: false },
      );
    }
    target.set(data);
  }

  async flushSink(): Promise<void> {
    try {
      await this.options.sink.flush();
    } catch (error) {
      throw toSyncproxyError(error, { operation: 'flush sink' });
    }
  }

  /**
   * Saves a checkpoint when due, in one of two ways, so that what a crash makes
   * a resume read again stays under `checkpointEvery.chunks` chunks plus what is
   * in flight:
   * - when the interval is large against the in-flight bound (the default: 256
   *   chunks against 16), saves run in the background, each starting after
   *   `(interval - inFlightChunks) / 2` chunks: the sink's fsync overlaps with
   *   later chunks instead of stalling the pipeline. A save's snapshot names
   *   only chunks whose writes had completed, so the fsync that follows makes
   *   them durable; a save due while the previous one runs waits for it.
   * - otherwise each save blocks new chunks until it is durable.
   */
  private async checkpointIfDue(): Promise<void> {
    if (!this.hasStores) return;
    const { checkpointChunks, maxInFlightBytes, chunkSizeBytes, checkpointMs } = this.settings;
    const overlap = Math.floor((checkpointChunks - Math.ceil(maxInFlightBytes / chunkSizeBytes)) / 2);
    const threshold = overlap >= 1 ? overlap : checkpointChunks;
    const due = () =>
      this.doneSinceSave >= threshold ||
      (this.doneSinceSave > 0 && this.context.clock.now() - this.lastSaveAt >= checkpointMs);
    if (this.saving !== undefined && (overlap < 1 || due())) await this.saving;
    if (!due()) return;
    const save = this.saveCheckpoint();
    if (overlap >= 1) save.catch((error: unknown) => this.fail(error));
    else await save;
  }

  private setEntry(index: number, entry: Uint8Array | 'zero' | 'unknown'): void {
    this.context.manifest.set(index, entry);
    this.changedSinceSave?.push(index);
  }

  /**
   * What a checkpoint saves of the manifest, taken now (the entries go on changing while it is
   * written): the first time in a run, the whole manifest; after that, only the entries changed
   * since, where the store can save changes. Chunks in flight are `unknown` either way: the target
   * may hold them half written.
   */
  private manifestSave(pendingFrom = this.cursor): (() => Promise<void>) | undefined {
    const { manifest, stores } = this.context;
    const store = stores.manifest;
    if (store === undefined) return undefined;
    const changed = this.changedSinceSave;
    if (changed !== undefined && store.saveChanges !== undefined) {
      const entries: Array<readonly [number, Uint8Array]> = [];
      for (const index of changed) entries.push([index, manifest.raw(index).slice()]);
      for (const index of this.unfinished) entries.push([index, UNKNOWN_ENTRY]);
      this.changedSinceSave = [];
      const changes = { pendingFrom, entries };
      return () => store.saveChanges!(changes);
    }
    const partial = manifest.clone();
    partial.complete = false;
    partial.pendingFrom = pendingFrom;
    for (const index of this.unfinished) partial.set(index, 'unknown');
    this.changedSinceSave = [];
    return () => store.save(partial);
  }

  /** Flushes the sink, then saves the manifest, then the checkpoint: a checkpoint never names a chunk that is not durable. */
  private saveCheckpoint(): Promise<void> {
    if (!this.hasStores) return Promise.resolve();
    const { ledger, stores, clock } = this.context;
    const checkpoint = ledger.snapshot(
      {
        diskSize: this.settings.diskSize,
        chunkSizeBytes: this.settings.chunkSizeBytes,
        transferId: this.options.transferId,
        targetId: this.options.sink.targetId,
      },
      new Date(),
    );
    const saveManifest = this.manifestSave();
    this.doneSinceSave = 0;
    this.lastSaveAt = clock.now();
    const save = (async () => {
      await this.flushSink();
      await saveManifest?.();
      await stores.checkpoint?.save(checkpoint);
    })();
    // `saving` only tells when the save is over; its error reaches the caller of this method (and so fail()).
    this.saving = save
      .catch(() => {})
      .finally(() => {
        if (this.saving === tracked) this.saving = undefined;
      });
    const tracked = this.saving;
    return save;
  }

  /** Re-reads the chunks this run wrote and compares them with the manifest. */
  async verify(): Promise<boolean> {
    const { manifest, ledger, signal } = this.context;
    const limit = pLimit(this.settings.concurrency);
    const mismatched: number[] = [];
    const checks: Array<Promise<void>> = [];
    const budget = new InFlightBudget(this.settings.maxInFlightBytes, this.settings.concurrency * 2);
    const checked = (index: number) =>
      (this.written[index >> 3]! & (1 << (index & 7))) !== 0 && manifest.entry(index).state !== 'unknown';
    let bytesTotal = 0;
    for (let index = 0; index < this.settings.chunkCount; index++) {
      if (checked(index)) bytesTotal += manifest.chunkLength(index);
    }
    let bytesDone = 0;
    const progress = () => {
      try {
        this.options.onVerifyProgress?.(bytesDone, bytesTotal);
      } catch {
        // A failing progress callback must not fail the verification.
      }
    };
    progress();
    for (let index = 0; index < this.settings.chunkCount; index++) {
      if (!checked(index)) continue;
      const offset = index * this.settings.chunkSizeBytes;
      const length = manifest.chunkLength(index);
      await budget.acquire(length, signal);
      checks.push(
        limit(async () => {
          const data = this.buffers.acquire(length);
          await this.readTarget(offset, data, signal);
          const actual = await digestOrZero(data, this.context.hasher);
          // Only a read that succeeded gives its buffer back: an aborted one may still land in it.
          this.buffers.release(data);
          if (!manifest.matches(index, actual)) mismatched.push(index);
          bytesDone += length;
          progress();
        }).finally(() => budget.release(length)),
      );
    }
    await Promise.all(checks);
    if (mismatched.length > 0) {
      for (const index of mismatched) {
        const [written, zeroed] = this.split?.get(index) ?? [0, 0];
        ledger.forget(index, manifest.chunkLength(index), written, zeroed);
        this.setEntry(index, 'unknown');
      }
      this.cursor = this.settings.chunkCount;
      await this.saveCheckpoint();
      mismatched.sort((a, b) => a - b);
      throw new SyncproxyError(
        `verification failed: ${mismatched.length} chunk(s) of the target differ from the source (first at offset ${mismatched[0]! * this.settings.chunkSizeBytes}); run the transfer again to resend them`,
        { code: 'integrity', retryable: false, details: { chunks: mismatched.slice(0, 32) } },
      );
    }
    return true;
  }
}

/** What one chunk's job did: its manifest entry, and its bytes written as data and zeroed. */
interface ChunkOutcome {
  entry: Uint8Array | 'zero' | 'unknown';
  written: number;
  zeroed: number;
}

/** `'zero'` for a chunk of zeroes, else its digest (on a hashing thread when it lies on shared memory). */
function digestOrZero(data: Uint8Array, hasher: ChunkHasher): Promise<Uint8Array | 'zero'> {
  return isAllZero(data) ? Promise.resolve('zero') : hasher.hash(data);
}

/**
 * The digest of a chunk from its pieces in order (some data, some zero). A chunk of
 * one data piece (the common case) goes to the hasher, which hashes shared
 * buffers on its worker thread.
 */
async function hashPieces(
  writes: Array<{ piece: ChunkPiece; data: Uint8Array | undefined }>,
  hasher: ChunkHasher,
): Promise<Uint8Array | 'zero'> {
  if (writes.every(({ data }) => data === undefined)) return 'zero';
  const only = writes.length === 1 ? writes[0]!.data : undefined;
  if (only !== undefined) return hasher.hash(only);
  const hash = createChunkDigest(hasher.algorithm);
  for (const { piece, data } of writes) {
    if (data !== undefined) {
      hash.update(data);
      continue;
    }
    for (let left = piece.length; left > 0; left -= ZERO_BLOCK.length) {
      hash.update(ZERO_BLOCK.subarray(0, Math.min(left, ZERO_BLOCK.length)));
    }
  }
  return hash.digest();
}
