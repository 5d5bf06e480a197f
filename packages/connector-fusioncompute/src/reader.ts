import {
  abortError,
  type ChangedBlockReader,
  type Extent,
  isRetryableHttpStatus,
  type ReaderHints,
  type ReadOptions,
  SyncproxyError,
  type SyncWarning,
  toSyncproxyError,
} from '@syncproxy/core';
import { type Dispatcher, request } from 'undici';
import type { BackupLease } from './backup-lease.js';
import { type FcBackupResource, PLATFORM } from './client.js';
import type { DataRequestShape } from './data-request.js';
import { classifyErrorCode, FcApiError, type FcErrorCodes } from './fc-api-error.js';
import type { CnaLimiter } from './host-limits.js';

export interface FcReaderOptions {
  diskId: string;
  diskSize: number;
  /** getcbt's block: `sectorOfBlock * 512`. */
  granularity: number;
  extents: Extent[];
  /** The extents are getcbt's changes since a base's chgID (true), or every block written (false). */
  incremental: boolean;
  warnings: SyncWarning[];
  lease: BackupLease;
  limiter: CnaLimiter;
  /** The dispatcher for the host's data service (TLS trusting the resource's `caCert`). */
  dispatcherFor: (resource: FcBackupResource) => Dispatcher;
  dataRequest: DataRequestShape;
  transMode: 'lan' | 'lanssl';
  errorCodes: FcErrorCodes;
}

/**
 * One volume of a CBTbackup snapshot. The extents come from getcbt, listed
 * when the reader opens (so a CBT reset is known, and warned about, before
 * any byte moves); the bytes come from the volume's backup resource on its
 * compute node, by ranged reads, at most 8 in flight per node whatever the
 * number of readers.
 */
export class FcSnapshotReader implements ChangedBlockReader {
  readonly diskSize: number;
  readonly granularity: number;
  readonly warnings: readonly SyncWarning[];
  readonly hints: ReaderHints;
  readonly #o: FcReaderOptions;
  #closed = false;

  constructor(options: FcReaderOptions) {
    this.#o = options;
    this.diskSize = options.diskSize;
    this.granularity = options.granularity;
    this.warnings = options.warnings;
    this.hints = { incremental: options.incremental };
  }

  async *extents(options?: ReadOptions): AsyncIterable<Extent> {
    for (const extent of this.#o.extents) {
      if (options?.signal?.aborted) throw abortError(options.signal, 'extents');
      yield { ...extent };
    }
  }

  async read(offset: number, length: number, options?: ReadOptions): Promise<Uint8Array> {
    const target = new Uint8Array(length);
    await this.readInto(target, offset, options);
    return target;
  }

  async readInto(target: Uint8Array, offset: number, options?: ReadOptions): Promise<void> {
    const length = target.length;
    if (!Number.isSafeInteger(offset) || offset < 0 || length < 1 || offset + length > this.diskSize) {
      throw new SyncproxyError(
        `read of [${offset}, ${offset + length}) is outside disk ${this.#o.diskId} of ${this.diskSize} bytes`,
        { code: 'internal', retryable: false, platform: PLATFORM },
      );
    }
    if (this.#closed)
      throw new SyncproxyError('the reader is closed', { code: 'internal', retryable: false });
    const signal = options?.signal;
    // One re-request on an expired token: the lease asks for a new resource, and the read goes again.
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#o.lease.use(
          (resource) =>
            this.#o.limiter.withConnection(() => this.#fetch(resource, target, offset, signal), signal),
          signal,
        );
        return;
      } catch (error) {
        if (attempt === 0 && error instanceof TokenExpired) {
          await this.#o.lease.renew(error.resource);
          continue;
        }
        if (error instanceof TokenExpired) throw error.error;
        throw error;
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#o.lease.close();
  }

  async #fetch(
    resource: FcBackupResource,
    target: Uint8Array,
    offset: number,
    signal?: AbortSignal,
  ): Promise<void> {
    const spec = this.#o.dataRequest(
      resource,
      { offset, length: target.length },
      { transMode: this.#o.transMode },
    );
    const operation = 'ReadBackupData';
    let response: Dispatcher.ResponseData;
    try {
      response = await request(spec.url, {
        method: 'GET',
        headers: spec.headers,
        dispatcher: this.#o.dispatcherFor(resource),
        ...(signal ? { signal } : {}),
      });
    } catch (error) {
      if (signal?.aborted) throw abortError(signal, operation);
      throw toSyncproxyError(error, { operation, platform: PLATFORM });
    }
    const { statusCode } = response;
    if (statusCode !== 206 && !(statusCode === 200 && offset === 0 && target.length === this.diskSize)) {
      const text = await response.body.text().catch(() => '');
      const error = dataError(this.#o.errorCodes, statusCode, text, operation, new URL(spec.url));
      // An expired token, or a resource another read in flight already replaced after its token expired.
      if ((error.code === 'auth' && error.retryable) || error.code === 'not-found')
        throw new TokenExpired(resource, error);
      throw error;
    }
    let at = 0;
    try {
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        if (at + chunk.length > target.length) {
          throw new SyncproxyError(
            `the backup data of disk ${this.#o.diskId} at ${offset} is longer than the ${target.length} bytes asked for`,
            { code: 'protocol', retryable: true, platform: PLATFORM },
          );
        }
        target.set(chunk, at);
        at += chunk.length;
      }
    } catch (error) {
      if (signal?.aborted) throw abortError(signal, operation);
      throw toSyncproxyError(error, { operation, platform: PLATFORM });
    }
    if (at !== target.length) {
      throw new SyncproxyError(
        `the backup data of disk ${this.#o.diskId} at ${offset} ended after ${at} of ${target.length} bytes`,
        { code: 'protocol', retryable: true, platform: PLATFORM },
      );
    }
  }
}

/** A read refused because the resource's token expired: the lease renews it, then the read goes again. */
class TokenExpired extends Error {
  constructor(
    readonly resource: FcBackupResource,
    readonly error: SyncproxyError,
  ) {
    super(error.message);
  }
}

function dataError(
  codes: FcErrorCodes,
  status: number,
  text: string,
  operation: string,
  url: URL,
): FcApiError {
  let errorCode: string | undefined;
  let errorDes: string | undefined;
  try {
    const body = JSON.parse(text) as { errorCode?: unknown; errorDes?: unknown };
    if (typeof body.errorCode === 'string') errorCode = body.errorCode;
    if (typeof body.errorDes === 'string') errorDes = body.errorDes;
  } catch {
    // Not JSON: the status says enough.
  }
  const kind = classifyErrorCode(codes, errorCode);
  return new FcApiError({
    operation,
    method: 'GET',
    url: `${url.origin}${url.pathname}`,
    status,
    body: text.slice(0, 512),
    ...(errorCode ? { errorCode } : {}),
    ...(errorDes ? { errorDes } : {}),
    code:
      kind?.code ??
      (status === 401 ? 'auth' : status === 404 ? 'not-found' : status === 429 ? 'throttled' : 'platform'),
    retryable: kind?.retryable ?? (status === 401 || isRetryableHttpStatus(status)),
    platform: PLATFORM,
    message: `${operation} failed: HTTP ${status}${errorCode ? ` ${errorCode}` : ''}${errorDes ? `: ${errorDes}` : ''} from ${url.host}${kind?.hint ? ` (${kind.hint})` : ''}`,
  });
}
