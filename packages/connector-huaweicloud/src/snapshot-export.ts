import { SyncproxyError } from '@syncproxy/core';
import type { HuaweiClient } from './client.js';
import { HuaweiApiError } from './huawei-api-error.js';

/** One object an export wrote: the bytes `[offset, offset + length)` of a volume. */
export interface ExportedObject {
  key: string;
  volumeId: string;
  offset: number;
  length: number;
}

/** A finished export of one volume backup: its objects, sorted by offset, covering the allocated data. */
export interface SnapshotDataExport {
  id: string;
  /** The key prefix every object of this export starts with (what cleanup deletes). */
  prefix: string;
  objects: ExportedObject[];
}

export interface ExportRequest {
  /** The volume backup (a child of the server backup) whose data is exported. */
  volumeBackupId: string;
  volumeId: string;
  /** Where in the bucket: unique per export, so cleanup can delete by prefix. */
  prefix: string;
  signal?: AbortSignal;
}

/**
 * The CBR standard snapshot data export, behind an interface: Huawei opens it
 * only to white-listed accounts in a few regions and does not publish its API
 * shapes, so the connector depends on this seam, not on paths. A product with
 * the real shapes supplies its own implementation.
 */
export interface SnapshotDataExporter {
  /** Delegates the bucket to CBR (the "bucket delegation" interface); idempotent. */
  delegateBucket(bucket: string, signal?: AbortSignal): Promise<void>;
  /** Starts an export and waits until its objects are all in the bucket. */
  exportVolume(request: ExportRequest): Promise<SnapshotDataExport>;
}

/** Regions where Huawei Cloud opens the CBR snapshot data export (to white-listed accounts, as of 2025-10-31). */
export const EXPORT_REGIONS: readonly string[] = [
  'Shenzhen (cn-south-2)',
  'Istanbul (tr-west-1)',
  'Ankara (tr-central-1)',
];

/**
 * Error codes that mean "not enabled for this account or region" (the
 * white list), as modeled: the shapes are not public, so the set is
 * configurable. A 403 from an export call counts too.
 */
export const DEFAULT_NOT_ENABLED_CODES: readonly string[] = ['BackupService.6301', 'BackupService.6302'];

/** The CBR operations of the export: a bare 403 from one of them is the white list too. */
const EXPORT_OPERATIONS: ReadonlySet<string> = new Set([
  'CreateSnapshotDataBucketDelegation',
  'ExportSnapshotData',
  'ShowSnapshotDataExport',
]);

/**
 * True when `error` says the export is not enabled (not white-listed, or not
 * offered in the region). A 403 from anything else (the bucket, say) is a
 * missing permission, reported as such, never a reason to fall back.
 */
export function isExportNotEnabled(
  error: unknown,
  codes: readonly string[] = DEFAULT_NOT_ENABLED_CODES,
): boolean {
  if (!HuaweiApiError.isInstance(error)) return false;
  if (error.platformCode !== undefined && codes.includes(error.platformCode)) return true;
  return error.status === 403 && EXPORT_OPERATIONS.has(error.operation);
}

/** The typed warning for a session that falls back to the attach-and-hash path. */
export function exportNotEnabledWarning(region: string, reason: string): { code: string; message: string } {
  return {
    code: 'export-not-enabled',
    message: `CBR snapshot data export is not enabled for this account in ${region} (${reason}); Huawei Cloud opens it only to white-listed accounts in ${EXPORT_REGIONS.join(', ')} (ask Huawei Cloud by ticket). Falling back: a volume made from the backup is attached to the proxy and read whole, changes found by hash`,
  };
}

interface ExportAnswer {
  export: {
    id: string;
    status: 'exporting' | 'success' | 'failed';
    prefix?: string;
    objects?: Array<{ key: string; volume_id: string; offset: number; length: number }>;
    fail_reason?: string;
  };
}

/**
 * The export as modeled from what is known (export job -> objects in the
 * bucket -> read with ranges): `POST /v3/{project_id}/snapshot-data/bucket-delegation`,
 * `POST /v3/{project_id}/backups/{backup_id}/snapshot-data/export`, then
 * `GET /v3/{project_id}/snapshot-data/exports/{export_id}` until `success`.
 * UNCONFIRMED shapes (see the README): kept here, in one file.
 */
export class CbrSnapshotDataExporter implements SnapshotDataExporter {
  readonly #client: HuaweiClient;
  readonly #poll: <T>(what: string, check: () => Promise<T | undefined>, signal?: AbortSignal) => Promise<T>;
  readonly #delegated = new Set<string>();

  constructor(
    client: HuaweiClient,
    poll: <T>(what: string, check: () => Promise<T | undefined>, signal?: AbortSignal) => Promise<T>,
  ) {
    this.#client = client;
    this.#poll = poll;
  }

  async delegateBucket(bucket: string, signal?: AbortSignal): Promise<void> {
    if (this.#delegated.has(bucket)) return;
    await this.#client.call({
      service: 'cbr',
      operation: 'CreateSnapshotDataBucketDelegation',
      method: 'POST',
      path: '/v3/{project_id}/snapshot-data/bucket-delegation',
      body: { delegation: { bucket } },
      ...(signal ? { signal } : {}),
    });
    this.#delegated.add(bucket);
  }

  async exportVolume(request: ExportRequest): Promise<SnapshotDataExport> {
    const { signal } = request;
    const started = await this.#client.call<ExportAnswer>({
      service: 'cbr',
      operation: 'ExportSnapshotData',
      method: 'POST',
      path: `/v3/{project_id}/backups/${encodeURIComponent(request.volumeBackupId)}/snapshot-data/export`,
      body: { export: { bucket: this.#client.bucket, prefix: request.prefix } },
      ...(signal ? { signal } : {}),
    });
    const id = started.export.id;
    const done = await this.#poll(
      `snapshot data export ${id} of volume ${request.volumeId}`,
      async () => {
        const answer = await this.#client.call<ExportAnswer>({
          service: 'cbr',
          operation: 'ShowSnapshotDataExport',
          method: 'GET',
          path: `/v3/{project_id}/snapshot-data/exports/${encodeURIComponent(id)}`,
          ...(signal ? { signal } : {}),
        });
        if (answer.export.status === 'failed') {
          throw new SyncproxyError(
            `snapshot data export ${id} of volume ${request.volumeId} failed: ${answer.export.fail_reason ?? 'no reason given'}`,
            { code: 'platform', retryable: true, details: { exportId: id } },
          );
        }
        return answer.export.status === 'success' ? answer.export : undefined;
      },
      signal,
    );
    const objects = (done.objects ?? [])
      .map((o) => ({ key: o.key, volumeId: o.volume_id, offset: o.offset, length: o.length }))
      .sort((a, b) => a.offset - b.offset);
    for (const object of objects) {
      if (!object.key.startsWith(request.prefix)) {
        throw new SyncproxyError(
          `snapshot data export ${id} wrote object ${object.key} outside its prefix ${request.prefix}`,
          { code: 'protocol', retryable: false },
        );
      }
    }
    return { id, prefix: request.prefix, objects };
  }
}
