import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type ChangedBlockReader,
  type ConnectorContext,
  type ConnectorSession,
  type Host,
  type HostSyncReport,
  imageFileName,
  type Logger,
  type SnapshotRef,
  type SourceConnector,
  type SyncMode,
  syncHost,
  type TransferOptions,
} from '@syncproxy/core';
import type { DiskChange } from '../mock/disk-fixture.js';
import type { MockHostRef, MockPlatform } from '../mock/mock-platform.js';
import { ContractViolation } from './contract-violation.js';
import { RecordingReader } from './recording-reader.js';
import type { ResourceCounts } from './resource-leaks.js';
import { errorTexts, type ObservedText, valueTexts } from './secret-scan.js';

/**
 * A connector of any config type: the suite only feeds it the mock's config.
 * `SourceConnector<unknown>` would refuse most connectors, as the config type
 * appears in parameter position.
 */
// biome-ignore lint/suspicious/noExplicitAny: see above
export type AnyConnector = SourceConnector<any>;

const MIB = 1024 * 1024;
const COMPARE_STEP = MIB;

/** One disk of the contract's host, and the readers the syncs of the suite opened for it. */
export interface DiskRun {
  diskId: string;
  sizeBytes: number;
  imagePath: string;
  full?: RecordingReader;
  incremental?: RecordingReader;
}

/** What the suite's options set for the steps. */
export interface ContractSettings {
  seed: number;
  settleMs: number;
  invalidConfigs: Array<{ input: unknown; path: string }>;
  transfer: Partial<Omit<TransferOptions, 'reader' | 'sink' | 'signal'>>;
}

/**
 * Everything the contract's steps share, in one explicit object: the platform,
 * its host and config, the session, the snapshots and images the syncs made,
 * and what was observed for the secret scan. Each step reads what earlier
 * steps left (through {@link ContractContext.need}) and adds its own.
 */
export class ContractContext {
  readonly connector: AnyConnector;
  readonly settings: ContractSettings;
  /** Every text the connector produced (results, errors, logs, console), for the secret scan. */
  readonly observed: ObservedText[] = [];
  /** Secrets of every config the suite handed the connector. */
  readonly secrets = new Set<string>();
  readonly disks: DiskRun[] = [];
  /** Snapshots the syncs of the suite created, in order. */
  readonly snapshots: SnapshotRef[] = [];
  platform: MockPlatform | undefined;
  host: MockHostRef | undefined;
  config: unknown;
  session: ConnectorSession | undefined;
  listedHost: Host | undefined;
  snapshotsBefore = 0;
  /** What one host snapshot counts on the platform (AWS: one EBS snapshot per disk), seen after the full sync. */
  snapshotUnits: number | undefined;
  changes: DiskChange[] = [];
  workDir: string | undefined;
  resourcesBeforeSession: ResourceCounts | undefined;

  // Every argument is scanned, whatever its order: a connector that logs `(message, fields)` still
  // has its fields checked for secrets.
  readonly logger: Logger = {
    debug: (...args: unknown[]) => this.observe('a debug log line', ...args),
    info: (...args: unknown[]) => this.observe('an info log line', ...args),
    warn: (...args: unknown[]) => this.observe('a warn log line', ...args),
    error: (...args: unknown[]) => this.observe('an error log line', ...args),
  };

  constructor(connector: AnyConnector, settings: ContractSettings) {
    this.connector = connector;
    this.settings = settings;
  }

  observe(source: string, ...args: unknown[]): void {
    this.observed.push({ source, text: args.flatMap((arg) => valueTexts(arg)).join(' ') });
  }

  observeValue(source: string, value: unknown): void {
    for (const text of valueTexts(value)) this.observed.push({ source, text });
  }

  observeError(source: string, error: unknown): void {
    for (const text of errorTexts(error)) this.observed.push({ source, text });
  }

  /** The context the connector connects with: the mock's, and a logger the secret scan reads. */
  connectorContext(): ConnectorContext {
    return { ...this.platform?.context?.(), logger: this.logger };
  }

