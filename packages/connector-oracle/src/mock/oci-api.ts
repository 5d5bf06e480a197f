import { randomUUID } from 'node:crypto';
import { open, rm, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { MockRequest, MockResponse, RouteHandler, RouteTable } from '@syncproxy/testkit/mock';
import { type MockApiKey, verifySignature } from './signature.js';
import {
  type BlockMap,
  Lifecycle,
  MOCK_BLOCK_SIZE,
  type MockAttachment,
  type MockBackup,
  type MockOciState,
  type MockVolume,
} from './state.js';

const API = '/20160918';
const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

export interface OciApiOptions {
  keys: readonly MockApiKey[];
  /** Where restored and delta volumes' files live. */
  workDir: string;
  /** Where attached volumes appear (`ctx.devices.byIdDir` of the connector). */
  devicesDir: string;
  /** Items per list page at most (the request's `limit` may ask for fewer). */
  pageSize: number;
  /** GETs a resource stays in each transitional state. */
  polls: number;
  /** The service clock for the signature's date check. */
  now: () => number;
}

/** An OCI error answer: `{ code, message }` with the HTTP status. */
export class OciFault extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const notFound = (what: string) =>
  new OciFault(
    404,
    'NotAuthorizedOrNotFound',
    `Authorization failed or requested resource not found: ${what}`,
  );
const invalid = (message: string) => new OciFault(400, 'InvalidParameter', message);
const conflict = (message: string) => new OciFault(409, 'IncorrectState', message);

/** Consistent device paths an instance offers, in the order OCI lists them. */
function devicePaths(): string[] {
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  const names = [...letters.slice(1)].map((l) => `oraclevd${l}`);
  for (const l of letters) names.push(`oraclevda${l}`);
  return names.map((n) => `/dev/oracleoci/${n}`);
}

function page<T>(request: MockRequest, items: T[], pageSize: number): MockResponse {
  const limit = Math.min(Number(request.query.get('limit') ?? pageSize) || pageSize, pageSize);
  const start = Number(request.query.get('page') ?? 0);
  if (!Number.isInteger(start) || start < 0) throw invalid('page is not a token this service issued');
  const slice = items.slice(start, start + limit);
  const next = start + limit < items.length ? String(start + limit) : undefined;
  return { body: slice, headers: next ? { 'opc-next-page': next } : {} };
}

function json(request: MockRequest): Record<string, unknown> {
  try {
    return request.json<Record<string, unknown>>();
  } catch {
    throw invalid('the request body is not JSON');
  }
}

function volumeJson(v: MockVolume, state = v.lifecycle.state) {
  const isHydrated = state === 'AVAILABLE' && (v.hydrationPolls ?? 0) <= 0;
  return {
    id: v.id,
    compartmentId: v.compartmentId,
    availabilityDomain: v.availabilityDomain,
    displayName: v.displayName,
    lifecycleState: state,
    sizeInMBs: Math.ceil(v.sizeBytes / MIB),
    sizeInGBs: Math.ceil(v.sizeBytes / GIB),
    timeCreated: v.timeCreated,
    freeformTags: v.freeformTags,
    isHydrated,
    ...(v.sourceDetails ? { sourceDetails: v.sourceDetails } : {}),
  };
}

function backupJson(b: MockBackup, state = b.lifecycle.state) {
  return {
    id: b.id,
    compartmentId: b.compartmentId,
    displayName: b.displayName,
    lifecycleState: state,
    type: b.type,
    sourceType: 'MANUAL',
    [b.kind === 'boot' ? 'bootVolumeId' : 'volumeId']: b.volumeId,
    sizeInMBs: Math.ceil(b.sizeBytes / MIB),
    sizeInGBs: Math.ceil(b.sizeBytes / GIB),
    timeCreated: b.timeCreated,
    freeformTags: b.freeformTags,
  };
}

function attachmentJson(a: MockAttachment, state = a.lifecycle.state) {
  if (a.kind === 'boot') {
    return {
      id: a.id,
      availabilityDomain: a.availabilityDomain,
      compartmentId: a.compartmentId,
      instanceId: a.instanceId,
      bootVolumeId: a.volumeId,
      displayName: a.displayName,
      lifecycleState: state,
      timeCreated: a.timeCreated,
    };
  }
  return {
    id: a.id,
    attachmentType: a.attachmentType,
    availabilityDomain: a.availabilityDomain,
    compartmentId: a.compartmentId,
    instanceId: a.instanceId,
    volumeId: a.volumeId,
    displayName: a.displayName,
    lifecycleState: state,
    timeCreated: a.timeCreated,
    isReadOnly: true,
    ...(a.device ? { device: a.device } : {}),
    ...(a.attachmentType === 'iscsi'
      ? { iqn: a.iqn, ipv4: a.ipv4, port: a.port, isAgentAutoIscsiLoginEnabled: false }
      : {}),
  };
}

/** Writes a volume's blocks into a sparse file of its size: the "device" its attachment exposes. */
async function writeVolumeFile(path: string, sizeBytes: number, data: BlockMap): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.truncate(sizeBytes);
    for (const [index, block] of data.blocks) {
      const offset = index * MOCK_BLOCK_SIZE;
      await handle.write(block, 0, Math.min(MOCK_BLOCK_SIZE, sizeBytes - offset), offset);
    }
  } finally {
    await handle.close();
  }
}

