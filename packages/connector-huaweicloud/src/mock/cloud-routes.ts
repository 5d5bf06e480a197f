import { mkdir, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import type * as TestkitMock from '@syncproxy/testkit/mock';
import type { MockRequest, MockResponse, RouteTable } from '@syncproxy/testkit/mock';
import { gatewayError, type MockCredentials, verifySdkSignature } from './aksk-verifier.js';
import {
  GIB,
  type MockExportedObject,
  type MockHuaweiState,
  type MockJob,
  type MockVolume,
} from './state.js';

export interface CloudRoutesContext {
  credentials: MockCredentials;
  now: () => number;
  /** Polls an async job (ECS, EVS, checkpoint, export) stays running. */
  pollsUntilDone: number;
  /** The by-id directory attached volumes appear in, and where their device files live. */
  devices: { byIdDir: string; devDir: string };
  /** Size of each object an export writes (the last of a disk may be shorter). */
  exportObjectBytes: number;
  /** The testkit's disk and image file, loaded as the mock starts (an optional peer, see peers.ts). */
  testkit: Pick<typeof TestkitMock, 'VirtualDisk' | 'writeImageFile'>;
}

type Handler = (request: MockRequest, state: MockHuaweiState) => MockResponse | Promise<MockResponse>;

const json = (body: unknown, status = 200): MockResponse => ({
  status,
  headers: { 'content-type': 'application/json', 'x-request-id': `req-${Date.now().toString(16)}` },
  body,
});

/** ECS and EVS errors: `{error: {message, code}}`. */
const serviceError = (status: number, code: string, message: string): MockResponse =>
  json({ error: { message, code } }, status);

/**
 * IAM, ECS, EVS and CBR on one loopback server (each endpoint override of a
 * test config points here). Every route checks the SDK-HMAC-SHA256 signature
 * and the project id in the path first, as the API gateway does.
 */
export function cloudRoutes(context: CloudRoutesContext): RouteTable<MockHuaweiState> {
  const signed =
    (handler: Handler, projectScoped = true): Handler =>
    (request, state) => {
      const refused = verifySdkSignature(request, context.credentials, context.now());
      if (refused) {
        state.stats.signatureFailures++;
        return refused;
      }
      if (projectScoped && request.params.project !== state.projectId) {
        return gatewayError(
          403,
          'APIGW.0302',
          `The IAM user is not authorized to access project ${request.params.project ?? ''}`,
        );
      }
      return handler(request, state);
    };

  const newJob = (
    state: MockHuaweiState,
    entities: Record<string, string>,
    complete: MockJob['complete'],
  ) => {
    const job: MockJob = {
      id: state.newId().replaceAll('-', ''),
      pollsLeft: context.pollsUntilDone,
      status: 'RUNNING',
      entities,
      complete,
    };
    state.jobs.set(job.id, job);
    return job;
  };

  const exposeDevice = async (state: MockHuaweiState, volume: MockVolume): Promise<void> => {
    if (!state.exposeDevices) return;
    await mkdir(context.devices.devDir, { recursive: true });
    await mkdir(context.devices.byIdDir, { recursive: true });
    const devicePath = join(context.devices.devDir, `vd-${volume.id.slice(0, 8)}`);
    await context.testkit.writeImageFile(volume.disk, devicePath);
    // KVM ECSs show a volume as virtio-<first 20 characters of its id>.
    const byIdPath = join(context.devices.byIdDir, `virtio-${volume.id.slice(0, 20)}`);
    await symlink(devicePath, byIdPath);
    volume.devicePath = devicePath;
    volume.byIdPath = byIdPath;
  };

  const hideDevice = async (volume: MockVolume): Promise<void> => {
    if (volume.byIdPath) await rm(volume.byIdPath, { force: true });
    if (volume.devicePath) await rm(volume.devicePath, { force: true });
    delete volume.byIdPath;
    delete volume.devicePath;
  };

  const serverJson = (state: MockHuaweiState, id: string) => {
    const server = state.servers.get(id)!;
    return {
      id: server.id,
      name: server.name,
      status: server.status,
      'OS-EXT-AZ:availability_zone': server.availabilityZone,
      'os-extended-volumes:volumes_attached': server.volumeIds.map((vid, i) => ({
        id: vid,
        bootIndex: i === 0 ? '0' : null,
        device: state.volumes.get(vid)?.attachment?.device ?? `/dev/vd${String.fromCharCode(97 + i)}`,
        delete_on_termination: 'false',
      })),
      flavor: { id: 's6.xlarge.2', name: 's6.xlarge.2' },
      metadata: { os_type: 'Linux' },
    };
  };

  const volumeJson = (volume: MockVolume) => ({
    id: volume.id,
    name: volume.name,
    size: volume.sizeGb,
    status: volume.status,
    bootable: String(volume.bootable),
    availability_zone: volume.availabilityZone,
    volume_type: 'SSD',
    metadata: volume.metadata,
    created_at: volume.createdAt,
    attachments: volume.attachment
      ? [
          {
            server_id: volume.attachment.serverId,
            device: volume.attachment.device,
            attachment_id: `${volume.id}-att`,
            volume_id: volume.id,
          },
        ]
      : [],
  });

  const backupJson = (state: MockHuaweiState, id: string) => {
    const backup = state.backups.get(id)!;
    return {
      id: backup.id,
      checkpoint_id: backup.checkpointId,
      vault_id: backup.vaultId,
      resource_id: backup.serverId,
      resource_type: 'OS::Nova::Server',
      status: 'available',
      name: backup.name,
      description: backup.description,
      created_at: backup.createdAt,
      children: backup.children.map((c) => ({
        id: c.id,
        resource_id: c.volumeId,
        resource_type: 'OS::Cinder::Volume',
        resource_size: c.sizeGb,
        status: c.status,
      })),
    };
  };

  /** ECS pages with `offset` = page number from 1 (ECS API reference, ListServersDetails). */
  const listServers: Handler = (request, state) => {
    const limit = Math.min(1000, Number(request.query.get('limit') ?? 25));
    const page = Math.max(1, Number(request.query.get('offset') ?? 1));
    const all = [...state.servers.keys()];
    const servers = all.slice((page - 1) * limit, page * limit).map((id) => serverJson(state, id));
    return json({ count: all.length, servers });
  };

  const handlers: Record<string, Handler> = {
    'GET /v3/projects': signed((request, state) => {
      const name = request.query.get('name');
      const projects =
        name === null || name === state.region
          ? [
              {
                id: state.projectId,
                name: state.region,
                enabled: true,
                domain_id: 'd0000000000000000000000000000001',
              },
            ]
          : [];
      return json({ projects, links: { self: `${request.url.origin}/v3/projects` } });
    }, false),

    'GET /v1/:project/cloudservers/detail': signed(listServers),
    'GET /v1/:project/cloudservers/:server': signed((request, state) => {
      if (!state.servers.has(request.params.server!)) {
        return serviceError(404, 'Ecs.0114', `Instance[${request.params.server}] could not be found.`);
      }
      return json({ server: serverJson(state, request.params.server!) });
    }),
    'POST /v1/:project/cloudservers/:server/attachvolume': signed((request, state) => {
      const server = state.servers.get(request.params.server!);
      if (!server)
        return serviceError(404, 'Ecs.0114', `Instance[${request.params.server}] could not be found.`);
      const volumeId = request.json<{ volumeAttachment?: { volumeId?: string } }>().volumeAttachment
        ?.volumeId;
      const volume = volumeId ? state.volumes.get(volumeId) : undefined;
      if (!volume) return serviceError(404, 'Ecs.0005', `volume ${volumeId} not found`);
      if (volume.status !== 'available') {
        return serviceError(400, 'Ecs.0005', `volume ${volume.id} is ${volume.status}, not available`);
      }
      volume.status = 'in-use';
      const device = `/dev/vd${String.fromCharCode(97 + server.volumeIds.length)}`;
      volume.attachment = { serverId: server.id, device };
      server.volumeIds.push(volume.id);
      state.stats.attachments++;
      const job = newJob(state, { server_id: server.id, volume_id: volume.id }, () =>
        exposeDevice(state, volume),
      );
      return json({ job_id: job.id });
    }),
    'DELETE /v1/:project/cloudservers/:server/detachvolume/:volume': signed(async (request, state) => {
      const server = state.servers.get(request.params.server!);
      if (!server)
        return serviceError(404, 'Ecs.0114', `Instance[${request.params.server}] could not be found.`);
      const volume = state.volumes.get(request.params.volume!);
      if (!volume || volume.attachment?.serverId !== server.id) {
        return serviceError(
          404,
          'Ecs.0025',
          `volume ${request.params.volume} is not attached to ${server.id}`,
        );
      }
      // The device goes away at once; the job finishes the bookkeeping.
      await hideDevice(volume);
      const job = newJob(state, { server_id: server.id, volume_id: volume.id }, () => {
        delete volume.attachment;
        volume.status = 'available';
        server.volumeIds = server.volumeIds.filter((v) => v !== volume.id);
        state.stats.detachments++;
      });
      return json({ job_id: job.id });
    }),
    'GET /v1/:project/jobs/:job': signed(async (request, state) => {
      const job = state.jobs.get(request.params.job!);
      if (!job) return serviceError(404, 'Common.0024', `job ${request.params.job} not found`);
      if (job.status === 'RUNNING') {
        if (job.pollsLeft > 0) job.pollsLeft--;
        else {
          await job.complete();
          job.status = 'SUCCESS';
        }
      }
      return json({
        job_id: job.id,
        job_type: 'mock',
        status: job.status,
        entities: job.entities,
        begin_time: new Date(context.now()).toISOString(),
        ...(job.failReason ? { fail_reason: job.failReason, error_code: 'EVS.2024' } : {}),
      });
    }),

    'GET /v2/:project/cloudvolumes/detail': signed((request, state) => {
      const limit = Math.min(1000, Number(request.query.get('limit') ?? 1000));
      const offset = Math.max(0, Number(request.query.get('offset') ?? 0));
      const metadata = request.query.get('metadata');
      const wanted = metadata ? (JSON.parse(metadata) as Record<string, string>) : undefined;
      const all = [...state.volumes.values()].filter(
        (v) => wanted === undefined || Object.entries(wanted).every(([k, val]) => v.metadata[k] === val),
      );
      return json({ count: all.length, volumes: all.slice(offset, offset + limit).map(volumeJson) });
    }),
    'GET /v2/:project/cloudvolumes/:volume': signed((request, state) => {
      const volume = state.volumes.get(request.params.volume!);
      if (!volume) return serviceError(404, 'EVS.5404', `Disk ${request.params.volume} could not be found.`);
      return json({ volume: volumeJson(volume) });
    }),
    'POST /v2/:project/cloudvolumes': signed((request, state) => {
      const spec = request.json<{
        volume?: {
          backup_id?: string;
          availability_zone?: string;
          size?: number;
          name?: string;
          metadata?: Record<string, string>;
        };
      }>().volume;
      if (!spec?.availability_zone) return serviceError(400, 'EVS.2001', 'availability_zone is mandatory');
      const found = spec.backup_id ? state.findVolumeBackup(spec.backup_id) : undefined;
      if (spec.backup_id && !found)
        return serviceError(404, 'EVS.2044', `backup ${spec.backup_id} not found`);
      const sizeGb = spec.size ?? found?.child.sizeGb ?? 10;
      if (found && sizeGb < found.child.sizeGb) {
        return serviceError(
          400,
          'EVS.2032',
          `size ${sizeGb} is smaller than the backup (${found.child.sizeGb} GB)`,
        );
      }
      const volume: MockVolume = {
        id: state.newId(),
        name: spec.name ?? 'volume',
        sizeGb,
        disk: new context.testkit.VirtualDisk({ sizeBytes: sizeGb * GIB }),
        availabilityZone: spec.availability_zone,
        status: 'creating',
        bootable: false,
        metadata: { ...spec.metadata },
        createdAt: new Date(context.now()).toISOString(),
      };
      if (found) {
        for (const extent of found.child.snapshot.allocatedExtents()) {
          volume.disk.write(extent.offset, found.child.snapshot.read(extent.offset, extent.length));
        }
      }
      state.volumes.set(volume.id, volume);
      state.stats.volumesCreated++;
      const job = newJob(state, { volume_id: volume.id }, () => {
        volume.status = 'available';
      });
      return json({ job_id: job.id }, 202);
    }),
    'DELETE /v2/:project/cloudvolumes/:volume': signed((request, state) => {
      const volume = state.volumes.get(request.params.volume!);
      if (!volume) return serviceError(404, 'EVS.5404', `Disk ${request.params.volume} could not be found.`);
      if (volume.attachment)
        return serviceError(400, 'EVS.2038', `disk ${volume.id} is attached; detach it first`);
      volume.status = 'deleting';
      const job = newJob(state, { volume_id: volume.id }, () => {
        state.volumes.delete(volume.id);
      });
      return json({ job_id: job.id }, 202);
    }),

    'GET /v3/:project/vaults': signed((request, state) => {
      const ids = request.query.get('resource_ids')?.split(',');
      const vaults = [...state.vaults.values()]
        .filter((v) => ids === undefined || ids.some((id) => v.serverIds.has(id)))
        .map((v) => ({
          id: v.id,
          name: v.name,
          resources: [...v.serverIds].map((id) => ({
            id,
            type: 'OS::Nova::Server',
            name: state.servers.get(id)?.name,
          })),
        }));
      return json({ count: vaults.length, vaults });
    }),
    'POST /v3/:project/checkpoints': signed((request, state) => {
      const body = request.json<{
        checkpoint?: {
          vault_id?: string;
          parameters?: { resources?: string[]; name?: string; description?: string };
        };
      }>().checkpoint;
      const vault = body?.vault_id ? state.vaults.get(body.vault_id) : undefined;
      if (!vault) return gatewayError(404, 'BackupService.6001', `vault ${body?.vault_id} not found`);
      const resources = body?.parameters?.resources ?? [...vault.serverIds];
      for (const id of resources) {
        if (!vault.serverIds.has(id))
          return gatewayError(400, 'BackupService.6009', `resource ${id} is not in vault ${vault.id}`);
      }
      const createdAt = new Date(context.now()).toISOString();
      const checkpoint = {
        id: state.newId(),
        vaultId: vault.id,
        createdAt,
        pollsLeft: context.pollsUntilDone,
        status: 'protecting' as const,
      };
      state.checkpoints.set(checkpoint.id, checkpoint);
      state.stats.checkpointsCreated++;
      // The data is frozen now, all volumes of a server at one instant (crash-consistent).
      for (const serverId of resources) {
        const server = state.servers.get(serverId)!;
        const backupId = state.newId();
        state.backups.set(backupId, {
          id: backupId,
          checkpointId: checkpoint.id,
          vaultId: vault.id,
          serverId,
          name: body?.parameters?.name ?? `manualbk_${checkpoint.id.slice(0, 4)}`,
          description: body?.parameters?.description ?? '',
          createdAt,
          children: server.volumeIds
            .map((vid) => state.volumes.get(vid)!)
            .filter((v) => v.metadata.syncproxy_managed !== 'true')
            .map((v) => {
              const id = state.newId();
              return {
                id,
                volumeId: v.id,
                sizeGb: v.sizeGb,
                snapshot: v.disk.snapshot(id),
                status: 'available' as const,
              };
            }),
        });
      }
      return json({
        checkpoint: {
          id: checkpoint.id,
          project_id: state.projectId,
          status: checkpoint.status,
          created_at: createdAt,
          vault: {
            id: vault.id,
            name: vault.name,
            resources: resources.map((id) => ({ id, type: 'OS::Nova::Server' })),
          },
        },
      });
    }),
    'GET /v3/:project/checkpoints/:checkpoint': signed((request, state) => {
      const checkpoint = state.checkpoints.get(request.params.checkpoint!);
      if (!checkpoint)
        return gatewayError(404, 'BackupService.6002', `checkpoint ${request.params.checkpoint} not found`);
      if (checkpoint.status === 'protecting') {
        if (checkpoint.pollsLeft > 0) checkpoint.pollsLeft--;
        else checkpoint.status = 'available';
      }
      return json({
        checkpoint: {
          id: checkpoint.id,
          project_id: state.projectId,
          status: checkpoint.status,
          created_at: checkpoint.createdAt,
          vault: { id: checkpoint.vaultId },
        },
      });
    }),
    'GET /v3/:project/backups': signed((request, state) => {
      const limit = Math.min(1000, Number(request.query.get('limit') ?? 1000));
      const offset = Math.max(0, Number(request.query.get('offset') ?? 0));
      const checkpointId = request.query.get('checkpoint_id');
      const resourceId = request.query.get('resource_id');
      const all = [...state.backups.values()].filter(
        (b) =>
          (!checkpointId || b.checkpointId === checkpointId) && (!resourceId || b.serverId === resourceId),
      );
      return json({
        count: all.length,
        backups: all.slice(offset, offset + limit).map((b) => backupJson(state, b.id)),
      });
    }),
    'GET /v3/:project/backups/:backup': signed((request, state) => {
      const id = request.params.backup!;
      if (state.backups.has(id)) return json({ backup: backupJson(state, id) });
      const found = state.findVolumeBackup(id);
      if (!found) return gatewayError(404, 'BackupService.4001', `backup ${id} not found`);
      return json({
        backup: {
          id,
          parent_id: found.backup.id,
          checkpoint_id: found.backup.checkpointId,
          resource_id: found.child.volumeId,
          resource_type: 'OS::Cinder::Volume',
          resource_size: found.child.sizeGb,
          status: 'available',
        },
      });
    }),
    'DELETE /v3/:project/backups/:backup': signed((request, state) => {
      const backup = state.backups.get(request.params.backup!);
      if (!backup)
        return gatewayError(404, 'BackupService.4001', `backup ${request.params.backup} not found`);
      state.backups.delete(backup.id);
      for (const child of backup.children) {
        const volume = state.volumes.get(child.volumeId);
        volume?.disk.deleteSnapshot(child.snapshot.id);
      }
      if (![...state.backups.values()].some((b) => b.checkpointId === backup.checkpointId)) {
        state.checkpoints.delete(backup.checkpointId);
      }
      return { status: 204 };
    }),

    'POST /v3/:project/snapshot-data/bucket-delegation': signed((request, state) => {
      if (!state.exportEnabled) return notWhiteListed(state);
      const bucket = request.json<{ delegation?: { bucket?: string } }>().delegation?.bucket;
      if (!bucket || !state.buckets.has(bucket)) {
        return gatewayError(400, 'BackupService.6304', `bucket ${bucket} does not exist in ${state.region}`);
      }
      state.delegatedBuckets.add(bucket);
      return json({ delegation: { bucket, status: 'delegated' } });
    }),
    'POST /v3/:project/backups/:backup/snapshot-data/export': signed((request, state) => {
      if (!state.exportEnabled) return notWhiteListed(state);
      const found = state.findVolumeBackup(request.params.backup!);
      if (!found) return gatewayError(404, 'BackupService.4001', `backup ${request.params.backup} not found`);
      const spec = request.json<{ export?: { bucket?: string; prefix?: string } }>().export;
      if (!spec?.bucket || !state.delegatedBuckets.has(spec.bucket)) {
        return gatewayError(400, 'BackupService.6303', `bucket ${spec?.bucket} is not delegated to CBR`);
      }
      const record = {
        id: state.newId(),
        volumeBackupId: found.child.id,
        bucket: spec.bucket,
        prefix: spec.prefix ?? `${found.child.id}/`,
        status: 'exporting' as const,
        pollsLeft: context.pollsUntilDone,
        keys: [] as string[],
      };
      state.exports.set(record.id, record);
      state.stats.exportsStarted++;
      return json({ export: { id: record.id, status: record.status } }, 202);
    }),
    'GET /v3/:project/snapshot-data/exports/:export': signed((request, state) => {
      const record = state.exports.get(request.params.export!);
      if (!record)
        return gatewayError(404, 'BackupService.6305', `export ${request.params.export} not found`);
      if (record.status === 'exporting') {
        if (record.pollsLeft > 0) record.pollsLeft--;
        else writeExport(state, record.id, context);
      }
      const objects =
        record.status === 'success'
          ? record.keys.map((key) => {
              const o = state.buckets.get(record.bucket)!.get(key)!;
              return { key, volume_id: o.volumeId, offset: o.offset, length: o.length };
            })
          : [];
      return json({
        export: {
          id: record.id,
          status: record.status,
          backup_id: record.volumeBackupId,
          bucket: record.bucket,
          prefix: record.prefix,
          objects,
          ...(record.failReason ? { fail_reason: record.failReason } : {}),
        },
      });
    }),
  };
  return handlers;
}

function notWhiteListed(state: MockHuaweiState): MockResponse {
  return gatewayError(
    403,
    'BackupService.6302',
    `The CBR snapshot data export is not enabled for this account in ${state.region} (white list)`,
  );
}

/** Writes an export's objects: one per `exportObjectBytes` segment of the volume backup that holds data. */
function writeExport(state: MockHuaweiState, exportId: string, context: CloudRoutesContext): void {
  const record = state.exports.get(exportId)!;
  const found = state.findVolumeBackup(record.volumeBackupId);
  const objects = state.buckets.get(record.bucket);
  if (!found || !objects) {
    record.status = 'failed';
    record.failReason = 'the backup or the bucket went away during the export';
    return;
  }
  const { snapshot, volumeId } = found.child;
  const size = context.exportObjectBytes;
  const segments = new Set<number>();
  for (const extent of snapshot.allocatedExtents()) {
    for (let s = Math.floor(extent.offset / size); s * size < extent.offset + extent.length; s++)
      segments.add(s);
  }
  const failAfter = state.failNextExportAfterObjects;
  let written = 0;
  for (const segment of [...segments].sort((a, b) => a - b)) {
    if (failAfter !== undefined && written >= failAfter) {
      state.failNextExportAfterObjects = undefined;
      record.status = 'failed';
      record.failReason = 'CBR.9999 internal error while writing the snapshot data';
      return;
    }
    const offset = segment * size;
    const object: MockExportedObject = {
      key: `${record.prefix}${volumeId}/${offset.toString(16).padStart(12, '0')}`,
      volumeId,
      offset,
      length: Math.min(size, snapshot.sizeBytes - offset),
      source: snapshot,
      lastModified: new Date(context.now()).toISOString(),
    };
    objects.set(object.key, object);
    record.keys.push(object.key);
    state.stats.objectsWritten++;
    written++;
  }
  record.status = 'success';
}
