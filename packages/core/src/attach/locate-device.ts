import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sleep } from '../abortable.js';
import { type Clock, systemClock } from '../clock.js';
import type { DeviceDirectories } from '../contracts/connector.js';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import { abortError } from '../errors/to-syncproxy-error.js';

export interface LocateDeviceOptions {
  /** The volume's serial as the platform reports it (an OCI or OpenStack volume id, an EBS `vol-...`). */
  serial?: string;
  /** The volume's World Wide Name (`6001405...`, `0x6001405...`, `naa.6001405...`): SCSI/iSCSI/FC LUNs. */
  wwn?: string;
  /** Where to look; default the host's `/dev/disk/by-id` and `/sys/block`. */
  devices?: DeviceDirectories;
  /** Give up after this long (default 120,000 ms: an attachment can take a minute to show). */
  timeoutMs?: number;
  /** Time between two looks (default 500 ms). */
  pollMs?: number;
  signal?: AbortSignal;
  /** Time source of the timeout and the polls (tests). */
  clock?: Clock;
}

export const DEFAULT_BY_ID_DIR = '/dev/disk/by-id';
export const DEFAULT_SYS_BLOCK_DIR = '/sys/block';
const DEFAULT_TIMEOUT_MS = 120_000;
const DEFAULT_POLL_MS = 500;
/** virtio-blk carries at most 20 bytes of serial: a 36-character volume id shows as its first 20. */
const VIRTIO_SERIAL_BYTES = 20;

/**
 * Waits until the device of an attached volume appears on this host and
 * returns its path (`/dev/sdc`, `/dev/vdb`, `/dev/nvme1n1`). It looks, in turn:
 * - in `/dev/disk/by-id` for an entry naming the serial or WWN (`virtio-<serial>`,
 *   `scsi-0QEMU_QEMU_HARDDISK_<serial>`, `nvme-Amazon_Elastic_Block_Store_<serial>`,
 *   `wwn-0x<wwn>`, `scsi-3<wwn>`), partitions excluded, resolved through its symlink;
 * - in `/sys/block/<dev>/` at `serial`, `device/serial`, `device/wwid` and the
 *   device identification VPD page `device/vpd_pg83`, for hosts where udev
 *   made no by-id link (minimal images, containers).
 * Throws `timeout` (retryable) naming what it looked for and where, `aborted`
 * when `signal` aborts, `config` without a serial or WWN.
 */
export async function locateDevice(options: LocateDeviceOptions): Promise<string> {
  const wanted = wantedIds(options);
  const byIdDir = options.devices?.byIdDir ?? DEFAULT_BY_ID_DIR;
  const sysBlockDir = options.devices?.sysBlockDir ?? DEFAULT_SYS_BLOCK_DIR;
  const timeoutMs = positive(options.timeoutMs, DEFAULT_TIMEOUT_MS, 'timeoutMs');
  const pollMs = positive(options.pollMs, DEFAULT_POLL_MS, 'pollMs');
  const clock = options.clock ?? systemClock;
  const { signal } = options;
  const started = clock.now();
  while (true) {
    if (signal?.aborted) throw abortError(signal, `locating ${wanted.description}`);
    const found = (await findByIdEntry(byIdDir, wanted)) ?? (await findInSysfs(sysBlockDir, wanted));
    if (found !== undefined) return found;
    const waited = clock.now() - started;
    if (waited >= timeoutMs) {
      throw new SyncproxyError(
        `no device with ${wanted.description} appeared within ${timeoutMs} ms: looked in ${byIdDir} for entries containing ${wanted.names.map((n) => `"${n}"`).join(' or ')} and in ${sysBlockDir}/*/{serial,device/serial,device/wwid,device/vpd_pg83} (is the volume attached to this proxy?)`,
        {
          code: 'timeout',
          retryable: true,
          details: { serial: wanted.serial, wwn: wanted.wwn, byIdDir, sysBlockDir, timeoutMs },
        },
      );
    }
    await sleep(clock, Math.min(pollMs, timeoutMs - waited), signal, `locating ${wanted.description}`);
  }
}

interface WantedIds {
  /** `serial "abc"`, `WWN 6001...`. */
  description: string;
  /** Substrings of a by-id name that identify the device, lowercase. */
  names: string[];
  serial?: string;
  /** Lowercase hex, no `0x`/`naa.` prefix. */
  wwn?: string;
}

