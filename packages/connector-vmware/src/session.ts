import {
  type ConnectorSession,
  type CreateSnapshotOptions,
  type Disk,
  type DiskSnapshotRef,
  diskSnapshotOf,
  type Host,
  type Logger,
  type OpenReaderOptions,
  type PlatformStatus,
  type PrecheckResult,
  type SnapshotRef,
  type SweepOptions,
  type SweepReport,
  SyncproxyError,
  type SyncWarning,
} from '@syncproxy/core';
import { NbdReader, NbdReadThreadPool } from '@syncproxy/nbd';
import type { VimClient } from './client.js';
import type { DataEndpoint, DataPathResolver } from './data-path.js';
import { changedAreaExtents, VmwareDiskReader } from './reader.js';
import { MoRef, text, type XmlNode } from './soap/xml.js';
import { snapshotDescription, sweepSnapshots } from './sweep.js';
import { countSnapshots, readDisks, unreadableReason, type VsphereDisk } from './vsphere-disks.js';

const PLATFORM = 'vmware';
/** vSphere allows 32 snapshots per chain; VMware advises no more than 2-3 for performance (KB 1025279). */
const SNAPSHOT_WARN = 3;
const SNAPSHOT_LIMIT = 31;

const VM_PATHS = [
  'name',
  'config.uuid',
  'config.template',
  'config.guestFullName',
  'config.changeTrackingEnabled',
  'config.hardware.device',
  'runtime.powerState',
];

/** What a SnapshotRef's disk carries for VMware: enough to query CBT and to open VDDK later. */
export interface VmwareDiskSnapshotData {
  vm: string;
  snapshot: string;
  deviceKey: number;
  fileName: string;
  /** The changeId of the disk at this snapshot: the base of the next incremental. */
  changeId: string;
}

export interface SessionOptions {
  client: VimClient;
  dataPath: DataPathResolver;
  logger: Logger;
  signal?: AbortSignal;
  /** Called on close: the dispatcher the session made. */
  onClose?: () => Promise<void>;
}

export class VmwareSession implements ConnectorSession {
  readonly #client: VimClient;
  readonly #dataPath: DataPathResolver;
  readonly #logger: Logger;
  readonly #signal: AbortSignal | undefined;
  readonly #onClose: (() => Promise<void>) | undefined;
  readonly #readers = new Set<VmwareDiskReader>();
  /** The threads this session's readers receive on: warm from one disk to the next, stopped on close. */
  readonly #readThreads = new NbdReadThreadPool();
  readonly #warnings: SyncWarning[] = [];

  constructor(options: SessionOptions) {
    this.#client = options.client;
    this.#dataPath = options.dataPath;
    this.#logger = options.logger;
    this.#signal = options.signal;
    this.#onClose = options.onClose;
  }

  get warnings(): readonly SyncWarning[] {
    return this.#warnings;
  }

  async verify(): Promise<PlatformStatus> {
    const hosts = await this.#client.objectsOfType('HostSystem', ['name'], this.#signal);
    const about = this.#client.content.about;
    return {
      status: 'normal',
      hostCount: hosts.length,
      platformVersion: about.fullName,
      message: `${about.apiType === 'HostAgent' ? 'ESXi' : 'vCenter'} ${about.apiVersion}: ${hosts.length} ESXi host${hosts.length === 1 ? '' : 's'}`,
    };
  }

  async listHosts(): Promise<Host[]> {
    const vms = await this.#client.objectsOfType('VirtualMachine', VM_PATHS, this.#signal);
    return vms
      .filter((vm) => text(vm.props.get('config.template')) !== 'true')
      .map(({ obj, props }) => toHost(obj, props));
  }

