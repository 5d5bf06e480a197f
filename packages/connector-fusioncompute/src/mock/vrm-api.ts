import { createHash, timingSafeEqual } from 'node:crypto';
import type { MockRequest, MockResponse, RouteTable } from '@syncproxy/testkit/mock';
import { encodeBitmap } from '../cbt-bitmap.js';
import {
  MOCK_ERRORS,
  type MockErrorName,
  type MockFcState,
  type MockSnapshot,
  type MockTask,
  type MockVm,
  type MockVolume,
} from './state.js';

const SECTOR = 512;
const SNAPSHOT_STATES = new Set(['running', 'hibernated', 'stopped']);

/** FusionCompute's error answer: `{errorCode, errorDes}`. */
export function fcError(status: number, name: MockErrorName, detail?: string): MockResponse {
  const [errorCode, errorDes] = MOCK_ERRORS[name];
  return { status, body: { errorCode, errorDes: detail ? `${errorDes}: ${detail}` : errorDes } };
}

function header(request: MockRequest, name: string): string | undefined {
  const value = request.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * The VRM's REST API as the public clients use it (platforms/fusioncompute.md):
 * header login, the versioned Accept, sites, hosts, VMs and volumes paged with
 * limit/offset, CBTbackup snapshots, getcbt, backup resources, tasks, and
 * `{errorCode, errorDes}` errors.
 */
export function vrmRoutes(): RouteTable<MockFcState> {
  /** Checks the Accept version and the token; undefined when the call may go on. */
  const guard = (request: MockRequest, state: MockFcState, session = true): MockResponse | undefined => {
    const accept = header(request, 'accept') ?? '';
    const version = /version=([0-9.]+)/.exec(accept)?.[1];
    if (version === undefined || !state.options.versions.includes(version))
      return fcError(400, 'badVersion', `Accept ${JSON.stringify(accept)}`);
    if (!session) return undefined;
    const token = header(request, 'x-auth-token');
    const expiry = token === undefined ? undefined : state.sessions.get(token);
    if (expiry === undefined || expiry <= state.now()) {
      if (token !== undefined) state.sessions.delete(token);
      return fcError(401, 'sessionExpired');
    }
    return undefined;
  };
  const authed =
    (handler: (request: MockRequest, state: MockFcState) => MockResponse | Promise<MockResponse>) =>
    (request: MockRequest, state: MockFcState) => {
      const refused = guard(request, state);
      if (refused) return refused;
      state.count(`${request.method} ${request.path.replace(/\/[a-z]+-\d{8}/g, '/:id')}`);
      return handler(request, state);
    };
  const vmOf = (state: MockFcState, id: string | undefined): MockVm | undefined =>
    id === undefined ? undefined : state.vms.get(id);
  const volumeOf = (state: MockFcState, id: string | undefined): MockVolume | undefined =>
    id === undefined ? undefined : state.volumes.get(id);
  const page = <T>(request: MockRequest, state: MockFcState, items: T[]) => {
    const limit = Number(request.query.get('limit') ?? 20);
    const offset = Number(request.query.get('offset') ?? 0);
    if (!Number.isInteger(limit) || limit < 1 || limit > state.options.maxPageSize)
      return { error: fcError(400, 'badRequest', `limit must be 1..${state.options.maxPageSize}`) };
    if (!Number.isInteger(offset) || offset < 0) return { error: fcError(400, 'badRequest', 'offset') };
    return { total: items.length, items: items.slice(offset, offset + limit) };
  };

  return {
    'GET /service/versions': (request, state) => {
      state.count('GET /service/versions');
      return {
        body: {
          versions: state.options.versions.map((version) => ({
            version,
            url: `https://${header(request, 'host')}/service`,
          })),
        },
      };
    },

    'POST /service/session': (request, state) => {
      const refused = guard(request, state, false);
      if (refused) return refused;
      const name = header(request, 'x-auth-user');
      const key = header(request, 'x-auth-key');
      const type = header(request, 'x-auth-usertype');
      const algorithm = header(request, 'x-encript-algorithm') ?? header(request, 'x-encrypt-algorithm');
      const user = state.options.users.find((u) => u.name === name);
      const sha = user ? createHash('sha256').update(user.password, 'utf8').digest('hex') : '';
      // Public clients send the password as typed (algorithm 1) or its SHA-256 in hex (algorithm 0, or no header).
      const keyOk =
        user !== undefined &&
        key !== undefined &&
        (algorithm === '1'
          ? safeEqual(key, user.password)
          : algorithm === '0'
            ? safeEqual(key.toLowerCase(), sha)
            : safeEqual(key, user.password) || safeEqual(key.toLowerCase(), sha));
      if (!keyOk || user === undefined || type !== user.type) {
        state.count('login refused');
        return fcError(401, 'authFailed');
      }
      const token = state.token();
      state.sessions.set(token, state.now() + state.options.sessionLifetimeMs);
      state.count('login');
      return {
        headers: { 'X-Auth-Token': token },
        body: {
          validity: Math.floor(state.options.sessionLifetimeMs / 1000),
          rightType: '1',
          privilegeIds: [],
          userId: '1',
          userName: user.name,
          roleList: ['administrator'],
        },
      };
    },

    'DELETE /service/session': authed((request, state) => {
      state.sessions.delete(header(request, 'x-auth-token')!);
      state.count('logout');
      return { body: {} };
    }),

    'GET /service/sites': authed((_request, state) => ({
      body: {
        sites: [
          {
            uri: state.siteUri,
            urn: `urn:sites:${state.siteId}`,
            name: 'ManagementCluster',
            status: 'normal',
          },
        ],
      },
    })),

    'GET /service/sites/:site/hosts': authed((request, state) => {
      const all = [...state.hosts.values()].map((h) => ({
        uri: h.uri,
        urn: h.urn,
        name: h.name,
        ip: h.ip,
        status: 'normal',
      }));
      const p = page(request, state, all);
      return p.error ?? { body: { total: p.total, hosts: p.items } };
    }),

    'GET /service/sites/:site/vms': authed((request, state) => {
      const all = [...state.vms.values()].map((vm) => vmJson(state, vm));
      const p = page(request, state, all);
      return p.error ?? { body: { total: p.total, vms: p.items } };
    }),

    'GET /service/sites/:site/vms/:vm': authed((request, state) => {
      const vm = vmOf(state, request.params.vm);
      return vm ? { body: vmJson(state, vm) } : fcError(404, 'vmNotFound');
    }),

    'POST /service/sites/:site/vms/:vm/snapshots': authed((request, state) => {
      const vm = vmOf(state, request.params.vm);
      if (vm === undefined) return fcError(404, 'vmNotFound');
      const body = request.json<{ name?: string; description?: string; type?: string }>();
      if (typeof body.name !== 'string' || body.name === '') return fcError(400, 'badRequest', 'name');
      const volumes = vm.volumeIds.map((id) => state.volumes.get(id)!);
      if (vm.isTemplate || vm.isLinkClone) return fcError(400, 'templateOrClone');
      if (volumes.some((v) => v.volType === 'share')) return fcError(400, 'sharedDisk');
      if (vm.busyWith !== undefined) return fcError(409, 'vmBusy', vm.busyWith);
      if (!SNAPSHOT_STATES.has(vm.status)) return fcError(409, 'vmBusy', `the VM is ${vm.status}`);
      if (body.type === 'CBTbackup' && vm.pvDriverStatus !== 'running')
        return fcError(400, 'toolsNotRunning');
      if (vm.snapshots.size >= 32) return fcError(400, 'tooManySnapshots');
      const id = state.nextId('snapshot');
      const snapshot: MockSnapshot = {
        id,
        urn: `${vm.urn}:snapshots:${id}`,
        uri: `${vm.uri}/snapshots/${id}`,
        vmId: vm.id,
        name: body.name,
        description: body.description ?? '',
        type: body.type ?? 'normal',
        createTime: state.timeString(),
        // Independent disks are left out of snapshots, as on the platform.
        vols: volumes
          .filter((v) => !v.indepDisk)
          .map((v) => {
            const chgID = state.nextChgId();
            const view = v.disk.snapshot(`${id}-${v.id}`);
            v.generations.set(chgID, view);
            return {
              volumeId: v.id,
              snapUuid: `${id}-${v.id}`,
              chgID,
              volCBTCreateTime: v.cbtCreateTime,
              view,
            };
          }),
      };
      const failure = takeFailure(state, 'CreateSnapshot');
      if (failure === undefined) vm.snapshots.set(id, snapshot);
      else for (const v of snapshot.vols) state.volumes.get(v.volumeId)!.disk.deleteSnapshot(v.snapUuid);
      const task = state.newTask(failure);
      return {
        status: 202,
        body: { urn: snapshot.urn, uri: snapshot.uri, taskUrn: task.urn, taskUri: task.uri },
      };
    }),

    'GET /service/sites/:site/vms/:vm/snapshots': authed((request, state) => {
      const vm = vmOf(state, request.params.vm);
      if (vm === undefined) return fcError(404, 'vmNotFound');
      return {
        body: {
          rootSnapshots: [...vm.snapshots.values()].map((s) => ({
            ...snapshotJson(state, s),
            childSnapshots: [],
          })),
        },
      };
    }),

    'GET /service/sites/:site/vms/:vm/snapshots/:snap': authed((request, state) => {
      const snapshot = vmOf(state, request.params.vm)?.snapshots.get(request.params.snap!);
      return snapshot ? { body: snapshotJson(state, snapshot) } : fcError(404, 'snapNotFound');
    }),

    'DELETE /service/sites/:site/vms/:vm/snapshots/:snap': authed((request, state) => {
      const vm = vmOf(state, request.params.vm);
      const snapshot = vm?.snapshots.get(request.params.snap!);
      if (vm === undefined || snapshot === undefined) return fcError(404, 'snapNotFound');
      vm.snapshots.delete(snapshot.id);
      for (const v of snapshot.vols) state.volumes.get(v.volumeId)?.disk.deleteSnapshot(v.snapUuid);
      const task = state.newTask();
      return { status: 202, body: { taskUrn: task.urn, taskUri: task.uri } };
    }),

    'GET /service/sites/:site/tasks/:task': authed((request, state) => {
      const task = state.tasks.get(request.params.task!);
      if (task === undefined) return fcError(404, 'notFound', 'task');
      return { body: pollTask(state, task) };
    }),

    'GET /service/sites/:site/volumes': authed((request, state) => {
      const all = [...state.volumes.values()].map((v) => volumeJson(v));
      const p = page(request, state, all);
      return p.error ?? { body: { total: p.total, volumes: p.items } };
    }),

    'GET /service/sites/:site/volumes/:vol': authed((request, state) => {
      const volume = volumeOf(state, request.params.vol);
      return volume ? { body: volumeJson(volume) } : fcError(404, 'notFound', 'volume');
    }),

    'POST /service/sites/:site/volumes/:vol/getcbt': authed((request, state) => {
      const volume = volumeOf(state, request.params.vol);
      if (volume === undefined) return fcError(404, 'notFound', 'volume');
      const body = request.json<{
        type?: string;
        snapUuid?: string;
        volCBTCreateTime?: string;
        chgID?: string;
        startBlock?: number;
        blockNum?: number;
      }>();
      if (body.type !== 'DiffBitmapAndBit1Num' && body.type !== 'DiffBitmapBit1Num')
        return fcError(400, 'badRequest', 'type');
      const startBlock = body.startBlock ?? 0;
      const blockNum = body.blockNum;
      if (
        !Number.isSafeInteger(startBlock) ||
        !Number.isSafeInteger(blockNum) ||
        startBlock < 0 ||
        blockNum === undefined ||
        blockNum < 1 ||
        startBlock % 8 !== 0 ||
        blockNum % 8 !== 0
      )
        return fcError(400, 'cbtAlign');
      const target = findVolSnapshot(state, volume, body.snapUuid);
      if (target === undefined) return fcError(404, 'snapNotFound');
      if (body.volCBTCreateTime !== undefined && body.volCBTCreateTime !== target.volCBTCreateTime)
        return fcError(400, 'cbtInvalid', 'volCBTCreateTime');
      let base: ReturnType<MockVolume['generations']['get']>;
      if (body.chgID !== undefined) {
        base = volume.generations.get(body.chgID);
        if (base === undefined || target.volCBTCreateTime !== volume.cbtCreateTime)
          return fcError(400, 'cbtInvalid', `chgID ${body.chgID}`);
      }
      const blockSize = volume.disk.blockSizeBytes;
      const totalBlocks = Math.ceil(volume.disk.sizeBytes / blockSize);
      const bitNum = Math.max(0, Math.min(blockNum, totalBlocks - startBlock));
      const bits = new Uint8Array(Math.ceil(bitNum / 8));
      let bit1Num = 0;
      for (const extent of volume.disk.changedExtents(base, target.view)) {
        const first = Math.max(extent.offset / blockSize, startBlock);
        const end = Math.min(Math.ceil((extent.offset + extent.length) / blockSize), startBlock + bitNum);
        for (let b = first; b < end; b++) {
          bits[(b - startBlock) >> 3]! |= 1 << ((b - startBlock) & 7);
          bit1Num++;
        }
      }
      return {
        body: {
          sectorOfBlock: blockSize / SECTOR,
          bitNum,
          bit1Num,
          bitMap: encodeBitmap(bits, bitNum, state.options.bitmapEncoding),
        },
      };
    }),

    'POST /service/sites/:site/volumes/:vol/backupresources': authed((request, state) => {
      const volume = volumeOf(state, request.params.vol);
      if (volume === undefined) return fcError(404, 'notFound', 'volume');
      const body = request.json<{
        taskType?: string;
        ip?: string;
        snapUrn2?: string;
        transMode?: string;
        delay?: number;
        description?: string;
      }>();
      if (body.taskType !== 'CBTBackup' && body.taskType !== 'BackupVol')
        return fcError(400, 'badRequest', 'taskType');
      if (typeof body.ip !== 'string' || body.ip === '') return fcError(400, 'badRequest', 'ip');
      if (body.transMode !== state.options.dataTransport)
        return fcError(
          400,
          'badRequest',
          `transMode ${body.transMode} (this host serves ${state.options.dataTransport})`,
        );
      const delay = body.delay ?? 0;
      if (!Number.isInteger(delay) || delay < 60 || delay > 7200) return fcError(400, 'badRequest', 'delay');
      const vm = state.vms.get(volume.vmId)!;
      const snapshot = [...vm.snapshots.values()].find((s) => s.urn === body.snapUrn2);
      const vol = snapshot?.vols.find((v) => v.volumeId === volume.id);
      if (snapshot === undefined || vol === undefined) return fcError(404, 'snapNotFound');
      if (state.volumesInBackup(vm.hostId) >= state.options.maxVolumesInBackupPerHost)
        return fcError(
          403,
          'backupLimit',
          `host ${vm.hostId} already backs up ${state.options.maxVolumesInBackupPerHost} volumes`,
        );
      const failure = takeFailure(state, 'CreateBackupResource');
      const task = state.newTask(failure);
      if (failure === undefined) {
        state.backupResources.set(task.id, {
          id: task.id,
          volumeId: volume.id,
          hostId: vm.hostId,
          snapshotId: snapshot.id,
          view: vol.view,
          token: state.token(),
          ip: body.ip,
          transMode: body.transMode,
          description: body.description ?? '',
          createdAt: state.now(),
          delaySec: delay,
          status: 'running',
        });
        const inBackup = state.volumesInBackup(vm.hostId);
        state.peakVolumesInBackup.set(
          vm.hostId,
          Math.max(state.peakVolumesInBackup.get(vm.hostId) ?? 0, inBackup),
        );
      }
      return { status: 202, body: { taskUrn: task.urn, taskUri: task.uri } };
    }),

    'GET /service/sites/:site/volumes/:vol/backupresources': authed((request, state) => {
      const volume = volumeOf(state, request.params.vol);
      if (volume === undefined) return fcError(404, 'notFound', 'volume');
      return {
        body: {
          backupResources: [...state.backupResources.values()]
            .filter((r) => r.volumeId === volume.id)
            .map((r) => ({ id: r.id, ...resourceJson(state, r) })),
        },
      };
    }),

    'GET /service/sites/:site/volumes/:vol/backupresources/:id': authed((request, state) => {
      const resource = state.backupResources.get(request.params.id!);
      if (resource === undefined || resource.volumeId !== request.params.vol)
        return fcError(404, 'notFound', 'backup resource');
      return { body: resourceJson(state, resource) };
    }),

    'PUT /service/sites/:site/volumes/:vol/backupresources/:id': authed((request, state) => {
      const resource = state.backupResources.get(request.params.id!);
      if (resource === undefined || resource.volumeId !== request.params.vol)
        return fcError(404, 'notFound', 'backup resource');
      const { delay } = request.json<{ delay?: number }>();
      if (!Number.isInteger(delay) || delay! < 60 || delay! > 7200)
        return fcError(400, 'badRequest', 'delay (60..7200 in all)');
      if (resource.createdAt + resource.delaySec * 1000 <= state.now()) return fcError(401, 'tokenExpired');
      resource.delaySec = delay!;
      state.count('backup resource extended');
      return { body: {} };
    }),

    'DELETE /service/sites/:site/volumes/:vol/backupresources/:id': authed((request, state) => {
      const resource = state.backupResources.get(request.params.id!);
      if (resource === undefined || resource.volumeId !== request.params.vol)
        return fcError(404, 'notFound', 'backup resource');
      state.backupResources.delete(resource.id);
      return { body: {} };
    }),
  };
}

function takeFailure(
  state: MockFcState,
  operation: string,
): { reason: string; reasonDes: string } | undefined {
  const next = state.nextTaskFailure;
  if (next === undefined || next.operation !== operation) return undefined;
  state.nextTaskFailure = undefined;
  const [reason, reasonDes] = MOCK_ERRORS[next.error];
  return { reason, reasonDes };
}

function pollTask(state: MockFcState, task: MockTask) {
  if (task.done === undefined) {
    if (task.pollsLeft > 0 || state.now() < task.readyAt) {
      task.pollsLeft--;
      task.progress = Math.min(90, task.progress + 45);
    } else {
      task.done = task.failure ? 'failed' : 'success';
      task.progress = 100;
    }
  }
  return {
    urn: task.urn,
    uri: task.uri,
    status: task.done ?? (task.progress === 0 ? 'waiting' : 'running'),
    progress: task.progress,
    ...(task.done === 'failed' && task.failure ? task.failure : {}),
  };
}

function findVolSnapshot(state: MockFcState, volume: MockVolume, snapUuid: string | undefined) {
  if (snapUuid === undefined) return undefined;
  const vm = state.vms.get(volume.vmId)!;
  for (const s of vm.snapshots.values()) {
    const found = s.vols.find((v) => v.snapUuid === snapUuid && v.volumeId === volume.id);
    if (found) return found;
  }
  return undefined;
}

function vmJson(state: MockFcState, vm: MockVm) {
  const host = state.hosts.get(vm.hostId);
  return {
    uri: vm.uri,
    urn: vm.urn,
    name: vm.name,
    status: vm.status,
    isTemplate: vm.isTemplate,
    isLinkClone: vm.isLinkClone,
    hostUrn: host?.urn,
    hostName: host?.name,
    pvDriverStatus: vm.pvDriverStatus,
    toolInstallStatus: vm.pvDriverStatus === 'running' ? 'installed' : 'empty',
    vmConfig: {
      disks: vm.volumeIds.map((id, i) => {
        const v = state.volumes.get(id)!;
        return {
          sequenceNum: i + 1,
          volumeUrn: v.urn,
          volumeUri: v.uri,
          quantityGB: v.quantityGB,
          indepDisk: v.indepDisk,
          persistentDisk: true,
          volType: v.volType,
          storageType: v.storageType,
          isThin: true,
        };
      }),
    },
  };
}

function volumeJson(v: MockVolume) {
  return {
    uri: v.uri,
    urn: v.urn,
    name: v.name,
    quantityGB: v.quantityGB,
    type: v.volType,
    storageType: v.storageType,
    indepDisk: v.indepDisk,
  };
}

function snapshotJson(state: MockFcState, s: MockSnapshot) {
  return {
    urn: s.urn,
    uri: s.uri,
    name: s.name,
    description: s.description,
    createTime: s.createTime,
    type: s.type,
    status: 'ready',
    volsnapshots: s.vols.map((v) => {
      const volume = state.volumes.get(v.volumeId)!;
      return {
        volumeUrn: volume.urn,
        volumeUri: volume.uri,
        snapUuid: v.snapUuid,
        chgID: v.chgID,
        volCBTCreateTime: v.volCBTCreateTime,
      };
    }),
  };
}

function resourceJson(
  state: MockFcState,
  r: MockFcState['backupResources'] extends Map<string, infer R> ? R : never,
) {
  const host = state.hosts.get(r.hostId)!;
  return {
    urn: `urn:sites:${state.siteId}:backupresources:${r.id}`,
    uri: `${state.volumes.get(r.volumeId)!.uri}/backupresources/${r.id}`,
    resourceUrl: `/backup/${r.id}/data`,
    hostIP: host.ip,
    hostPort: host.server.port,
    targetFile: `/dev/disk/by-id/${r.snapshotId}`,
    token: r.token,
    status: r.status,
    ...(r.reason ? { reason: MOCK_ERRORS[r.reason][0], reasonDes: MOCK_ERRORS[r.reason][1] } : {}),
    runningTime: Math.floor((state.now() - r.createdAt) / 1000),
    ...(host.server.tls ? { caCert: host.server.tls.cert } : {}),
    taskUri: `${state.siteUri}/tasks/${r.id}`,
    taskUrn: `urn:sites:${state.siteId}:tasks:${r.id}`,
    delay: r.delaySec,
    description: r.description,
    createTime: new Date(r.createdAt).toISOString(),
  };
}
