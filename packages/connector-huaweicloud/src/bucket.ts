import { SyncproxyError } from '@syncproxy/core';
import type { HuaweiClient } from './client.js';
import { HuaweiApiError } from './huawei-api-error.js';

export interface ListedObject {
  key: string;
  size: number;
  lastModified?: string;
}

/**
 * The OBS bucket that caches exported disk data: made when it does not exist
 * (a new bucket, by name) or used as it is; objects read with ranged GETs and
 * deleted by prefix.
 */
export class ObsBucket {
  readonly #client: HuaweiClient;
  #ready: Promise<void> | undefined;

  constructor(client: HuaweiClient) {
    this.#client = client;
  }

  get name(): string {
    return this.#client.bucket;
  }

  /** Uses the bucket when it exists, creates it (in the configured region) when it does not. */
  ensure(signal?: AbortSignal): Promise<void> {
    this.#ready ??= this.#ensure(signal);
    this.#ready.catch(() => {
      this.#ready = undefined;
    });
    return this.#ready;
  }

  async #ensure(signal?: AbortSignal): Promise<void> {
    try {
      const head = await this.#client.obs({
        operation: 'HeadBucket',
        method: 'HEAD',
        ...(signal ? { signal } : {}),
      });
      await head.body.dump();
      return;
    } catch (error) {
      if (!SyncproxyError.hasCode(error, 'not-found')) throw error;
    }
    const body = `<CreateBucketConfiguration><Location>${this.#client.region}</Location></CreateBucketConfiguration>`;
    const created = await this.#client.obs({
      operation: 'CreateBucket',
      method: 'PUT',
      headers: { 'content-type': 'application/xml' },
      body,
      ...(signal ? { signal } : {}),
    });
    await created.body.dump();
  }

  /**
   * Fills `target` with `[offset, offset + target.length)` of an object, streamed
   * straight into the caller's buffer (no copy per read).
   */
  async readInto(key: string, offset: number, target: Uint8Array, signal?: AbortSignal): Promise<void> {
    if (target.length === 0) return;
    const last = offset + target.length - 1;
    const response = await this.#client.obs({
      operation: 'GetObject',
      method: 'GET',
      key,
      headers: { range: `bytes=${offset}-${last}` },
      ...(signal ? { signal } : {}),
    });
    let filled = 0;
    try {
      for await (const piece of response.body as AsyncIterable<Uint8Array>) {
        if (filled + piece.length > target.length) {
          throw new SyncproxyError(
            `GetObject ${key} bytes=${offset}-${last}: OBS sent more than the ${target.length} bytes asked for (status ${response.statusCode})`,
            { code: 'protocol', retryable: false },
          );
        }
        target.set(piece, filled);
        filled += piece.length;
      }
    } catch (error) {
      response.body.destroy();
      throw error;
    }
    if (filled !== target.length) {
      throw new SyncproxyError(
        `GetObject ${key} bytes=${offset}-${last}: got ${filled} of ${target.length} bytes`,
        { code: 'network', retryable: true },
      );
    }
  }

  /** Objects under a prefix, every page (`marker` paging, at most 1000 a page). */
  async list(prefix: string, signal?: AbortSignal): Promise<ListedObject[]> {
    const objects: ListedObject[] = [];
    let marker: string | undefined;
    while (true) {
      const response = await this.#client.obs({
        operation: 'ListObjects',
        method: 'GET',
        query: { prefix, 'max-keys': '1000', ...(marker ? { marker } : {}) },
        ...(signal ? { signal } : {}),
      });
      const xml = await response.body.text();
      for (const match of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
        const entry = match[1] ?? '';
        const key = decodeXml(/<Key>([^<]*)<\/Key>/.exec(entry)?.[1] ?? '');
        const size = Number(/<Size>(\d+)<\/Size>/.exec(entry)?.[1] ?? 0);
        const lastModified = /<LastModified>([^<]*)<\/LastModified>/.exec(entry)?.[1];
        objects.push({ key, size, ...(lastModified ? { lastModified } : {}) });
      }
      const truncated = /<IsTruncated>true<\/IsTruncated>/.test(xml);
      if (!truncated || objects.length === 0) return objects;
      marker = decodeXml(
        /<NextMarker>([^<]*)<\/NextMarker>/.exec(xml)?.[1] ?? objects[objects.length - 1]!.key,
      );
    }
  }

  /** Deletes one object; a missing object is already gone. */
  async delete(key: string, signal?: AbortSignal): Promise<void> {
    try {
      const response = await this.#client.obs({
        operation: 'DeleteObject',
        method: 'DELETE',
        key,
        ...(signal ? { signal } : {}),
      });
      await response.body.dump();
    } catch (error) {
      if (HuaweiApiError.isInstance(error) && error.status === 404) return;
      throw error;
    }
  }

  /** Deletes every object under `prefix`; the keys deleted. */
  async deletePrefix(prefix: string, signal?: AbortSignal): Promise<string[]> {
    const keys = (await this.list(prefix, signal)).map((o) => o.key);
    for (const key of keys) await this.delete(key, signal);
    return keys;
  }
}

function decodeXml(text: string): string {
  return text
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&quot;', '"')
    .replaceAll('&apos;', "'")
    .replaceAll('&amp;', '&');
}