  async prechecks(host: Host): Promise<PrecheckResult[]> {
    const props = await this.#client.properties(
      vmRef(host.id),
      [
        'config.changeTrackingEnabled',
        'config.hardware.device',
        'snapshot',
        'guest.toolsRunningStatus',
        'runtime.powerState',
      ],
      this.#signal,
    );
    const results: PrecheckResult[] = [];
    const cbt = text(props.get('config.changeTrackingEnabled')) === 'true';
    results.push(
      cbt
        ? {
            id: 'cbt-enabled',
            title: 'Changed block tracking (CBT) is on',
            status: 'pass',
            detail: `CBT is enabled on ${host.id}`,
          }
        : {
            id: 'cbt-enabled',
            title: 'Changed block tracking (CBT) is on',
            status: 'warn',
            detail: `CBT is off on ${host.id}: the first snapshot enables it (ReconfigVM_Task), and that sync is full`,
            remedy: 'nothing to do, or enable CBT now (ctkEnabled) so the next snapshot starts tracking',
          },
    );
    const snapshots = countSnapshots(props.get('snapshot'));
    results.push({
      id: 'snapshot-count',
      title: 'The VM has room for one more snapshot',
      status: snapshots >= SNAPSHOT_LIMIT ? 'fail' : snapshots >= SNAPSHOT_WARN ? 'warn' : 'pass',
      detail: `${host.id} has ${snapshots} snapshot(s) (vSphere allows 32 in a chain; more than ${SNAPSHOT_WARN - 1} slow the VM down)`,
      ...(snapshots >= SNAPSHOT_WARN
        ? { remedy: 'delete or consolidate snapshots the VM no longer needs' }
        : {}),
    });
    const disks = readDisks(props.get('config.hardware.device'));
    const unreadable = disks.flatMap((d) => unreadableReason(d) ?? []);
    results.push(
      unreadable.length === 0
        ? {
            id: 'disk-kinds',
            title: 'Every disk can be read through a snapshot',
            status: 'pass',
            detail: `${disks.length} disk(s), none independent or physical RDM`,
          }
        : {
            id: 'disk-kinds',
            title: 'Every disk can be read through a snapshot',
            status: 'fail',
            detail: unreadable.join('; '),
            remedy: 'change the disks to dependent mode (or virtual-mode RDM), or leave them out of the sync',
          },
    );
    const tools = text(props.get('guest.toolsRunningStatus'));
    const running = tools === 'guestToolsRunning';
    results.push(
      running
        ? {
            id: 'vmware-tools',
            title: 'VMware Tools run (for quiesced snapshots)',
            status: 'pass',
            detail: 'VMware Tools are running: snapshots can be quiesced',
          }
        : {
            id: 'vmware-tools',
            title: 'VMware Tools run (for quiesced snapshots)',
            status: 'warn',
            detail: `VMware Tools are ${tools ?? 'not reported'}: snapshots are crash-consistent, not quiesced`,
            remedy: 'install or start VMware Tools in the guest for application-consistent syncs',
          },
    );
    return results;
  }

  async createSnapshot(host: Host, options: CreateSnapshotOptions = {}): Promise<SnapshotRef> {
    const signal = anySignal(this.#signal, options.signal);
    const vm = vmRef(host.id);
    const props = await this.#client.properties(vm, ['config.changeTrackingEnabled'], signal);
    if (text(props.get('config.changeTrackingEnabled')) !== 'true') {
      // CBT starts at the next stun/unstun, which the snapshot below is (VDDK guide, "Enable Changed Block Tracking").
      this.#logger.info({ vm: host.id }, 'enabling changed block tracking');
      await this.#client.enableChangeTracking(vm, signal);
    }
    const createdAt = new Date().toISOString();
    const snapshot = await this.#client.createSnapshot(
      vm,
      {
        name: options.label ?? `syncproxy ${createdAt}`,
        description: snapshotDescription(vm.value, createdAt),
        quiesce: options.quiesce ?? false,
      },
      signal,
    );
    try {
      // The changeId of the next incremental comes from the snapshot's own disk backings.
      const disks = readDisks(
        (await this.#client.properties(snapshot, ['config.hardware.device'], signal)).get(
          'config.hardware.device',
        ),
      );
      const refs: DiskSnapshotRef[] = host.disks.map((disk) => {
        const key = deviceKeyOf(disk.id);
        const found = disks.find((d) => d.key === key);
        if (found === undefined) {
          throw new SyncproxyError(
            `disk ${disk.id} is not in snapshot ${snapshot.value} of ${host.id} (refresh the host list)`,
            {
              code: 'not-found',
              retryable: false,
            },
          );
        }
        if (found.changeId === undefined) {
          throw new SyncproxyError(
            `disk ${disk.id} (${found.backingType}) has no CBT changeId in snapshot ${snapshot.value}: its backing does not support changed block tracking`,
            { code: 'unsupported', retryable: false },
          );
        }
        const data: VmwareDiskSnapshotData = {
          vm: vm.value,
          snapshot: snapshot.value,
          deviceKey: key,
          fileName: found.fileName,
          changeId: found.changeId,
        };
        return { diskId: disk.id, sizeBytes: found.capacityBytes, data: { ...data } };
      });
      return {
        id: `${vm.value}/${snapshot.value}`,
        platform: PLATFORM,
        hostId: host.id,
        createdAt,
        disks: refs,
        data: { vm: vm.value, snapshot: snapshot.value },
      };
    } catch (error) {
      await this.#client.removeSnapshot(snapshot).catch((cleanup: unknown) =>
        this.#logger.warn(
          {
            snapshot: snapshot.value,
            error: (cleanup as Error)?.message,
          },
          'could not remove a snapshot after a failed createSnapshot',
        ),
      );
      throw error;
    }
  }

  async openReader(disk: Disk, options: OpenReaderOptions): Promise<VmwareDiskReader> {
    const signal = anySignal(this.#signal, options.signal);
    const target = diskData(options.snapshot, disk.id, 'snapshot');
    const warnings: SyncWarning[] = [];
    let changeId = '*';
    if (options.base !== undefined) {
      const ref = options.base.disks.find((d) => d.diskId === disk.id);
      if (ref === undefined) {
        warnings.push({
          code: 'full-read',
          message: `disk ${disk.id} is not in base snapshot ${options.base.id} (added since): reading its allocated areas in full`,
        });
      } else changeId = readDiskData(ref, 'base').changeId;
    }
    const vm = vmRef(target.data.vm);
    const snapshot = new MoRef('VirtualMachineSnapshot', target.data.snapshot);
    // Fails with not-found for a deleted snapshot, before any process starts.
    const disks = readDisks(
      (await this.#client.properties(snapshot, ['config.hardware.device'], signal)).get(
        'config.hardware.device',
      ),
    );
    const device = disks.find((d) => d.key === target.data.deviceKey);
    if (device === undefined) {
      throw new SyncproxyError(`disk ${disk.id} is not in snapshot ${snapshot.value}`, {
        code: 'not-found',
        retryable: false,
      });
    }
    const query = (startOffset: number, querySignal?: AbortSignal) =>
      this.#client.queryChangedDiskAreas(
        { vm, snapshot, deviceKey: device.key, startOffset, changeId },
        querySignal ?? signal,
      );
    // The first window now, so a reset CBT (cbt-reset) shows before a transfer starts.
    const first = device.capacityBytes > 0 ? await query(0) : undefined;
    const resolved = await this.#dataPath(
      {
        vm: vm.value,
        snapshot: snapshot.value,
        deviceKey: device.key,
        fileName: device.fileName,
        capacityBytes: device.capacityBytes,
      },
      signal ? { signal } : {},
    );
    const endpoint: DataEndpoint =
      typeof resolved === 'string' ? { uri: resolved, close: async () => {} } : resolved;
    let nbd: NbdReader | undefined;
    try {
      nbd = await NbdReader.open({
        uri: endpoint.uri,
        allocationMap: false,
        readThreads: this.#readThreads,
        // Every call of extents() lists again; the first window is the one already fetched.
        changedExtents: {
          [Symbol.asyncIterator]: () =>
            changedAreaExtents(query, device.capacityBytes, first ? { first } : {})[Symbol.asyncIterator](),
        },
        ...(signal ? { signal } : {}),
      });
      const reader: VmwareDiskReader = new VmwareDiskReader({
        nbd,
        endpoint,
        capacityBytes: device.capacityBytes,
        incremental: changeId !== '*',
        warnings,
        onClose: () => this.#readers.delete(reader),
      });
      this.#readers.add(reader);
      return reader;
    } catch (error) {
      await nbd?.close().catch(() => {});
      await endpoint.close();
      throw error;
    }
  }

  async deleteSnapshot(snapshot: SnapshotRef): Promise<void> {
    const morefs = new Set(snapshot.disks.map((d) => readDiskData(d, 'snapshot').snapshot));
    for (const value of morefs) {
      try {
        await this.#client.removeSnapshot(new MoRef('VirtualMachineSnapshot', value), this.#signal);
      } catch (error) {
        // Already gone counts as deleted.
        if (SyncproxyError.hasCode(error, 'not-found')) continue;
        throw error;
      }
    }
  }

  /** The snapshots this SDK made, by their description: see `sweepSnapshots` in sweep.ts. */
  sweep(options?: SweepOptions): Promise<SweepReport> {
    return sweepSnapshots(this.#client, this.#logger, options, this.#signal);
  }

  async close(): Promise<void> {
    const errors: unknown[] = [];
    for (const reader of [...this.#readers]) await reader.close().catch((e: unknown) => errors.push(e));
    await this.#readThreads.close();
    await this.#client
      .logout()
      .catch((e: unknown) => this.#logger.debug({ error: (e as Error)?.message }, 'Logout failed'));
    await this.#onClose?.();
    if (errors.length > 0) throw errors[0];
  }
}

function toHost(obj: MoRef, props: Map<string, XmlNode>): Host {
  const power = text(props.get('runtime.powerState'));
  const disks: Disk[] = readDisks(props.get('config.hardware.device')).map((d: VsphereDisk) => {
    const attributes: Record<string, string | number | boolean> = {
      fileName: d.fileName,
      backing: d.backingType,
      diskMode: d.diskMode,
      changeTracking: d.changeId !== undefined,
    };
    const datastore = /^\[([^\]]+)\]/.exec(d.fileName)?.[1];
    if (datastore) attributes.datastore = datastore;
    return {
      id: `${obj.value}:${d.key}`,
      name: d.label || `disk ${d.key}`,
      sizeBytes: d.capacityBytes,
      ...(d.controllerKey !== undefined && d.unitNumber !== undefined
        ? { device: `${d.controllerKey}:${d.unitNumber}` }
        : {}),
      attributes,
    };
  });
  const attributes: Record<string, string | number | boolean> = {
    changeTrackingEnabled: text(props.get('config.changeTrackingEnabled')) === 'true',
  };
  const uuid = text(props.get('config.uuid'));
  if (uuid) attributes.uuid = uuid;
  const os = text(props.get('config.guestFullName'));
  return {
    id: obj.value,
    name: text(props.get('name')) || obj.value,
    powerState:
      power === 'poweredOn'
        ? 'on'
        : power === 'poweredOff'
          ? 'off'
          : power === 'suspended'
            ? 'suspended'
            : 'unknown',
    ...(os ? { os } : {}),
    disks,
    attributes,
  };
}

function vmRef(hostId: string): MoRef {
  return new MoRef('VirtualMachine', hostId);
}

/** Disk ids are `<vm moref>:<device key>`. */
function deviceKeyOf(diskId: string): number {
  const key = Number(diskId.slice(diskId.lastIndexOf(':') + 1));
  if (!Number.isSafeInteger(key)) {
    throw new SyncproxyError(`disk id ${diskId} is not <vm>:<deviceKey> (not listed by this connector?)`, {
      code: 'config',
      retryable: false,
    });
  }
  return key;
}

function diskData(
  snapshot: SnapshotRef,
  diskId: string,
  role: string,
): { sizeBytes: number; data: VmwareDiskSnapshotData } {
  const ref = diskSnapshotOf(snapshot, diskId, { role, noun: 'disk' });
  return { sizeBytes: ref.sizeBytes, data: readDiskData(ref, role) };
}

function readDiskData(ref: DiskSnapshotRef, role: string): VmwareDiskSnapshotData {
  const d = ref.data as Partial<VmwareDiskSnapshotData>;
  if (
    typeof d.vm !== 'string' ||
    typeof d.snapshot !== 'string' ||
    typeof d.deviceKey !== 'number' ||
    typeof d.fileName !== 'string' ||
    typeof d.changeId !== 'string'
  ) {
    throw new SyncproxyError(
      `${role} of disk ${ref.diskId} carries no VMware snapshot data (not made by this connector?)`,
      {
        code: 'config',
        retryable: false,
      },
    );
  }
  return {
    vm: d.vm,
    snapshot: d.snapshot,
    deviceKey: d.deviceKey,
    fileName: d.fileName,
    changeId: d.changeId,
  };
}

function anySignal(...signals: Array<AbortSignal | undefined>): AbortSignal | undefined {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  if (present.length <= 1) return present[0];
  return AbortSignal.any(present);
}
