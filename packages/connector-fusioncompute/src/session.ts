import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import {
  type ChangedBlockReader,
  type Clock,
  type ConnectorSession,
  type CreateSnapshotOptions,
  createDispatcher,
  type Disk,
  type Host,
  type Logger,
  type OpenReaderOptions,
  type PlatformStatus,
  type PrecheckResult,
  type SnapshotRef,
  type SweepOptions,
  type SweepReport,
  SyncproxyError,
} from '@syncproxy/core';
import type { Dispatcher } from 'undici';
import { BackupLease } from './backup-lease.js';
import { listChangedExtents } from './changed-blocks.js';
import type { FcBackupResource, FcSite, FcVm, FusionComputeClient } from './client.js';
import { PLATFORM } from './client.js';
import type { FusionComputeConfig } from './config.js';
import type { DataRequestShape } from './data-request.js';
import type { HostLimits } from './host-limits.js';
import { FcSnapshotReader } from './reader.js';
import { enforceSnapshotRules, precheckResults } from './rules.js';
import { SWEEP_TAG, sweepFusionCompute } from './sweep.js';

const GIB = 1024 ** 3;

export interface FcSessionOptions {
  config: FusionComputeConfig;
  client: FusionComputeClient;
  hostLimits: HostLimits;
  /** Bytes per `quantityGB`: 1 GiB but in tests against a shrunk mock. */
  gbBytes: number;
  dataRequest: DataRequestShape;
  logger: Logger;
  clock: Clock;
  hostOverrides: Record<string, string>;
  httpTimeoutSec?: number;
  /** The proxy's address the CNAs see; default: the local address of the route to the VRM. */
  proxyIp?: string;
  signal?: AbortSignal;
  onClose: () => Promise<void>;
}

/** One disk's part of a CBTbackup snapshot, as stored in {@link SnapshotRef} (plain JSON). */
interface DiskSnapData {
  volumeUri: string;
  snapUuid: string;
  chgID?: string;
  volCBTCreateTime?: string;
}

/** A connected FusionCompute VRM. */
export class FusionComputeSession implements ConnectorSession {
  readonly #o: FcSessionOptions;
  readonly #client: FusionComputeClient;
  readonly #dispatchers = new Map<string, Dispatcher>();
  readonly #readers = new Set<ChangedBlockReader>();
  #sites: FcSite[] | undefined;
  #proxyIp: Promise<string> | undefined;
  #closed = false;

  constructor(options: FcSessionOptions) {
    this.#o = options;
    this.#client = options.client;
  }