  /** Runs a connector call, keeping its result or error for the secret scan. */
  async call<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      const value = await run();
      this.observeValue(`the result of ${what}`, value);
      return value;
    } catch (error) {
      this.observeError(`the error of ${what}`, error);
      throw error;
    }
  }

  /** The error a call rejects with, or a violation when it resolves. */
  async rejection(what: string, run: () => Promise<unknown>, expectation: string): Promise<unknown> {
    try {
      await this.call(what, run);
    } catch (error) {
      return error;
    }
    throw new ContractViolation(`${what} resolved; ${expectation}`);
  }

  /** A value an earlier step left, or a violation saying it did not complete. */
  need<T>(value: T | undefined, what: string): T {
    if (value === undefined)
      throw new ContractViolation(`${what} is missing: an earlier step did not complete`);
    return value;
  }

  /** The directory of the syncs' images and state. */
  get target(): string {
    return join(this.need(this.workDir, 'the work directory'), 'target');
  }

  /** The image `syncHost` writes for a disk. */
  imagePath(diskId: string): string {
    return join(this.target, imageFileName(diskId));
  }

  /**
   * Syncs the contract's host with core's `syncHost`, the workflow products
   * use, through a session that records each reader it opens (`run.full` or
   * `run.incremental`) and each snapshot it creates. A failed disk rejects
   * with its error, kept for the secret scan.
   */
  async syncHost(mode: SyncMode): Promise<HostSyncReport> {
    const session = this.need(this.session, 'session');
    const h = this.need(this.listedHost, 'the listed host');
    const recording = recordingSession(session, {
      onSnapshot: (snapshot) => this.snapshots.push(snapshot),
      onReader: (diskId, reader) => {
        const run = this.disks.find((d) => d.diskId === diskId);
        if (run !== undefined) run[mode] = reader;
      },
    });
    const { concurrency, ...transfer } = this.settings.transfer;
    const report = await this.call(`syncHost() (${mode})`, () =>
      syncHost({
        session: recording,
        platform: this.connector.id,
        hostId: h.id,
        target: this.target,
        mode,
        snapshotLabel: `syncproxy contract ${mode}`,
        logger: this.logger,
        ...(concurrency !== undefined ? { concurrency } : {}),
        transfer,
      }),
    );
    const failed = report.disks.find((d) => d.error !== undefined);
    if (failed?.error !== undefined) {
      this.observeError(`the error of the ${mode} sync of disk ${failed.diskId}`, failed.error);
      throw failed.error;
    }
    if (!report.ok)
      throw new ContractViolation(
        `syncHost() (${mode}) did not complete: ${JSON.stringify(report.disks.map((d) => d.status))}`,
      );
    if (report.mode !== mode)
      throw new ContractViolation(`syncHost() ran a ${report.mode} sync; the step asked for ${mode}`);
    return report;
  }

  checkSnapshotRef(snapshot: SnapshotRef, h: Host): void {
    if (typeof snapshot?.id !== 'string' || snapshot.id === '')
      throw new ContractViolation('createSnapshot() returned a snapshot without an id');
    if (snapshot.hostId !== h.id)
      throw new ContractViolation(
        `createSnapshot() returned hostId ${JSON.stringify(snapshot.hostId)}; expected ${h.id}`,
      );
    const roundTrip = JSON.parse(JSON.stringify(snapshot)) as SnapshotRef;
    if (JSON.stringify(roundTrip) !== JSON.stringify(snapshot))
      throw new ContractViolation('a SnapshotRef must be plain JSON (a product stores it)');
    for (const disk of h.disks) {
      if (!snapshot.disks?.some((d) => d.diskId === disk.id))
        throw new ContractViolation(`createSnapshot() has no entry for disk ${disk.id}`);
    }
  }

  checkReaderShape(reader: ChangedBlockReader, run: DiskRun): void {
    if (reader.diskSize !== run.sizeBytes) {
      throw new ContractViolation(
        `disk ${run.diskId}: reader.diskSize is ${reader.diskSize}; the disk is ${run.sizeBytes} bytes`,
      );
    }
    if (!Number.isSafeInteger(reader.granularity) || reader.granularity < 1) {
      throw new ContractViolation(
        `disk ${run.diskId}: reader.granularity ${reader.granularity} must be a positive integer`,
      );
    }
  }

  /** Bytes of the platform disk in 4 KiB blocks that are not all zero. */
  async allocatedOnPlatform(run: DiskRun): Promise<number> {
    const p = this.need(this.platform, 'platform');
    let nonZero = 0;
    for (let offset = 0; offset < run.sizeBytes; offset += COMPARE_STEP) {
      const bytes = await p.readDisk(run.diskId, offset, Math.min(COMPARE_STEP, run.sizeBytes - offset));
      for (let i = 0; i < bytes.length; i += 4096) {
        const end = Math.min(i + 4096, bytes.length);
        for (let j = i; j < end; j++) {
          if (bytes[j] !== 0) {
            nonZero += end - i;
            break;
          }
        }
      }
    }
    return nonZero;
  }

  /** The image equals the platform disk byte for byte, or a violation names the first difference. */
  async compareImage(run: DiskRun, what: string): Promise<void> {
    const p = this.need(this.platform, 'platform');
    const info = await stat(run.imagePath).catch(() => undefined);
    if (info === undefined) throw new ContractViolation(`${what}: disk ${run.diskId}: no image was written`);
    if (info.size !== run.sizeBytes) {
      throw new ContractViolation(
        `${what}: disk ${run.diskId}: the image is ${info.size} bytes; the disk is ${run.sizeBytes}`,
      );
    }
    const file = await open(run.imagePath, 'r');
    try {
      const buffer = new Uint8Array(COMPARE_STEP);
      for (let offset = 0; offset < run.sizeBytes; offset += COMPARE_STEP) {
        const length = Math.min(COMPARE_STEP, run.sizeBytes - offset);
        const { bytesRead } = await file.read(buffer, 0, length, offset);
        const want = await p.readDisk(run.diskId, offset, length);
        // The native compare settles equal pieces; the byte loop below only locates a difference.
        if (
          bytesRead === length &&
          Buffer.compare(buffer.subarray(0, length), want.subarray(0, length)) === 0
        ) {
          continue;
        }
        for (let i = 0; i < length; i++) {
          const got = i < bytesRead ? buffer[i]! : 0;
          if (got !== want[i]) {
            let differing = 0;
            for (let j = i; j < length; j++) if ((j < bytesRead ? buffer[j] : 0) !== want[j]) differing++;
            throw new ContractViolation(
              `${what}: disk ${run.diskId}: the image differs from the platform disk at byte ${offset + i} (expected 0x${hex(want[i]!)}, got 0x${hex(got)}); ${differing} byte(s) differ in [${offset}, ${offset + length})`,
            );
          }
        }
      }
    } finally {
      await file.close();
    }
  }
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}

/**
 * The session with `createSnapshot` and `openReader` observed (a testkit
 * filter): every other member forwarded as it is.
 */
function recordingSession(
  session: ConnectorSession,
  on: { onSnapshot(snapshot: SnapshotRef): void; onReader(diskId: string, reader: RecordingReader): void },
): ConnectorSession {
  return new Proxy(session, {
    get(target, property) {
      if (property === 'createSnapshot') {
        return async (...args: Parameters<ConnectorSession['createSnapshot']>) => {
          const snapshot = await target.createSnapshot(...args);
          on.onSnapshot(snapshot);
          return snapshot;
        };
      }
      if (property === 'openReader') {
        return async (...args: Parameters<ConnectorSession['openReader']>) => {
          const reader = new RecordingReader(await target.openReader(...args));
          on.onReader(args[0].id, reader);
          return reader;
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