function wantedIds(options: LocateDeviceOptions): WantedIds {
  const serial = options.serial?.trim();
  const wwn = options.wwn === undefined ? undefined : normalizeWwn(options.wwn);
  if (!serial && !wwn) {
    throw new SyncproxyError('locateDevice: serial or wwn is required (neither was given)', {
      code: 'config',
      retryable: false,
    });
  }
  if (wwn !== undefined && !/^[0-9a-f]{8,64}$/.test(wwn)) {
    throw new SyncproxyError(`locateDevice: wwn must be hexadecimal (got ${JSON.stringify(options.wwn)})`, {
      code: 'config',
      retryable: false,
    });
  }
  const names: string[] = [];
  const parts: string[] = [];
  if (serial) {
    parts.push(`serial "${serial}"`);
    names.push(serial.toLowerCase());
    if (serial.length > VIRTIO_SERIAL_BYTES)
      names.push(`virtio-${serial.slice(0, VIRTIO_SERIAL_BYTES)}`.toLowerCase());
  }
  if (wwn) {
    parts.push(`WWN ${wwn}`);
    names.push(wwn);
  }
  return { description: parts.join(' or '), names, ...(serial ? { serial } : {}), ...(wwn ? { wwn } : {}) };
}

function normalizeWwn(wwn: string): string {
  return wwn
    .trim()
    .toLowerCase()
    .replace(/^(0x|naa\.|eui\.|wwn-0x)/, '')
    .replace(/[:-]/g, '');
}

function positive(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) {
    throw new SyncproxyError(`locateDevice: ${field} must be a number >= 0 (got ${value})`, {
      code: 'config',
      retryable: false,
    });
  }
  return value;
}

async function findByIdEntry(byIdDir: string, wanted: WantedIds): Promise<string | undefined> {
  let entries: string[];
  try {
    entries = (await readdir(byIdDir)).sort();
  } catch {
    // udev creates the directory with the first disk that has an id: absent means "not yet".
    return undefined;
  }
  for (const entry of entries) {
    const name = entry.toLowerCase();
    if (/-part\d+$/.test(name)) continue;
    if (!wanted.names.some((id) => name.includes(id))) continue;
    const device = await resolved(join(byIdDir, entry));
    if (device !== undefined) return device;
  }
  return undefined;
}

/** The target of a by-id link, once it exists (a link can appear before its device node). */
async function resolved(path: string): Promise<string | undefined> {
  try {
    const target = await realpath(path);
    await stat(target);
    return target;
  } catch {
    return undefined;
  }
}

async function findInSysfs(sysBlockDir: string, wanted: WantedIds): Promise<string | undefined> {
  let devices: string[];
  try {
    devices = (await readdir(sysBlockDir)).sort();
  } catch {
    return undefined;
  }
  for (const device of devices) {
    const dir = join(sysBlockDir, device);
    if (wanted.serial !== undefined) {
      for (const file of ['serial', 'device/serial']) {
        const value = await readText(join(dir, file));
        if (value !== undefined && matchesSerial(value, wanted.serial)) return `/dev/${device}`;
      }
    }
    if (wanted.wwn !== undefined) {
      const wwid = await readText(join(dir, 'device/wwid'));
      if (wwid !== undefined && normalizeWwn(wwid.replace(/^(naa|eui|t10)\./i, '')).includes(wanted.wwn)) {
        return `/dev/${device}`;
      }
      const page83 = await readBytes(join(dir, 'device/vpd_pg83'));
      if (page83 !== undefined && Buffer.from(page83).toString('hex').includes(wanted.wwn))
        return `/dev/${device}`;
    }
  }
  return undefined;
}

function matchesSerial(value: string, serial: string): boolean {
  const v = value.trim().toLowerCase();
  const s = serial.toLowerCase();
  if (v === '') return false;
  return v === s || (s.length > VIRTIO_SERIAL_BYTES && v === s.slice(0, VIRTIO_SERIAL_BYTES));
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

async function readBytes(path: string): Promise<Uint8Array | undefined> {
  try {
    return await readFile(path);
  } catch {
    return undefined;
  }
}
