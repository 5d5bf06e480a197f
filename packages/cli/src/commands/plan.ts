import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ChangedBlockReader, SnapshotRef } from '@syncproxy/core';
import { SyncproxyError } from '@syncproxy/core';
import { type CommandContext, connectorFor, connectorLogger, print, printJson } from '../command-context.js';
import { loadConfigFile } from '../config-file.js';
import { ExitCode } from '../exit-code.js';
import { formatBytes, formatDuration, formatRate } from '../human-units.js';
import { renderTable } from '../table.js';
import type { PlatformOptions } from './hosts.js';

export interface PlanOptions extends PlatformOptions {
  host: string;
  disk?: string[];
  target: string;
  incremental?: boolean;
  /** Bytes per second to assume when no sync of the disk measured one. */
  rate?: number;
}

/** One disk of a plan. */
export interface DiskPlan {
  diskId: string;
  sizeBytes: number;
  /** Data bytes the sync would read; undefined when listing them costs a full read (hash diff). */
  bytesToRead: number | undefined;
  /** The rate the estimate uses: the last sync's measured one, else `--rate`. */
  bytesPerSecond: number | undefined;
  etaMs: number | undefined;
  note?: string;
}

interface StateFile {
  disks?: Record<string, { snapshotId?: string; throughputBytesPerSec?: number }>;
  snapshots?: Record<string, SnapshotRef>;
}

/** Either a reader lists extents from metadata, or it reads the disk to find them (hash diff). */
function extentsCostARead(reader: ChangedBlockReader): boolean {
  return (
    reader.hints?.extentsReadData === true ||
    (reader as { listsExtentsByReading?: unknown }).listsExtentsByReading === true
  );
}

/**
 * `syncproxy plan`: per disk, the bytes a sync would read and how long it would take, before any
 * data is read. It takes a snapshot, lists each disk's extents against the base (`--incremental`:
 * the snapshot the image equals, from the target's state) and deletes the snapshot again. The rate
 * is the last sync's, from the target's state, else `--rate`. A reader whose extents cost a full
 * read (hash diff) is not listed: the plan says so. A connector that tracks changes by hashing
 * (`changeTracking: 'hash'`) gets no snapshot either: taking one reads every disk.
 */
export async function planSync(context: CommandContext, options: PlanOptions): Promise<ExitCode> {
  const connector = connectorFor(context, options.platform);
  const { input } = await loadConfigFile(connector, options.config, context.cwd, context.io);
  const target = resolve(context.cwd, options.target);
  const state = await readState(target);
  const signal = context.io.signal;
  await using session = await connector.connect(input, {
    logger: connectorLogger(context, options),
    ...(signal ? { signal } : {}),
  });
  const host = (await session.listHosts()).find((h) => h.id === options.host);
  if (!host) {
    throw new SyncproxyError(`--host ${options.host}: no such host on the platform (see syncproxy hosts)`, {
      code: 'config',
    });
  }
  const disks = host.disks.filter((d) => !options.disk?.length || options.disk.includes(d.id));
  const wholeRead = (disk: (typeof disks)[number], bytesPerSecond: number | undefined): DiskPlan => ({
    diskId: disk.id,
    sizeBytes: disk.sizeBytes,
    bytesToRead: undefined,
    bytesPerSecond,
    etaMs: bytesPerSecond ? (disk.sizeBytes / bytesPerSecond) * 1000 : undefined,
    note: 'extents cost a full read of the disk here (hash diff): not listed; the sync reads it all',
  });
  const baseOf = (diskId: string): SnapshotRef | undefined => {
    const record = state.disks?.[diskId];
    const base =
      options.incremental && record?.snapshotId !== undefined
        ? state.snapshots?.[record.snapshotId]
        : undefined;
    if (options.incremental && base === undefined) {
      throw new SyncproxyError(
        `--incremental: ${target} has no synced image of ${diskId} to start from (run a full sync first)`,
        { code: 'config' },
      );
    }
    return base;
  };
  const rateOf = (diskId: string) => state.disks?.[diskId]?.throughputBytesPerSec ?? options.rate;
  const plans: DiskPlan[] = [];
  // A hash-diff connector reads every disk whole to take its snapshot (the manifest is the snapshot):
  // taking one to plan would cost the very read the plan exists to foresee.
  if (connector.capabilities.changeTracking === 'hash') {
    for (const disk of disks) {
      baseOf(disk.id);
      plans.push(wholeRead(disk, rateOf(disk.id)));
    }
    return printPlans(context, options, host.id, plans);
  }
  const snapshot = await session.createSnapshot(host, { label: 'syncproxy-plan' });
  try {
    for (const disk of disks) {
      const base = baseOf(disk.id);
      const bytesPerSecond = rateOf(disk.id);
      await using reader = await session.openReader(disk, { snapshot, ...(base ? { base } : {}) });
      if (extentsCostARead(reader)) {
        plans.push(wholeRead(disk, bytesPerSecond));
        continue;
      }
      let bytesToRead = 0;
      for await (const extent of reader.extents(signal ? { signal } : {})) {
        if (extent.kind === 'data') bytesToRead += extent.length;
      }
      plans.push({
        diskId: disk.id,
        sizeBytes: disk.sizeBytes,
        bytesToRead,
        bytesPerSecond,
        etaMs: bytesPerSecond ? (bytesToRead / bytesPerSecond) * 1000 : undefined,
      });
    }
  } finally {
    await session.deleteSnapshot(snapshot).catch(() => {});
  }
  return printPlans(context, options, host.id, plans);
}

function printPlans(
  context: CommandContext,
  options: PlanOptions,
  hostId: string,
  plans: DiskPlan[],
): ExitCode {
  if (options.json) {
    printJson(context, { host: hostId, mode: options.incremental ? 'incremental' : 'full', disks: plans });
    return ExitCode.ok;
  }
  print(
    context,
    renderTable(plans, [
      { header: 'DISK', value: (p) => p.diskId },
      { header: 'SIZE', value: (p) => formatBytes(p.sizeBytes), align: 'right' },
      {
        header: 'TO READ',
        value: (p) => (p.bytesToRead === undefined ? 'all (hash diff)' : formatBytes(p.bytesToRead)),
        align: 'right',
      },
      {
        header: 'RATE',
        value: (p) => (p.bytesPerSecond ? formatRate(p.bytesPerSecond) : '-'),
        align: 'right',
      },
      {
        header: 'ETA',
        value: (p) => (p.etaMs === undefined ? '-' : formatDuration(p.etaMs)),
        align: 'right',
      },
    ]),
  );
  for (const p of plans) if (p.note) print(context, `${p.diskId}: ${p.note}`);
  if (plans.some((p) => !p.bytesPerSecond)) {
    print(context, 'no measured rate for some disks (no sync of them yet): --rate <bytes/s> assumes one');
  }
  return ExitCode.ok;
}

async function readState(target: string): Promise<StateFile> {
  try {
    return JSON.parse(await readFile(join(target, 'syncproxy-state.json'), 'utf8')) as StateFile;
  } catch {
    return {};
  }
}
