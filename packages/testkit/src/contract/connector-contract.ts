import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { format } from 'node:util';
import {
  type ChangedBlockReader,
  type ConnectorContext,
  type ConnectorSession,
  collectSecrets,
  FileSink,
  type Host,
  type Logger,
  type SnapshotRef,
  type SourceConnector,
  SUPPORTED_SPEC_VERSIONS,
  SyncproxyError,
  type TransferOptions,
  toJSONSchema,
  transferDisk,
} from '@syncproxy/core';
import {
  applyChanges,
  changedRanges,
  createSeededDisk,
  type DiskChange,
  seededChanges,
} from '../mock/disk-fixture.js';
import type { MockHostRef, MockPlatform } from '../mock/mock-platform.js';
import { describeExtent, extentBytes, extentProblems, uncoveredRanges } from './extent-checks.js';
import { RecordingReader } from './recording-reader.js';
import { captureResources, type ResourceCounts, waitForResourcesToSettle } from './resource-leaks.js';
import { errorTexts, findLeaks, type ObservedText, valueTexts } from './secret-scan.js';

/**
 * A connector of any config type: the suite only feeds it the mock's config.
 * `SourceConnector<unknown>` would refuse most connectors, as the config type
 * appears in parameter position.
 */
// biome-ignore lint/suspicious/noExplicitAny: see above
export type AnyConnector = SourceConnector<any>;

export interface ConnectorContractOptions {
  /** Starts a fresh mock platform for the suite; the suite closes it at the end. */
  platform: () => MockPlatform | Promise<MockPlatform>;
  /** The describe() title. Default `connector contract v1: <id>`. */
  name?: string;
  /**
   * Sizes of the test host's disks. The first is changed for the incremental,
   * the second is left alone (its incremental must be empty). Default
   * `[6.5 MiB + 4 KiB, 2 MiB]`: not a whole number of MiB, so tails are tested.
   */
  diskSizesBytes?: number[];
  /** Seed of the disk content and of the changes. Default 1. */
  seed?: number;
  /** Config inputs the schema must reject, each with the field path its error must name. */
  invalidConfigs?: Array<{ input: unknown; path: string }>;
  /** Options handed to transferDisk (chunk size, concurrency...). */
  transfer?: Partial<Omit<TransferOptions, 'reader' | 'sink' | 'signal'>>;
  /** How long close() may take to release sockets, timers and child processes. Default 2000 ms. */
  settleMs?: number;
  /** Per-test timeout. Default 120 000 ms. */
  timeoutMs?: number;
  /** Where images are written. Default a fresh directory under the OS temp dir, removed at the end. */
  workDir?: string;
}

export interface ContractStep {
  readonly name: string;
  /** Steps whose results this one builds on. */
  readonly needs: readonly string[];
}

export interface ContractStepResult {
  name: string;
  status: 'passed' | 'failed';
  /** Why it failed. */
  message?: string;
}

export interface ContractReport {
  connector: string;
  passed: boolean;
  steps: ContractStepResult[];
}

/** The suite as plain steps: what `runConnectorContract` registers with vitest. */
export interface ConnectorContract {
  readonly title: string;
  readonly timeoutMs: number;
  readonly steps: readonly ContractStep[];
  setup(): Promise<void>;
  /** Runs one step; throws an Error naming the problem when the connector breaks the contract. */
  run(name: string): Promise<void>;
  teardown(): Promise<void>;
}

/** An error the suite raises when a connector breaks the contract. */
export class ContractViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ContractViolation';
  }
}

const MIB = 1024 * 1024;
const COMPARE_STEP = MIB;

const STEP = {
  manifest: 'manifest: id, displayName, version, specVersion and capabilities are valid',
  config: 'config: the schema accepts the platform config and rejects bad input, naming the field',
  verify: 'connect() and verify(): status normal and a host count',
  hosts: 'listHosts(): the host with its disks and exact sizes',
  prechecks: 'prechecks(): numbered, explained checks with a pass/warn/fail status',
  fullExtents: 'full sync: extents are sorted, non-overlapping, in bounds and granularity-aligned',
  fullBytes:
    'full sync: the image transferDisk writes into a FileSink equals the platform disk byte for byte',
  incrementalExtents: 'incremental: with the previous snapshot as base, the extents cover every changed byte',
  incrementalBytes: 'incremental: applied on the full image, it gives the new disk byte for byte',
  deleteSnapshot: 'deleteSnapshot(): removes the snapshots from the platform',
  notFound: 'not-found: a deleted snapshot rejects with code not-found',
  auth: 'auth: bad credentials reject with code auth, not retryable',
  throttled: 'throttled: a throttling platform rejects with code throttled, retryable',
  close: 'close(): leaves no open sockets, timers or child processes',
  secrets: 'secrets: no config secret appears in errors, logs or returned values',
} as const;

