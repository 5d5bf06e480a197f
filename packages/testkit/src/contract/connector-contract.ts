import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectSecrets, type TransferOptions } from '@syncproxy/core';
import { createSeededDisk } from '../mock/disk-fixture.js';
import type { MockPlatform } from '../mock/mock-platform.js';
import { captureConsole } from './console-capture.js';
import { type AnyConnector, ContractContext } from './contract-context.js';
import { ContractViolation } from './contract-violation.js';
import { closeStep } from './steps/close.js';
import { configStep } from './steps/config.js';
import { fullBytesStep, fullExtentsStep } from './steps/full-sync.js';
import { incrementalBytesStep, incrementalExtentsStep } from './steps/incremental-sync.js';
import { manifestStep } from './steps/manifest.js';
import { authStep, throttledStep } from './steps/refusals.js';
import { secretsStep } from './steps/secrets.js';
import { hostsStep, prechecksStep, verifyStep } from './steps/session.js';
import { deleteSnapshotStep, notFoundStep } from './steps/snapshots.js';

export type { AnyConnector } from './contract-context.js';
export { ContractViolation } from './contract-violation.js';

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
  /**
   * Engine settings for the syncs (`syncHost` hands `concurrency`, `chunkSizeBytes`, `maxInFlightBytes`,
   * `retry`, `coalesceGapBytes`, `prescan` and `manifestReadBack` to each transfer; the rest is ignored).
   */
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

const MIB = 1024 * 1024;

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

/** The steps in the order they run, each a function of its own file over the shared context. */
const STEPS: ReadonlyArray<readonly [string, (ctx: ContractContext) => Promise<void>]> = [
  [STEP.manifest, manifestStep],
  [STEP.config, configStep],
  [STEP.verify, verifyStep],
  [STEP.hosts, hostsStep],
  [STEP.prechecks, prechecksStep],
  [STEP.fullExtents, fullExtentsStep],
  [STEP.fullBytes, fullBytesStep],
  [STEP.incrementalExtents, incrementalExtentsStep],
  [STEP.incrementalBytes, incrementalBytesStep],
  [STEP.deleteSnapshot, deleteSnapshotStep],
  [STEP.notFound, notFoundStep],
  [STEP.auth, authStep],
  [STEP.throttled, throttledStep],
  [STEP.close, closeStep],
  [STEP.secrets, secretsStep],
];

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

/**
 * The connector contract v1 as steps that share one mock platform, one host
 * and one session (a `ContractContext`), run in order; the syncs go
 * through core's `syncHost`, as products run them.
 * `runConnectorContract` (`@syncproxy/testkit/vitest`) registers them with vitest;
 * {@link checkConnectorContract} runs them and returns a report.
 */
export function createConnectorContract(
  connector: AnyConnector,
  options: ConnectorContractOptions,
): ConnectorContract {
  const title = options.name ?? `connector contract v1: ${connector?.id ?? '(no id)'}`;
  const seed = options.seed ?? 1;
  const diskSizes = options.diskSizesBytes ?? [6 * MIB + MIB / 2 + 4096, 2 * MIB];
  const timeoutMs = options.timeoutMs ?? 120_000;
  const ctx = new ContractContext(connector, {
    seed,
    settleMs: options.settleMs ?? 2000,
    invalidConfigs: options.invalidConfigs ?? [],
    transfer: options.transfer ?? {},
  });
  const outcomes = new Map<string, 'passed' | 'failed'>();
  const steps = new Map(STEPS);
  let ownsWorkDir = false;
  let restoreConsole: (() => void) | undefined;

  return {
    title,
    timeoutMs,
    steps: STEPS.map(([name]) => ({ name, needs: NEEDS[name] ?? [] })),

    async setup() {
      restoreConsole = captureConsole((line) => ctx.observed.push({ source: 'console output', text: line }));
      if (options.workDir !== undefined) ctx.workDir = options.workDir;
      else {
        ctx.workDir = await mkdtemp(join(tmpdir(), 'syncproxy-contract-'));
        ownsWorkDir = true;
      }
      const platform = await options.platform();
      ctx.platform = platform;
      ctx.host = await platform.createHost({
        name: 'contract-vm',
        disks: diskSizes.map((sizeBytes) => ({ sizeBytes })),
      });
      for (const [i, disk] of ctx.host.disks.entries()) {
        ctx.disks.push({ diskId: disk.id, sizeBytes: disk.sizeBytes, imagePath: ctx.imagePath(disk.id) });
        const fixture = createSeededDisk({ seed: seed * 31 + i, sizeBytes: disk.sizeBytes });
        for (const extent of fixture.allocatedExtents()) {
          await platform.writeDisk(disk.id, extent.offset, fixture.read(extent.offset, extent.length));
        }
      }
      ctx.config = platform.config();
      for (const secret of collectSecrets(connector.configSchema, ctx.config)) ctx.secrets.add(secret);
      ctx.snapshotsBefore = await platform.snapshotCount(ctx.host.id);
    },

    async run(name: string) {
      const step = steps.get(name);
      if (step === undefined) throw new Error(`no contract step named ${JSON.stringify(name)}`);
      const failed = (NEEDS[name] ?? []).filter((n) => outcomes.get(n) !== 'passed');
      if (failed.length > 0) {
        outcomes.set(name, 'failed');
        throw new ContractViolation(`not run: it needs "${failed.join('", "')}", which did not pass`);
      }
      try {
        await step(ctx);
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
      if (ctx.session !== undefined) await attempt(() => ctx.session!.close());
      if (ctx.platform !== undefined) await attempt(() => ctx.platform!.close());
      if (ownsWorkDir && ctx.workDir !== undefined)
        await attempt(() => rm(ctx.workDir!, { recursive: true, force: true }));
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
