import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { type DeviceDirectories, type Extent, SyncproxyError } from '@syncproxy/core';
import { runCommand } from './command.js';

/** OCI: "a scan length of up to 1 GB of logical blocks per query"; larger is undefined. */
export const MAX_SCAN_WINDOW_BYTES = 1 << 30;

export interface ScanOptions {
  /** The attached delta volume's device. */
  devicePath: string;
  diskSize: number;
  /** The delta's change block size: mapped ranges are multiples of it. */
  changeBlockSizeBytes: number;
  signal?: AbortSignal;
}

/**
 * Finds the mapped (changed) ranges of an attached backup-delta volume.
 * Behind an interface: the proxy uses {@link SgLbaStatusScanner}; the mock
 * answers from its own record of the delta.
 */
export interface MappedRangeScanner {
  /** Sorted, non-overlapping `data` extents within `[0, diskSize)`. */
  scan(options: ScanOptions): Promise<Extent[]>;
}

/** Merges touching ranges and clips them to the disk. */
export function normalizeRanges(
  ranges: Array<{ offset: number; length: number }>,
  diskSize: number,
): Extent[] {
  const sorted = ranges
    .map((r) => ({ offset: r.offset, end: Math.min(diskSize, r.offset + r.length) }))
    .filter((r) => r.end > r.offset)
    .sort((a, b) => a.offset - b.offset);
  const out: Extent[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.offset <= last.offset + last.length) {
      last.length = Math.max(last.length, r.end - last.offset);
    } else {
      out.push({ offset: r.offset, length: r.end - r.offset, kind: 'data' });
    }
  }
  return out;
}

/**
 * SCSI GET LBA STATUS through sg3_utils' `sg_get_lba_status`, in windows of at
 * most 1 GiB. With `--brief` each descriptor line is `<lba> <blocks> <status>`
 * (status 0 = mapped); a window answers with as many descriptors as fit, so
 * the scan resumes after the last one it got.
 */
export class SgLbaStatusScanner implements MappedRangeScanner {
  readonly #command: string;
  readonly #devices: DeviceDirectories;

  constructor(options: { command?: string; devices?: DeviceDirectories } = {}) {
    this.#command = options.command ?? 'sg_get_lba_status';
    this.#devices = options.devices ?? {};
  }

  async #logicalBlockSize(devicePath: string): Promise<number> {
    const sys = this.#devices.sysBlockDir ?? '/sys/block';
    const text = await readFile(join(sys, basename(devicePath), 'queue', 'logical_block_size'), 'utf8').catch(
      () => '512',
    );
    const size = Number(text.trim());
    return Number.isInteger(size) && size > 0 ? size : 512;
  }

  async scan(options: ScanOptions): Promise<Extent[]> {
    const blockSize = await this.#logicalBlockSize(options.devicePath);
    const totalBlocks = Math.ceil(options.diskSize / blockSize);
    const windowBlocks = Math.floor(MAX_SCAN_WINDOW_BYTES / blockSize);
    const mapped: Array<{ offset: number; length: number }> = [];
    let lba = 0;
    while (lba < totalBlocks) {
      const scanLen = Math.min(windowBlocks, totalBlocks - lba);
      const out = await runCommand(
        this.#command,
        ['--brief', `--lba=${lba}`, `--scan-len=${scanLen}`, options.devicePath],
        options.signal,
      );
      let next = lba;
      for (const line of out.split('\n')) {
        const fields = line.trim().split(/\s+/);
        if (fields.length < 3) continue;
        const start = Number(fields[0]);
        const count = Number(fields[1]);
        if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || count <= 0) continue;
        if (Number(fields[2]) === 0) mapped.push({ offset: start * blockSize, length: count * blockSize });
        next = Math.max(next, start + count);
      }
      if (next <= lba) {
        throw new SyncproxyError(
          `sg_get_lba_status gave no descriptor at LBA ${lba} of ${options.devicePath}`,
          { code: 'protocol', details: { lba, device: options.devicePath } },
        );
      }
      lba = Math.min(next, lba + scanLen);
    }
    return normalizeRanges(mapped, options.diskSize);
  }
}