const NEEDS: Record<string, string[]> = {
  [STEP.hosts]: [STEP.verify],
  [STEP.prechecks]: [STEP.hosts],
  [STEP.fullExtents]: [STEP.hosts],
  [STEP.fullBytes]: [STEP.fullExtents],
  [STEP.incrementalExtents]: [STEP.fullExtents],
  [STEP.incrementalBytes]: [STEP.incrementalExtents, STEP.fullBytes],
  [STEP.deleteSnapshot]: [STEP.incrementalExtents],
  [STEP.notFound]: [STEP.deleteSnapshot],
  [STEP.throttled]: [STEP.verify],
  [STEP.secrets]: [STEP.verify],
  [STEP.close]: [STEP.hosts],
};

interface DiskRun {
  diskId: string;
  sizeBytes: number;
  imagePath: string;
  full?: RecordingReader;
  incremental?: RecordingReader;
}

/**
 * The connector contract v1 as steps that share one mock platform, one host
 * and one session, run in order. `runConnectorContract` (`@syncproxy/testkit/vitest`) registers them
 * with vitest; {@link checkConnectorContract} runs them and returns a report.
 */
export function createConnectorContract(
  connector: AnyConnector,
  options: ConnectorContractOptions,
): ConnectorContract {
  const title = options.name ?? `connector contract v1: ${connector?.id ?? '(no id)'}`;
  const seed = options.seed ?? 1;
  const diskSizes = options.diskSizesBytes ?? [6 * MIB + MIB / 2 + 4096, 2 * MIB];
  const settleMs = options.settleMs ?? 2000;
  const timeoutMs = options.timeoutMs ?? 120_000;
  const observed: ObservedText[] = [];
  const outcomes = new Map<string, 'passed' | 'failed'>();
  const secrets = new Set<string>();

  let platform: MockPlatform | undefined;
  let host: MockHostRef | undefined;
  let config: unknown;
  let session: ConnectorSession | undefined;
  let listedHost: Host | undefined;
  const snapshots: SnapshotRef[] = [];
  let snapshotsBefore = 0;
  let changes: DiskChange[] = [];
  let workDir: string | undefined;
  let ownsWorkDir = false;
  const disks: DiskRun[] = [];
  let restoreConsole: (() => void) | undefined;
  let resourcesBeforeSession: ResourceCounts | undefined;

  // Every argument is scanned, whatever its order: a connector that logs `(message, fields)` still
  // has its fields checked for secrets.
  const line =
    (source: string) =>
    (...args: unknown[]): void => {
      observed.push({ source, text: args.flatMap((arg) => valueTexts(arg)).join(' ') });
    };
  const logger: Logger = {
    debug: line('a debug log line'),
    info: line('an info log line'),
    warn: line('a warn log line'),
    error: line('an error log line'),
  };
  function observeValue(source: string, value: unknown): void {
    for (const text of valueTexts(value)) observed.push({ source, text });
  }
  function observeError(source: string, error: unknown): void {
    for (const text of errorTexts(error)) observed.push({ source, text });
  }

  const context = (): ConnectorContext => ({ ...platform?.context?.(), logger });

  /** Runs a connector call, keeping its error for the secret scan. */
  async function call<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      const value = await run();
      observeValue(`the result of ${what}`, value);
      return value;
    } catch (error) {
      observeError(`the error of ${what}`, error);
      throw error;
    }
  }

  /** The error a call rejects with, or a violation when it resolves. */
  async function rejection(what: string, run: () => Promise<unknown>, expectation: string): Promise<unknown> {
    try {
      await call(what, run);
    } catch (error) {
      return error;
    }
    throw new ContractViolation(`${what} resolved; ${expectation}`);
  }

  function need<T>(value: T | undefined, what: string): T {
    if (value === undefined)
      throw new ContractViolation(`${what} is missing: an earlier step did not complete`);
    return value;
  }

  async function transfer(reader: ChangedBlockReader, imagePath: string): Promise<void> {
    const sink = new FileSink(imagePath);
    try {
      await transferDisk({ checkpoint: false, manifest: false, ...options.transfer, reader, sink });
    } finally {
      await sink.close();
    }
  }

  const steps: Record<string, () => Promise<void>> = {
    async [STEP.manifest]() {
      const problems: string[] = [];
      if (typeof connector?.id !== 'string' || !/^[a-z][a-z0-9-]{1,47}$/.test(connector.id)) {
        problems.push(`id ${JSON.stringify(connector?.id)} must be lowercase letters, digits and dashes`);
      }
      if (typeof connector?.displayName !== 'string' || connector.displayName.trim() === '')
        problems.push('displayName must be a non-empty string');
      if (typeof connector?.version !== 'string' || !/^\d+\.\d+\.\d+/.test(connector.version))
        problems.push(`version ${JSON.stringify(connector?.version)} is not semver`);
      if (!(SUPPORTED_SPEC_VERSIONS as readonly string[]).includes(connector?.specVersion)) {
        problems.push(
          `specVersion ${JSON.stringify(connector?.specVersion)} is not one of ${SUPPORTED_SPEC_VERSIONS.join(', ')}`,
        );
      }
      const caps = connector?.capabilities;
      if (!caps || !['native', 'allocation', 'hash'].includes(caps.changeTracking)) {
        problems.push(
          `capabilities.changeTracking ${JSON.stringify(caps?.changeTracking)} must be native, allocation or hash`,
        );
      }
      for (const flag of ['consistentMultiDiskSnapshot', 'mountsDisks', 'quiescedSnapshots'] as const) {
        if (typeof caps?.[flag] !== 'boolean') problems.push(`capabilities.${flag} must be a boolean`);
      }
      if (typeof connector?.configSchema?.safeParse !== 'function')
        problems.push('configSchema must be a zod schema');
      else {
        try {
          toJSONSchema(connector.configSchema);
        } catch (error) {
          problems.push(
            `configSchema cannot be rendered as a form (toJSONSchema failed: ${(error as Error).message})`,
          );
        }
      }
      if (typeof connector?.connect !== 'function') problems.push('connect must be a function');
      if (typeof connector?.networkRequirements !== 'function')
        problems.push('networkRequirements must be a function');
      if (problems.length > 0)
        throw new ContractViolation(`invalid connector manifest: ${problems.join('; ')}`);
    },

    async [STEP.config]() {
      const parsed = connector.configSchema.safeParse(config);
      if (!parsed.success) {
        const paths = parsed.error.issues.map((i) => i.path.join('.') || '(root)').join(', ');
        throw new ContractViolation(
          `configSchema rejects the mock platform's valid config (fields: ${paths})`,
        );
      }
      const cases = [...derivedInvalidConfigs(connector, config), ...(options.invalidConfigs ?? [])];
      if (cases.length === 0)
        throw new ContractViolation('no invalid config to try: the config has no required field');
      for (const { input, path } of cases) {
        const error = await rejection(
          `connect() with ${path ? `a bad ${path}` : 'a non-object config'}`,
          () => connector.connect(input, context()).then((s) => s.close()),
          `a config with a bad ${path || 'root'} must be refused`,
        );
        if (!SyncproxyError.hasCode(error, 'config')) {
          throw new ContractViolation(
            `connect() with a bad ${path || 'root'} rejected with ${describeError(error)}; expected code config`,
          );
        }
        const issues = (error.details?.issues ?? []) as Array<{ path: string }>;
        if (!issues.some((i) => i.path === path) || (path !== '' && !error.message.includes(path))) {
          throw new ContractViolation(
            `connect() with a bad ${path || 'root'}: the config error must name the field "${path}" (message: ${JSON.stringify(error.message)})`,
          );
        }
        if (error.retryable) throw new ContractViolation(`a config error must not be retryable (${path})`);
      }
    },

    async [STEP.verify]() {
      resourcesBeforeSession = captureResources();
      session = await call('connect()', () => connector.connect(config, context()));
      const status = await call('verify()', () => need(session, 'session').verify());
      if (status?.status !== 'normal') {
        throw new ContractViolation(
          `verify() reported status ${JSON.stringify(status?.status)}${status?.message ? ` (${status.message})` : ''}; expected normal`,
        );
      }
      if (!Number.isInteger(status.hostCount) || status.hostCount < 1) {
        throw new ContractViolation(
          `verify() reported hostCount ${JSON.stringify(status.hostCount)}; expected an integer >= 1 (the platform has a host)`,
        );
      }
    },

    async [STEP.hosts]() {
      const want = need(host, 'the mock host');
      const hosts = await call('listHosts()', () => need(session, 'session').listHosts());
      if (!Array.isArray(hosts)) throw new ContractViolation('listHosts() did not return an array');
      const found = hosts.find((h) => h.id === want.id);
      if (found === undefined) {
        throw new ContractViolation(
          `listHosts() did not list host ${want.id} (listed: ${hosts.map((h) => h.id).join(', ') || 'none'})`,
        );
      }
      const problems: string[] = [];
      if (typeof found.name !== 'string' || found.name === '') problems.push('the host has no name');
      for (const disk of want.disks) {
        const listed = found.disks?.find((d) => d.id === disk.id);
        if (listed === undefined) problems.push(`disk ${disk.id} is not listed`);
        else if (listed.sizeBytes !== disk.sizeBytes)
          problems.push(
            `disk ${disk.id} has sizeBytes ${listed.sizeBytes}; the platform disk is ${disk.sizeBytes}`,
          );
      }
      if ((found.disks?.length ?? 0) !== want.disks.length)
        problems.push(`the host lists ${found.disks?.length ?? 0} disks; it has ${want.disks.length}`);
      if (problems.length > 0) throw new ContractViolation(`listHosts(): ${problems.join('; ')}`);
      listedHost = found;
    },

    async [STEP.prechecks]() {
      const checks = await call('prechecks()', () =>
        need(session, 'session').prechecks(need(listedHost, 'the listed host')),
      );
      if (!Array.isArray(checks)) throw new ContractViolation('prechecks() did not return an array');
      const ids = new Set<string>();
      checks.forEach((check, i) => {
        const where = `prechecks()[${i}]`;
        if (typeof check?.id !== 'string' || check.id === '')
          throw new ContractViolation(`${where} has no id`);
        if (ids.has(check.id)) throw new ContractViolation(`${where} repeats id ${check.id}`);
        ids.add(check.id);
        if (typeof check.title !== 'string' || typeof check.detail !== 'string' || check.detail === '') {
          throw new ContractViolation(`${where} (${check.id}) needs a title and a detail that explains it`);
        }
        if (!['pass', 'warn', 'fail'].includes(check.status))
          throw new ContractViolation(`${where} (${check.id}) has status ${JSON.stringify(check.status)}`);
        if (check.status !== 'pass' && !check.remedy)
          throw new ContractViolation(`${where} (${check.id}) is ${check.status} without a remedy`);
      });
    },

    async [STEP.fullExtents]() {
      const s = need(session, 'session');
      const h = need(listedHost, 'the listed host');
      const snapshot = await call('createSnapshot()', () =>
        s.createSnapshot(h, { label: 'syncproxy contract full' }),
      );
      snapshots.push(snapshot);
      checkSnapshotRef(snapshot, h);
      const problems: string[] = [];
      for (const run of disks) {
        const disk = h.disks.find((d) => d.id === run.diskId)!;
        const reader = new RecordingReader(
          await call('openReader() for a full sync', () => s.openReader(disk, { snapshot })),
        );
        run.full = reader;
        try {
          checkReaderShape(reader, run);
          await call(`transferDisk() of disk ${run.diskId} (full)`, () => transfer(reader, run.imagePath));
        } finally {
          await call('reader.close()', () => reader.close());
        }
        for (const p of recordedProblems(reader)) problems.push(`disk ${run.diskId}: ${p}`);
        if (connector.capabilities.changeTracking !== 'hash') {
          const truth = await allocatedOnPlatform(run);
          const data = extentBytes(reader.extentsSeen, 'data');
          if (data >= run.sizeBytes && truth < run.sizeBytes) {
            problems.push(
              `disk ${run.diskId}: the full sync read all ${run.sizeBytes} bytes although only ${truth} are written; with ${connector.capabilities.changeTracking} change tracking it must skip what is not allocated`,
            );
          }
        }
      }
      if (problems.length > 0) throw new ContractViolation(`full sync extents: ${problems.join('; ')}`);
    },

    async [STEP.fullBytes]() {
      for (const run of disks) await compareImage(run, 'full sync');
    },

    async [STEP.incrementalExtents]() {
      const s = need(session, 'session');
      const h = need(listedHost, 'the listed host');
      const base = need(snapshots[0], 'the full-sync snapshot');
      const changed = disks[0]!;
      changes = seededChanges({ seed: seed + 1, sizeBytes: changed.sizeBytes });
      const p = need(platform, 'platform');
      const touched = changedRanges(changes);
      const before = await Promise.all(touched.map((r) => p.readDisk(changed.diskId, r.offset, r.length)));
      await applyChanges(
        {
          write: (offset, data) => p.writeDisk(changed.diskId, offset, data),
          writeZeroes: (offset, length) => p.writeZeroes(changed.diskId, offset, length),
        },
        changes,
      );
      // The bytes whose value changed: rewriting zeroes over a hole changes nothing.
      const ranges: Array<{ offset: number; length: number }> = [];
      for (const [i, r] of touched.entries()) {
        const after = await p.readDisk(changed.diskId, r.offset, r.length);
        differingRanges(before[i]!, after, r.offset, ranges);
      }
      const snapshot = await call('createSnapshot()', () =>
        s.createSnapshot(h, { label: 'syncproxy contract incremental' }),
      );
      snapshots.push(snapshot);
      checkSnapshotRef(snapshot, h);
      const problems: string[] = [];
      for (const run of disks) {
        const disk = h.disks.find((d) => d.id === run.diskId)!;
        const reader = new RecordingReader(
          await call('openReader() for an incremental', () => s.openReader(disk, { snapshot, base })),
        );
        run.incremental = reader;
        try {
          checkReaderShape(reader, run);
          await call(`transferDisk() of disk ${run.diskId} (incremental)`, () =>
            transfer(reader, run.imagePath),
          );
        } finally {
          await call('reader.close()', () => reader.close());
        }
        const seen = reader.extentsSeen;
        for (const problem of recordedProblems(reader)) problems.push(`disk ${run.diskId}: ${problem}`);
        if (run === changed) {
          const missing = uncoveredRanges(ranges, seen);
          if (missing.length > 0) {
            const shown = mergeNear(missing);
            const bytes = missing.reduce((n, m) => n + m.length, 0);
            problems.push(
              `disk ${run.diskId}: missed ${bytes} changed byte(s) in ${shown
                .map((m) => describeExtent(m))
                .slice(0, 5)
                .join(', ')}${shown.length > 5 ? `, and ${shown.length - 5} more ranges` : ''}`,
            );
          }
          const granules = touchedGranules(ranges, reader.granularity);
          const total = Math.ceil(run.sizeBytes / reader.granularity);
          if (granules < total && extentBytes(seen) >= run.sizeBytes) {
            problems.push(
              `disk ${run.diskId}: the incremental covers the whole disk although the changes touch ${granules} of ${total} blocks of ${reader.granularity} bytes`,
            );
          }
        } else if (seen.length > 0) {
          problems.push(
            `disk ${run.diskId} did not change, yet its incremental yields ${seen
              .map((e) => describeExtent(e))
              .slice(0, 4)
              .join(', ')}${seen.length > 4 ? ', ...' : ''}`,
          );
        }
      }
      if (problems.length > 0) throw new ContractViolation(`incremental extents: ${problems.join('; ')}`);
    },

    async [STEP.incrementalBytes]() {
      for (const run of disks) await compareImage(run, 'incremental');
    },

    async [STEP.deleteSnapshot]() {
      const p = need(platform, 'platform');
      const h = need(host, 'the mock host');
      const held = await p.snapshotCount(h.id);
      if (held < snapshotsBefore + 2) {
        throw new ContractViolation(
          `the platform holds ${held} snapshots of host ${h.id} after two createSnapshot() calls (it held ${snapshotsBefore} before)`,
        );
      }
      for (const snapshot of snapshots)
        await call('deleteSnapshot()', () => need(session, 'session').deleteSnapshot(snapshot));
      const left = await p.snapshotCount(h.id);
      if (left !== snapshotsBefore) {
        throw new ContractViolation(
          `deleteSnapshot() left ${left - snapshotsBefore} snapshot(s) of host ${h.id} on the platform`,
        );
      }
    },

    async [STEP.notFound]() {
      const s = need(session, 'session');
      const snapshot = need(snapshots[0], 'the deleted snapshot');
      const disk = need(listedHost, 'the listed host').disks[0]!;
      const error = await rejection(
        'opening and reading a deleted snapshot',
        async () => {
          const reader = await s.openReader(disk, { snapshot });
          try {
            for await (const extent of reader.extents()) {
              await reader.read(extent.offset, Math.min(extent.length, reader.granularity));
              break;
            }
          } finally {
            await reader.close();
          }
        },
        'a snapshot that was deleted must reject with code not-found',
      );
      if (!SyncproxyError.hasCode(error, 'not-found')) {
        throw new ContractViolation(
          `a deleted snapshot rejected with ${describeError(error)}; expected code not-found`,
        );
      }
      if (error.retryable) throw new ContractViolation('a not-found error must not be retryable');
    },

    async [STEP.auth]() {
      const p = need(platform, 'platform');
      if (p.badCredentials === undefined) {
        const found = collectSecrets(connector.configSchema, config);
        if (found.length > 0) {
          throw new ContractViolation(
            `the mock platform offers no badCredentials() but the config has ${found.length} secret field(s): a platform with credentials must show bad ones are refused`,
          );
        }
        return;
      }
      const bad = p.badCredentials(config);
      for (const secret of collectSecrets(connector.configSchema, bad)) secrets.add(secret);
      const error = await rejection(
        'connect() and verify() with bad credentials',
        async () => {
          const badSession = await connector.connect(bad, context());
          try {
            await badSession.verify();
          } finally {
            await badSession.close();
          }
        },
        'bad credentials must be refused with code auth',
      );
      if (!SyncproxyError.hasCode(error, 'auth'))
        throw new ContractViolation(
          `bad credentials rejected with ${describeError(error)}; expected code auth`,
        );
      if (error.retryable)
        throw new ContractViolation(
          'an auth error must not be retryable: retrying bad credentials can lock the account',
        );
    },

    async [STEP.throttled]() {
      const p = need(platform, 'platform');
      if (p.throttle === undefined) {
        const endpoints = connector.networkRequirements(config);
        if (endpoints.length > 0) {
          throw new ContractViolation(
            `the mock platform offers no throttle() but the connector needs ${endpoints.length} network endpoint(s): a platform with an API must show throttling is reported`,
          );
        }
        return;
      }
      const stop = p.throttle();
      let error: unknown;
      try {
        error = await rejection(
          'listHosts() while throttled',
          () => need(session, 'session').listHosts(),
          'a throttled call must reject with code throttled',
        );
      } finally {
        stop();
      }
      if (!SyncproxyError.hasCode(error, 'throttled'))
        throw new ContractViolation(
          `throttling rejected with ${describeError(error)}; expected code throttled`,
        );
      if (!error.retryable) throw new ContractViolation('a throttled error must be retryable');
    },

    async [STEP.close]() {
      const s = need(session, 'session');
      session = undefined;
      await call('close()', () => s.close());
      // First the session used by the whole suite, against what was open before it connected;
      // then a fresh session through every kind of call. Waiting for the first to settle keeps
      // a socket it leaked from closing during the second's window and hiding a leak there.
      const leaked = await waitForResourcesToSettle(
        need(resourcesBeforeSession, 'the resource count'),
        settleMs,
      );
      if (leaked.length > 0) {
        throw new ContractViolation(
          `close() left open, ${settleMs} ms after it resolved: ${leaked.join(', ')}`,
        );
      }
      const before = captureResources();
      const fresh = await call('connect()', () => connector.connect(config, context()));
      try {
        await call('verify()', () => fresh.verify());
        const hosts = await call('listHosts()', () => fresh.listHosts());
        const h =
          hosts.find((x) => x.id === need(host, 'the mock host').id) ?? need(listedHost, 'the listed host');
        const snapshot = await call('createSnapshot()', () =>
          fresh.createSnapshot(h, { label: 'syncproxy contract close' }),
        );
        try {
          const reader = await call('openReader()', () => fresh.openReader(h.disks[0]!, { snapshot }));
          try {
            for await (const extent of reader.extents()) {
              await call('read()', () =>
                reader.read(extent.offset, Math.min(extent.length, reader.granularity)),
              );
              break;
            }
          } finally {
            await call('reader.close()', () => reader.close());
          }
        } finally {
          await call('deleteSnapshot()', () => fresh.deleteSnapshot(snapshot));
        }
      } finally {
        await call('close()', () => fresh.close());
      }
      const leaks = await waitForResourcesToSettle(before, settleMs);
      if (leaks.length > 0) {
        throw new ContractViolation(
          `close() left open, ${settleMs} ms after it resolved: ${leaks.join(', ')}`,
        );
      }
    },
    async [STEP.secrets]() {
      const leaks = findLeaks(observed, [...secrets]);
      if (leaks.length > 0) throw new ContractViolation(`secret leaked: ${leaks.join('; ')}`);
    },
  };

  function checkSnapshotRef(snapshot: SnapshotRef, h: Host): void {
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

  function checkReaderShape(reader: ChangedBlockReader, run: DiskRun): void {
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

  async function allocatedOnPlatform(run: DiskRun): Promise<number> {
    const p = need(platform, 'platform');
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

  async function compareImage(run: DiskRun, what: string): Promise<void> {
    const p = need(platform, 'platform');
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

  return {
    title,
    timeoutMs,
    steps: Object.keys(steps).map((name) => ({ name, needs: NEEDS[name] ?? [] })),

    async setup() {
      restoreConsole = captureConsole((line) => observed.push({ source: 'console output', text: line }));
      if (options.workDir !== undefined) workDir = options.workDir;
      else {
        workDir = await mkdtemp(join(tmpdir(), 'syncproxy-contract-'));
        ownsWorkDir = true;
      }
      platform = await options.platform();
      host = await platform.createHost({
        name: 'contract-vm',
        disks: diskSizes.map((sizeBytes) => ({ sizeBytes })),
      });
      for (const [i, disk] of host.disks.entries()) {
        disks.push({ diskId: disk.id, sizeBytes: disk.sizeBytes, imagePath: join(workDir, `disk-${i}.img`) });
        const fixture = createSeededDisk({ seed: seed * 31 + i, sizeBytes: disk.sizeBytes });
        for (const extent of fixture.allocatedExtents()) {
          await platform.writeDisk(disk.id, extent.offset, fixture.read(extent.offset, extent.length));
        }
      }
      config = platform.config();
      for (const secret of collectSecrets(connector.configSchema, config)) secrets.add(secret);
      snapshotsBefore = await platform.snapshotCount(host.id);
    },

    async run(name: string) {
      const step = steps[name];
      if (step === undefined) throw new Error(`no contract step named ${JSON.stringify(name)}`);
      const failed = (NEEDS[name] ?? []).filter((n) => outcomes.get(n) !== 'passed');
      if (failed.length > 0) {
        outcomes.set(name, 'failed');
        throw new ContractViolation(`not run: it needs "${failed.join('", "')}", which did not pass`);
      }
      try {
        await step();
        outcomes.set(name, 'passed');
      } catch (error) {
        outcomes.set(name, 'failed');
        throw error;
      }
    },

    async teardown() {
      const errors: unknown[] = [];
      const attempt = async (run: () => Promise<unknown>): Promise<void> => {
        try {
          await run();
        } catch (error) {
          errors.push(error);
        }
      };
      if (session !== undefined) await attempt(() => session!.close());
      if (platform !== undefined) await attempt(() => platform!.close());
      if (ownsWorkDir && workDir !== undefined)
        await attempt(() => rm(workDir!, { recursive: true, force: true }));
      restoreConsole?.();
      if (errors.length > 0) throw errors[0];
    },
  };
}

/**
 * Runs the whole contract and reports each step instead of throwing: for a
 * product's own checks, and for testing that the suite catches broken connectors.
 */
export async function checkConnectorContract(
  connector: AnyConnector,
  options: ConnectorContractOptions,
): Promise<ContractReport> {
  const contract = createConnectorContract(connector, options);
  const steps: ContractStepResult[] = [];
  try {
    await contract.setup();
    for (const step of contract.steps) {
      try {
        await contract.run(step.name);
        steps.push({ name: step.name, status: 'passed' });
      } catch (error) {
        steps.push({
          name: step.name,
          status: 'failed',
          message: (error as Error)?.message ?? String(error),
        });
      }
    }
  } finally {
    await contract.teardown();
  }
  return { connector: connector?.id ?? '(no id)', passed: steps.every((s) => s.status === 'passed'), steps };
}

/**
 * Bad inputs derived from the valid config: the root not an object, and each
 * required top-level field removed. Each must fail naming that field.
 */
function derivedInvalidConfigs(
  connector: AnyConnector,
  config: unknown,
): Array<{ input: unknown; path: string }> {
  const cases: Array<{ input: unknown; path: string }> = [{ input: 'not an object', path: '' }];
  if (config === null || typeof config !== 'object' || Array.isArray(config)) return cases;
  let required: string[] = [];
  try {
    const schema = toJSONSchema(connector.configSchema) as { required?: unknown };
    if (Array.isArray(schema.required))
      required = schema.required.filter((k): k is string => typeof k === 'string');
  } catch {
    required = [];
  }
  for (const key of required) {
    if (!(key in (config as Record<string, unknown>))) continue;
    const input = { ...(config as Record<string, unknown>) };
    delete input[key];
    cases.push({ input, path: key });
  }
  return cases;
}

/** Ranges closer than 4 KiB joined, for messages: random data has bytes that happen to stay equal. */
function mergeNear(
  ranges: ReadonlyArray<{ offset: number; length: number }>,
): Array<{ offset: number; length: number }> {
  const out: Array<{ offset: number; length: number }> = [];
  for (const r of ranges) {
    const last = out[out.length - 1];
    if (last !== undefined && r.offset - (last.offset + last.length) < 4096)
      last.length = r.offset + r.length - last.offset;
    else out.push({ ...r });
  }
  return out;
}

/** Appends the byte ranges where `a` and `b` differ, offset by `base`. */
function differingRanges(
  a: Uint8Array,
  b: Uint8Array,
  base: number,
  out: Array<{ offset: number; length: number }>,
): void {
  let start = -1;
  for (let i = 0; i <= a.length; i++) {
    const differs = i < a.length && a[i] !== b[i];
    if (differs && start === -1) start = i;
    if (!differs && start !== -1) {
      out.push({ offset: base + start, length: i - start });
      start = -1;
    }
  }
}

/** Problems of the first pass, and any later pass that yielded something else. */
function recordedProblems(reader: RecordingReader): string[] {
  if (reader.passes.length === 0) return ['extents() was never listed by the engine'];
  const problems = extentProblems(reader.extentsSeen, reader);
  const first = JSON.stringify(reader.extentsSeen);
  reader.passes.slice(1).forEach((pass, i) => {
    if (JSON.stringify(pass) !== first) {
      problems.push(
        `extents() yielded ${pass.length} extents on call ${i + 2} but ${reader.extentsSeen.length} on call 1: it must list the same extents every time`,
      );
    }
  });
  return problems;
}

function touchedGranules(
  ranges: ReadonlyArray<{ offset: number; length: number }>,
  granularity: number,
): number {
  const touched = new Set<number>();
  for (const r of ranges) {
    for (
      let g = Math.floor(r.offset / granularity);
      g <= Math.floor((r.offset + r.length - 1) / granularity);
      g++
    )
      touched.add(g);
  }
  return touched.size;
}

function describeError(error: unknown): string {
  if (SyncproxyError.isInstance(error))
    return `code ${error.code}${error.retryable ? ' (retryable)' : ''}: ${JSON.stringify(error.message)}`;
  if (error instanceof Error)
    return `a ${error.name} that is not a SyncproxyError: ${JSON.stringify(error.message)}`;
  return `a non-error value ${JSON.stringify(String(error))}`;
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}

/** Tees console output into `sink` for the secret scan; returns the undo. */
function captureConsole(sink: (line: string) => void): () => void {
  const methods = ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const;
  const originals = methods.map((m) => console[m]);
  methods.forEach((m, i) => {
    const original = originals[i]!;
    console[m] = (...args: unknown[]) => {
      sink(format(...args));
      original.apply(console, args);
    };
  });
  return () =>
    methods.forEach((m, i) => {
      console[m] = originals[i]!;
    });
}