  async verify(): Promise<PlatformStatus> {
    const sites = await this.#siteList();
    let hostCount = 0;
    for (const site of sites) hostCount += (await this.#client.hosts(site.uri, this.#o.signal)).length;
    return {
      status: 'normal',
      hostCount,
      platformVersion: `FusionCompute REST ${this.#client.apiVersion ?? 'unknown'}`,
    };
  }

  async listHosts(): Promise<Host[]> {
    const out: Host[] = [];
    for (const site of await this.#siteList()) {
      for (const listed of await this.#client.vms(site.uri, this.#o.signal)) {
        const vm = listed.vmConfig?.disks ? listed : await this.#client.vm(listed.uri, this.#o.signal);
        out.push(hostOf(vm, this.#o.gbBytes));
      }
    }
    return out;
  }

  async prechecks(host: Host): Promise<PrecheckResult[]> {
    return precheckResults(await this.#ruleInput(host));
  }

  async createSnapshot(host: Host, options: CreateSnapshotOptions = {}): Promise<SnapshotRef> {
    const signal = options.signal ?? this.#o.signal;
    const input = await this.#ruleInput(host);
    enforceSnapshotRules(input);
    const { vm } = input;
    const createdAt = new Date(this.#o.clock.now()).toISOString();
    const name = `syncproxy-${createdAt.replace(/[-:.TZ]/g, '').slice(0, 14)}`;
    const description = `${SWEEP_TAG}${options.label ?? ''}`.slice(0, 128);
    let snapshotUri: string | undefined;
    try {
      const task = await this.#client.createSnapshot(vm.uri, { name, description }, signal);
      snapshotUri = task.uri;
      await this.#client.waitForTask(
        task,
        'CreateSnapshot',
        (percent) => this.#o.logger.debug({ vm: vm.urn, percent }, 'snapshot progress'),
        signal,
      );
      const snap = await this.#client.snapshot(snapshotUri, signal);
      const disks = vm.vmConfig?.disks ?? [];
      return {
        id: snap.urn,
        platform: PLATFORM,
        hostId: vm.urn,
        createdAt,
        data: { uri: snap.uri, vmUri: vm.uri, ...(vm.hostUrn ? { hostUrn: vm.hostUrn } : {}) },
        disks: (snap.volsnapshots ?? []).map((v) => {
          const disk = disks.find((d) => d.volumeUrn === v.volumeUrn);
          const data: DiskSnapData = {
            volumeUri: v.volumeUri,
            snapUuid: v.snapUuid,
            ...(v.chgID ? { chgID: v.chgID } : {}),
            ...(v.volCBTCreateTime ? { volCBTCreateTime: v.volCBTCreateTime } : {}),
          };
          return {
            diskId: v.volumeUrn,
            sizeBytes: (disk?.quantityGB ?? 0) * this.#o.gbBytes,
            data: data as unknown as Record<string, unknown>,
          };
        }),
      };
    } catch (error) {
      // A snapshot that exists but is not handed back is referenced by no state: remove it now.
      const uri = snapshotUri;
      if (uri !== undefined) {
        await this.#client.deleteSnapshot(uri).catch((e: unknown) =>
          this.#o.logger.warn(
            {
              snapshot: uri,
              error: (e as Error)?.message,
            },
            'removing a half-made snapshot failed; sweep() removes it later',
          ),
        );
      }
      throw error;
    }
  }

  async openReader(disk: Disk, options: OpenReaderOptions): Promise<ChangedBlockReader> {
    const signal = options.signal ?? this.#o.signal;
    const snap = diskSnapOf(options.snapshot, disk.id);
    const base = options.base ? diskSnapOf(options.base, disk.id) : undefined;
    const sizeBytes = options.snapshot.disks.find((d) => d.diskId === disk.id)?.sizeBytes ?? disk.sizeBytes;
    const advanced = this.#o.config.advanced;
    const list = (chgID?: string) =>
      listChangedExtents(this.#client, {
        volumeUri: snap.volumeUri,
        snapUuid: snap.snapUuid,
        ...(snap.volCBTCreateTime ? { volCBTCreateTime: snap.volCBTCreateTime } : {}),
        ...(chgID ? { chgID } : {}),
        diskSize: sizeBytes,
        // A test-only GB size is checked against where getcbt says the volume ends.
        checkVolumeEnd: this.#o.gbBytes !== GIB,
        pageBlocks: advanced.cbtPageBlocks,
        encoding: advanced.bitmapEncoding,
        ...(signal ? { signal } : {}),
      });
    let listed: Awaited<ReturnType<typeof list>>;
    if (base === undefined) {
      listed = await list();
    } else if (base.chgID === undefined || base.volCBTCreateTime !== snap.volCBTCreateTime) {
      // The base's changes are unknowable: the host sync (syncHost) turns this into a full sync with this warning.
      throw new SyncproxyError(
        `disk ${disk.id}: its CBT was restarted at ${snap.volCBTCreateTime ?? 'an unknown time'}, after the base snapshot (CBT since ${base.volCBTCreateTime ?? 'unknown'}); HA, a snapshot restore, a volume expansion or a host restart resets CBT, so the disk needs a full sync`,
        {
          code: 'cbt-reset',
          retryable: false,
          platform: PLATFORM,
          details: { disk: disk.id, base: options.base!.id },
        },
      );
    } else {
      // A chgID the VRM no longer knows answers getcbt with a cbt-reset error of its own.
      listed = await list(base.chgID);
    }
    const { extents } = listed;
    const hostUrn = String(options.snapshot.data?.hostUrn ?? 'unknown-host');
    const limiter = this.#o.hostLimits.of(hostUrn);
    const lease = new BackupLease({
      client: this.#client,
      volumeUri: snap.volumeUri,
      snapUrn2: options.snapshot.id,
      proxyIp: await this.#proxyAddress(),
      delaySec: advanced.backupDelaySec,
      description: `${SWEEP_TAG}${options.snapshot.id}`,
      limiter,
      clock: this.#o.clock,
      logger: this.#o.logger,
    });
    const reader = new FcSnapshotReader({
      diskId: disk.id,
      diskSize: sizeBytes,
      granularity: listed.blockSizeBytes || 512,
      extents,
      incremental: base !== undefined,
      warnings: [],
      lease,
      limiter,
      dispatcherFor: (resource) => this.#dataDispatcher(resource),
      dataRequest: this.#o.dataRequest,
      transMode: advanced.transMode,
      errorCodes: this.#client.errorCodes,
    });
    this.#readers.add(reader);
    const close = reader.close.bind(reader);
    reader.close = async () => {
      this.#readers.delete(reader);
      await close();
    };
    return reader;
  }

  async deleteSnapshot(snapshot: SnapshotRef): Promise<void> {
    const uri = snapshot.data?.uri;
    if (typeof uri !== 'string')
      throw new SyncproxyError(
        `snapshot ${snapshot.id} has no uri in its data; it was not made by this connector`,
        {
          code: 'config',
          retryable: false,
          platform: PLATFORM,
        },
      );
    await this.#client.deleteSnapshot(uri, this.#o.signal);
  }

  /** Deletes the snapshots and backup resources whose description carries the SDK's tag (sweep.ts). */
  async sweep(options?: SweepOptions): Promise<SweepReport> {
    return sweepFusionCompute(this.#client, await this.#siteList(), this.#o.logger, options, this.#o.signal);
  }

  /** The compute nodes' data endpoints a preflight should test (the port the config expects). */
  async dataEndpoints(): Promise<Array<{ host: string; port: number; name: string }>> {
    const out: Array<{ host: string; port: number; name: string }> = [];
    for (const site of await this.#siteList())
      for (const h of await this.#client.hosts(site.uri, this.#o.signal))
        out.push({ host: h.ip, port: this.#o.config.advanced.cnaDataPort, name: h.name });
    return out;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      for (const reader of [...this.#readers]) await reader.close().catch(() => {});
      await this.#client
        .logout()
        .catch((error: unknown) =>
          this.#o.logger.debug({ error: (error as Error)?.message }, 'logout failed'),
        );
    } finally {
      for (const dispatcher of this.#dispatchers.values()) await dispatcher.close().catch(() => {});
      this.#dispatchers.clear();
      await this.#o.onClose();
    }
  }

  async #siteList(): Promise<FcSite[]> {
    this.#sites ??= await this.#client.sites(this.#o.signal);
    return this.#sites;
  }

  async #ruleInput(host: Host) {
    const uri = host.attributes?.uri;
    if (typeof uri !== 'string')
      throw new SyncproxyError(`host ${host.id} has no uri attribute; pass a host from listHosts()`, {
        code: 'config',
        retryable: false,
        platform: PLATFORM,
      });
    const vm = await this.#client.vm(uri, this.#o.signal);
    const snapshots = await this.#client.snapshots(uri, this.#o.signal);
    const siteUri = uri.replace(/\/vms\/.*$/, '');
    const hosts = await this.#client.hosts(siteUri, this.#o.signal);
    return { vm, snapshotCount: snapshots.length, hosts, cnaDataPort: this.#o.config.advanced.cnaDataPort };
  }

  #dataDispatcher(resource: FcBackupResource): Dispatcher {
    const key = `${resource.hostIP}:${resource.hostPort}:${resource.caCert ?? ''}`;
    let dispatcher = this.#dispatchers.get(key);
    if (dispatcher === undefined) {
      dispatcher = createDispatcher({
        // TLS to the CNA is verified against the CA the VRM hands out with the resource.
        ...(resource.caCert ? { ca: resource.caCert } : {}),
        ...(this.#o.httpTimeoutSec !== undefined ? { httpTimeoutSec: this.#o.httpTimeoutSec } : {}),
        hostOverrides: this.#o.hostOverrides,
        connections: 8,
      });
      this.#dispatchers.set(key, dispatcher);
    }
    return dispatcher;
  }

  /** The address of this proxy on the route to the VRM: what `backupresources` wants as `ip`. */
  #proxyAddress(): Promise<string> {
    if (this.#o.proxyIp !== undefined) return Promise.resolve(this.#o.proxyIp);
    this.#proxyIp ??= (async () => {
      const url = new URL(this.#client.baseUrl);
      const name = url.hostname.replace(/^\[(.*)\]$/, '$1');
      const address = this.#o.hostOverrides[name] ?? (isIP(name) ? name : (await lookup(name)).address);
      const socket = createSocket(isIP(address) === 6 ? 'udp6' : 'udp4');
      try {
        // A connected UDP socket sends nothing; it only picks the route and so the local address.
        await new Promise<void>((resolve, reject) => {
          socket.once('error', reject);
          socket.connect(Number(url.port) || 7443, address, () => resolve());
        });
        return socket.address().address;
      } finally {
        socket.close();
      }
    })();
    return this.#proxyIp;
  }
}

function hostOf(vm: FcVm, gbBytes: number): Host {
  const powerState =
    vm.status === 'running'
      ? 'on'
      : vm.status === 'stopped'
        ? 'off'
        : vm.status === 'hibernated'
          ? 'suspended'
          : 'unknown';
  return {
    id: vm.urn,
    name: vm.name,
    powerState,
    disks: (vm.vmConfig?.disks ?? []).map((d, i) => ({
      id: d.volumeUrn,
      sizeBytes: d.quantityGB * gbBytes,
      device: `disk${d.sequenceNum ?? i + 1}`,
      boot: (d.sequenceNum ?? i + 1) === 1,
      attributes: {
        volumeUri: d.volumeUri,
        ...(d.storageType ? { storageType: d.storageType } : {}),
        ...(d.volType ? { volType: d.volType } : {}),
        indepDisk: d.indepDisk === true,
      },
    })),
    attributes: {
      uri: vm.uri,
      status: vm.status,
      ...(vm.hostUrn ? { hostUrn: vm.hostUrn } : {}),
      isTemplate: vm.isTemplate === true,
      isLinkClone: vm.isLinkClone === true,
      ...(vm.pvDriverStatus ? { pvDriverStatus: vm.pvDriverStatus } : {}),
    },
  };
}

function diskSnapOf(snapshot: SnapshotRef, diskId: string): DiskSnapData {
  const found = snapshot.disks.find((d) => d.diskId === diskId)?.data as Partial<DiskSnapData> | undefined;
  if (found === undefined || typeof found.volumeUri !== 'string' || typeof found.snapUuid !== 'string') {
    throw new SyncproxyError(`snapshot ${snapshot.id} holds no volume snapshot of disk ${diskId}`, {
      code: 'not-found',
      retryable: false,
      platform: PLATFORM,
    });
  }
  return found as DiskSnapData;
}