/**
 * The OCI Core Services and Identity routes the connector calls, on
 * `/20160918`, each behind the signature check. Shapes follow the oci-core
 * and oci-identity models; lists are bare arrays with `opc-next-page`.
 */
export function ociRoutes(options: OciApiOptions): RouteTable<MockOciState> {
  const wrap =
    (
      handler: (request: MockRequest, state: MockOciState) => MockResponse | Promise<MockResponse>,
    ): RouteHandler<MockOciState> =>
    async (request, state) => {
      const requestId = randomUUID().replace(/-/g, '').toUpperCase();
      state.stats.requests++;
      const problem = verifySignature(request, options.keys, options.now());
      if (problem !== undefined) {
        state.stats.unauthenticated++;
        state.lastAuthProblem = problem;
        return {
          status: 401,
          headers: { 'opc-request-id': requestId },
          body: {
            code: 'NotAuthenticated',
            message: 'The required information to complete authentication was not provided or was incorrect.',
          },
        };
      }
      try {
        const response = await handler(request, state);
        return { ...response, headers: { ...response.headers, 'opc-request-id': requestId } };
      } catch (error) {
        if (!(error instanceof OciFault)) throw error;
        return {
          status: error.status,
          headers: { 'opc-request-id': requestId },
          body: { code: error.code, message: error.message },
        };
      }
    };

  const liveVolume = (state: MockOciState, id: string, kind: 'boot' | 'block') => {
    const v = state.volumes.get(id);
    if (!v || v.kind !== kind || v.lifecycle.state === 'TERMINATED') throw notFound(`volume ${id}`);
    return v;
  };
  const liveBackup = (state: MockOciState, id: string, kind: 'boot' | 'block') => {
    const b = state.backups.get(id);
    if (!b || b.kind !== kind || b.lifecycle.state === 'TERMINATED') throw notFound(`backup ${id}`);
    return b;
  };
  const attachment = (state: MockOciState, id: string) => {
    const a = state.attachments.get(id);
    if (a?.kind !== 'block') throw notFound(`volume attachment ${id}`);
    return a;
  };
  const transitional = (state: string, next: string) => [
    { state, polls: options.polls },
    { state: next, polls: 0 },
  ];

  const listVolumes = (kind: 'boot' | 'block') =>
    wrap((request, state) => {
      const compartmentId = request.query.get('compartmentId');
      if (!compartmentId) throw invalid('compartmentId is required');
      if (kind === 'boot' && !request.query.get('availabilityDomain'))
        throw invalid('availabilityDomain is required');
      const ad = request.query.get('availabilityDomain');
      const items = [...state.volumes.values()]
        .filter(
          (v) => v.kind === kind && v.compartmentId === compartmentId && (!ad || v.availabilityDomain === ad),
        )
        .map((v) => volumeJson(v));
      return page(request, items, options.pageSize);
    });

  const getVolume = (kind: 'boot' | 'block') =>
    wrap((request, state) => {
      const v = liveVolume(state, request.params.id!, kind);
      const seen = v.lifecycle.poll();
      const body = volumeJson(v, seen);
      if (seen === 'AVAILABLE' && v.hydrationPolls) v.hydrationPolls--;
      return { body };
    });

  const deleteVolume = (kind: 'boot' | 'block') =>
    wrap(async (request, state) => {
      const v = liveVolume(state, request.params.id!, kind);
      if (state.liveAttachments().some((a) => a.volumeId === v.id)) {
        throw conflict(`volume ${v.id} is attached; detach it first`);
      }
      if (v.lifecycle.state !== 'TERMINATING') {
        v.lifecycle.set(transitional('TERMINATING', 'TERMINATED'));
        // The terminated volume stays listed (as OCI lists it for a while) but its device file goes.
        if (v.file) await rm(v.file, { force: true });
        state.stats.volumesDeleted++;
      }
      return { status: 204 };
    });

  const createVolume = (kind: 'boot' | 'block') =>
    wrap(async (request, state) => {
      const body = json(request);
      const source = body.sourceDetails as Record<string, unknown> | undefined;
      const compartmentId = body.compartmentId as string | undefined;
      const availabilityDomain = body.availabilityDomain as string | undefined;
      if (!compartmentId || !availabilityDomain)
        throw invalid('compartmentId and availabilityDomain are required');
      if (!source) throw invalid('the mock creates volumes from backups only: sourceDetails is required');
      const backupType = kind === 'boot' ? 'bootVolumeBackup' : 'volumeBackup';
      const deltaType = kind === 'boot' ? 'bootVolumeBackupDelta' : 'volumeBackupDelta';
      let data: BlockMap;
      let sizeBytes: number;
      let mappedRanges: Array<{ offset: number; length: number }> | undefined;
      if (source.type === backupType) {
        const backup = liveBackup(state, String(source.id), kind);
        if (backup.lifecycle.state !== 'AVAILABLE')
          throw conflict(`backup ${backup.id} is ${backup.lifecycle.state}`);
        data = backup.data.copy();
        sizeBytes = backup.sizeBytes;
        // A restored volume is thin: only the blocks the backup holds are mapped.
        mappedRanges = [...data.blocks.keys()]
          .sort((a, b) => a - b)
          .map((i) => ({
            offset: i * MOCK_BLOCK_SIZE,
            length: Math.min(MOCK_BLOCK_SIZE, sizeBytes - i * MOCK_BLOCK_SIZE),
          }));
      } else if (source.type === deltaType) {
        ({ data, sizeBytes, mappedRanges } = deltaOf(state, kind, source));
      } else {
        throw invalid(
          `sourceDetails.type ${String(source.type)} is not supported for ${kind === 'boot' ? 'boot volumes' : 'volumes'}`,
        );
      }
      const id = state.ocid(kind === 'boot' ? 'bootvolume' : 'volume');
      const file = join(options.workDir, `${id.slice(-16)}.img`);
      await writeVolumeFile(file, sizeBytes, data);
      const volume: MockVolume = {
        id,
        kind,
        compartmentId,
        availabilityDomain,
        displayName: String(body.displayName ?? id),
        sizeBytes,
        data,
        lifecycle: new Lifecycle(transitional('PROVISIONING', 'AVAILABLE')),
        freeformTags: (body.freeformTags as Record<string, string>) ?? {},
        timeCreated: new Date(options.now()).toISOString(),
        file,
        sourceDetails: source,
        ...(mappedRanges ? { mappedRanges } : {}),
        ...(source.type === deltaType ? { isDelta: true } : { hydrationPolls: options.polls }),
      };
      state.volumes.set(id, volume);
      state.stats.volumesCreated++;
      state.stats.peakVolumes = Math.max(state.stats.peakVolumes, state.liveCloneVolumes().length);
      return { body: volumeJson(volume) };
    });

  /**
   * A delta volume as OCI documents it (Block/Tasks/restoringdeltabetweenbackups.htm):
   * both backups of one volume, the second INCREMENTAL, no FULL backup between
   * them, no resize; the volume holds only the blocks that differ, at
   * `changeBlockSizeInBytes` (a power of 2 from 4 KiB to 1 MiB, default 4 KiB).
   */
  const deltaOf = (state: MockOciState, kind: 'boot' | 'block', source: Record<string, unknown>) => {
    const blockSize =
      source.changeBlockSizeInBytes === undefined ? 4096 : Number(source.changeBlockSizeInBytes);
    if (
      !Number.isInteger(blockSize) ||
      blockSize < 4096 ||
      blockSize > MIB ||
      (blockSize & (blockSize - 1)) !== 0
    ) {
      throw invalid('changeBlockSizeInBytes must be a power of 2 from 4096 to 1048576');
    }
    const first = liveBackup(state, String(source.firstBackupId), kind);
    const second = liveBackup(state, String(source.secondBackupId), kind);
    for (const b of [first, second]) {
      if (b.lifecycle.state !== 'AVAILABLE') throw conflict(`backup ${b.id} is ${b.lifecycle.state}`);
    }
    if (first.volumeId !== second.volumeId)
      throw invalid('firstBackupId and secondBackupId are backups of different volumes');
    if (first.sequence >= second.sequence) throw invalid('secondBackupId must be newer than firstBackupId');
    if (second.type !== 'INCREMENTAL') throw invalid('secondBackupId must be an INCREMENTAL backup');
    const fullBetween = [...state.backups.values()].some(
      (b) =>
        b.volumeId === first.volumeId &&
        b.type === 'FULL' &&
        b.sequence > first.sequence &&
        b.sequence < second.sequence,
    );
    if (fullBetween) throw invalid('a FULL backup lies between firstBackupId and secondBackupId');
    if (first.sizeBytes !== second.sizeBytes) throw invalid('the volume was resized between the two backups');
    const changed = new Set<number>();
    const perChange = blockSize / MOCK_BLOCK_SIZE;
    for (const index of new Set([...first.data.blocks.keys(), ...second.data.blocks.keys()])) {
      if (first.data.blocks.get(index) !== second.data.blocks.get(index))
        changed.add(Math.floor(index / perChange));
    }
    const data = second.data.copy();
    // The delta volume holds only the changed blocks; the rest reads as unmapped zeroes.
    for (const index of [...data.blocks.keys()]) {
      if (!changed.has(Math.floor(index / perChange))) data.blocks.delete(index);
    }
    const mappedRanges = [...changed]
      .sort((a, b) => a - b)
      .map((c) => ({ offset: c * blockSize, length: Math.min(blockSize, second.sizeBytes - c * blockSize) }));
    return { data, sizeBytes: second.sizeBytes, mappedRanges };
  };

  const createBackup = (kind: 'boot' | 'block') =>
    wrap((request, state) => {
      const body = json(request);
      const volumeId = String(body[kind === 'boot' ? 'bootVolumeId' : 'volumeId'] ?? '');
      const volume = liveVolume(state, volumeId, kind);
      const type = body.type ?? 'INCREMENTAL';
      if (type !== 'FULL' && type !== 'INCREMENTAL') throw invalid('type must be FULL or INCREMENTAL');
      const id = state.ocid(kind === 'boot' ? 'bootvolumebackup' : 'volumebackup');
      const backup: MockBackup = {
        id,
        kind,
        volumeId,
        compartmentId: volume.compartmentId,
        displayName: String(body.displayName ?? id),
        type,
        sizeBytes: volume.sizeBytes,
        data: volume.data.copy(),
        lifecycle: new Lifecycle([
          { state: 'REQUEST_RECEIVED', polls: 0 },
          { state: 'CREATING', polls: options.polls },
          { state: 'AVAILABLE', polls: 0 },
        ]),
        freeformTags: (body.freeformTags as Record<string, string>) ?? {},
        timeCreated: new Date(options.now()).toISOString(),
        sequence: state.nextSequence(),
      };
      state.backups.set(id, backup);
      return { body: backupJson(backup) };
    });

  const listBackups = (kind: 'boot' | 'block') =>
    wrap((request, state) => {
      const compartmentId = request.query.get('compartmentId');
      if (!compartmentId) throw invalid('compartmentId is required');
      const volumeId = request.query.get(kind === 'boot' ? 'bootVolumeId' : 'volumeId');
      const items = [...state.backups.values()]
        .filter(
          (b) =>
            b.kind === kind && b.compartmentId === compartmentId && (!volumeId || b.volumeId === volumeId),
        )
        .map((b) => backupJson(b));
      return page(request, items, options.pageSize);
    });

  const getBackup = (kind: 'boot' | 'block') =>
    wrap((request, state) => {
      const b = liveBackup(state, request.params.id!, kind);
      return { body: backupJson(b, b.lifecycle.poll()) };
    });

  const deleteBackup = (kind: 'boot' | 'block') =>
    wrap((request, state) => {
      const b = liveBackup(state, request.params.id!, kind);
      // Terminated at once (OCI passes through TERMINATING): a deleted backup can no longer be restored.
      b.lifecycle.set([{ state: 'TERMINATED', polls: 0 }]);
      return { status: 204 };
    });

  /** Exposes a paravirtualized attachment's volume as `<devicesDir>/oraclevdX` once it is ATTACHED. */
  const expose = async (state: MockOciState, a: MockAttachment) => {
    if (a.link || a.attachmentType !== 'paravirtualized' || !a.device) return;
    const volume = state.volumes.get(a.volumeId);
    if (!volume?.file) return;
    a.link = join(options.devicesDir, a.device.split('/').pop()!);
    await symlink(volume.file, a.link);
  };

  return {
    [`GET ${API}/compartments`]: wrap((request, state) => {
      const parent = request.query.get('compartmentId');
      if (!parent) throw invalid('compartmentId is required');
      const items = [...state.compartments.values()]
        .filter((c) => c.parentId === parent)
        .map((c) => ({
          id: c.id,
          compartmentId: c.parentId,
          name: c.name,
          description: c.name,
          lifecycleState: 'ACTIVE',
          timeCreated: c.timeCreated,
        }));
      return page(request, items, options.pageSize);
    }),
    [`GET ${API}/instances`]: wrap((request, state) => {
      const compartmentId = request.query.get('compartmentId');
      if (!compartmentId) throw invalid('compartmentId is required');
      const items = [...state.instances.values()]
        .filter((i) => i.compartmentId === compartmentId)
        .map((i) => ({ ...i, region: 'iad', shape: 'VM.Standard.E4.Flex' }));
      return page(request, items, options.pageSize);
    }),
    [`GET ${API}/instances/:id`]: wrap((request, state) => {
      const i = state.instances.get(request.params.id!);
      if (!i) throw notFound(`instance ${request.params.id}`);
      return { body: { ...i, region: 'iad', shape: 'VM.Standard.E4.Flex' } };
    }),
    [`GET ${API}/instances/:id/devices`]: wrap((request, state) => {
      const instanceId = request.params.id!;
      if (!state.instances.has(instanceId)) throw notFound(`instance ${instanceId}`);
      const used = new Set(
        state
          .liveAttachments()
          .filter((a) => a.instanceId === instanceId && a.device)
          .map((a) => a.device),
      );
      const available = request.query.get('isAvailable');
      const items = devicePaths()
        .map((name) => ({ name, isAvailable: !used.has(name) }))
        .filter((d) => available === null || String(d.isAvailable) === available);
      return page(request, items, options.pageSize);
    }),
    [`GET ${API}/bootVolumeAttachments`]: wrap((request, state) => {
      const ad = request.query.get('availabilityDomain');
      const compartmentId = request.query.get('compartmentId');
      if (!ad || !compartmentId) throw invalid('availabilityDomain and compartmentId are required');
      const instanceId = request.query.get('instanceId');
      const items = [...state.attachments.values()]
        .filter(
          (a) =>
            a.kind === 'boot' &&
            a.compartmentId === compartmentId &&
            a.availabilityDomain === ad &&
            (!instanceId || a.instanceId === instanceId),
        )
        .map((a) => attachmentJson(a));
      return page(request, items, options.pageSize);
    }),
    [`GET ${API}/volumeAttachments`]: wrap((request, state) => {
      const compartmentId = request.query.get('compartmentId');
      if (!compartmentId) throw invalid('compartmentId is required');
      const instanceId = request.query.get('instanceId');
      const volumeId = request.query.get('volumeId');
      const items = [...state.attachments.values()]
        .filter(
          (a) =>
            a.kind === 'block' &&
            a.compartmentId === compartmentId &&
            (!instanceId || a.instanceId === instanceId) &&
            (!volumeId || a.volumeId === volumeId),
        )
        .map((a) => attachmentJson(a));
      return page(request, items, options.pageSize);
    }),
    [`POST ${API}/volumeAttachments`]: wrap((request, state) => {
      const body = json(request);
      const instance = state.instances.get(String(body.instanceId));
      if (!instance) throw notFound(`instance ${String(body.instanceId)}`);
      const volume = state.volumes.get(String(body.volumeId));
      if (!volume || volume.lifecycle.state === 'TERMINATED')
        throw notFound(`volume ${String(body.volumeId)}`);
      if (volume.lifecycle.state !== 'AVAILABLE')
        throw conflict(`volume ${volume.id} is ${volume.lifecycle.state}`);
      if (state.liveAttachments().some((a) => a.volumeId === volume.id)) {
        throw conflict(`volume ${volume.id} is already attached`);
      }
      const type = body.type;
      if (type !== 'iscsi' && type !== 'paravirtualized')
        throw invalid('type must be iscsi or paravirtualized');
      if (type === 'paravirtualized' && volume.isDelta) {
        throw invalid('a volume restored from a backup delta can be attached over iSCSI only');
      }
      const device = body.device === undefined ? undefined : String(body.device);
      if (device !== undefined) {
        if (!devicePaths().includes(device))
          throw invalid(`device ${device} is not a device of the instance`);
        if (state.liveAttachments().some((a) => a.instanceId === instance.id && a.device === device)) {
          throw conflict(`device ${device} is in use`);
        }
      }
      const id = state.ocid('volumeattachment');
      const n = state.stats.attachmentsCreated + 2;
      const a: MockAttachment = {
        id,
        kind: 'block',
        instanceId: instance.id,
        volumeId: volume.id,
        compartmentId: instance.compartmentId,
        availabilityDomain: instance.availabilityDomain,
        attachmentType: type,
        displayName: String(body.displayName ?? id),
        lifecycle: new Lifecycle(transitional('ATTACHING', 'ATTACHED')),
        timeCreated: new Date(options.now()).toISOString(),
        ...(device ? { device } : {}),
        ...(type === 'iscsi'
          ? { iqn: `iqn.2015-12.com.oracleiaas:${randomUUID()}`, ipv4: `169.254.2.${n % 250}`, port: 3260 }
          : {}),
      };
      state.attachments.set(id, a);
      state.stats.attachmentsCreated++;
      state.stats.peakAttachments = Math.max(
        state.stats.peakAttachments,
        state.liveAttachments().filter((x) => x.kind === 'block' && x.instanceId === instance.id).length,
      );
      return { body: attachmentJson(a) };
    }),
    [`GET ${API}/volumeAttachments/:id`]: wrap(async (request, state) => {
      const a = attachment(state, request.params.id!);
      const seen = a.lifecycle.poll();
      if (seen === 'ATTACHED') await expose(state, a);
      return { body: attachmentJson(a, seen) };
    }),
    [`DELETE ${API}/volumeAttachments/:id`]: wrap(async (request, state) => {
      const a = attachment(state, request.params.id!);
      if (a.lifecycle.state === 'DETACHED') throw conflict(`volume attachment ${a.id} is DETACHED`);
      if (a.lifecycle.state !== 'DETACHING') {
        a.lifecycle.set(transitional('DETACHING', 'DETACHED'));
        if (a.link) await unlink(a.link).catch(() => {});
        a.link = undefined;
        state.stats.attachmentsDetached++;
      }
      return { status: 204 };
    }),
    [`GET ${API}/volumes`]: listVolumes('block'),
    [`POST ${API}/volumes`]: createVolume('block'),
    [`GET ${API}/volumes/:id`]: getVolume('block'),
    [`DELETE ${API}/volumes/:id`]: deleteVolume('block'),
    [`GET ${API}/bootVolumes`]: listVolumes('boot'),
    [`POST ${API}/bootVolumes`]: createVolume('boot'),
    [`GET ${API}/bootVolumes/:id`]: getVolume('boot'),
    [`DELETE ${API}/bootVolumes/:id`]: deleteVolume('boot'),
    [`GET ${API}/volumeBackups`]: listBackups('block'),
    [`POST ${API}/volumeBackups`]: createBackup('block'),
    [`GET ${API}/volumeBackups/:id`]: getBackup('block'),
    [`DELETE ${API}/volumeBackups/:id`]: deleteBackup('block'),
    [`GET ${API}/bootVolumeBackups`]: listBackups('boot'),
    [`POST ${API}/bootVolumeBackups`]: createBackup('boot'),
    [`GET ${API}/bootVolumeBackups/:id`]: getBackup('boot'),
    [`DELETE ${API}/bootVolumeBackups/:id`]: deleteBackup('boot'),
  };
}
