import type { Extent } from '@syncproxy/core';
import type { MockRequest, MockResponse } from '@syncproxy/testkit/mock';
import {
  child,
  faultEnvelope,
  list,
  MoRef,
  parseXml,
  readMoRef,
  responseEnvelope,
  text,
  type XmlNode,
  type XmlValue,
} from '../soap/xml.js';
import type { MockDisk, MockSnapshot, MockSnapshotDisk, MockVcenterState, MockVm } from './state.js';

export interface VimApiOptions {
  user: string;
  password: string;
  apiVersion: string;
}

const XML_HEADERS = { 'content-type': 'text/xml; charset=utf-8' };

/** A vim25 fault, thrown inside a handler and sent as HTTP 500 with a SOAP Fault. */
export class MockFault extends Error {
  constructor(
    readonly faultType: string,
    message: string,
    readonly detail: Record<string, XmlValue> = {},
  ) {
    super(message);
  }
}

function ok(method: string, returnval: XmlValue): MockResponse {
  return { status: 200, headers: XML_HEADERS, body: responseEnvelope(method, returnval) };
}

const str = (value: string): XmlValue => ({ $type: 'xsd:string', $text: value });
const bool = (value: boolean): XmlValue => ({ $type: 'xsd:boolean', $text: String(value) });

function notFound(type: string, value: string): MockFault {
  return new MockFault(
    'ManagedObjectNotFound',
    `The object 'vim.${type}:${value}' has already been deleted or has not been completely created`,
    { obj: new MoRef(type, value) },
  );
}

function cookieOf(header: string | string[] | undefined): string | undefined {
  const all = Array.isArray(header) ? header.join(';') : (header ?? '');
  return /vmware_soap_session="?([^";]+)"?/.exec(all)?.[1];
}

/**
 * The `POST /sdk` handler of the mock vCenter: a SOAP 1.1 envelope in, a
 * vim25 response or fault out, with the shapes of govmomi's `vim25/types`.
 */
export function vimHandler(options: VimApiOptions) {
  const pages = new Map<string, XmlValue[]>();
  return (request: MockRequest, state: MockVcenterState): MockResponse => {
    let method = 'Unknown';
    try {
      const envelope = parseXml(request.text());
      const body = child(envelope.Envelope, 'Body');
      const entry =
        body && typeof body === 'object' && !Array.isArray(body)
          ? Object.entries(body).find(([key]) => !key.startsWith('@_') && key !== '#text')
          : undefined;
      if (entry === undefined) throw new MockFault('InvalidRequest', 'no method in the SOAP body');
      method = entry[0];
      const node = entry[1] as XmlNode;
      state.count(method);
      const self = readMoRef(child(node, '_this'));
      if (method === 'RetrieveServiceContent') return ok(method, serviceContent(options.apiVersion));
      if (method === 'Login') {
        if (
          text(child(node, 'userName')) !== options.user ||
          text(child(node, 'password')) !== options.password
        ) {
          throw new MockFault(
            'InvalidLogin',
            'Cannot complete login due to an incorrect user name or password.',
          );
        }
        const key = `${state.next('session')}-${Math.random().toString(16).slice(2)}`;
        state.sessions.add(key);
        state.stats.logins++;
        return {
          status: 200,
          headers: {
            ...XML_HEADERS,
            'set-cookie': `vmware_soap_session="${key}"; Path=/; HttpOnly; Secure;`,
          },
          body: responseEnvelope(method, {
            key,
            userName: options.user,
            fullName: options.user,
            loginTime: new Date().toISOString(),
            lastActiveTime: new Date().toISOString(),
            locale: 'en',
            messageLocale: 'en',
          }),
        };
      }
      const session = cookieOf(request.headers.cookie);
      if (session === undefined || !state.sessions.has(session)) {
        state.stats.notAuthenticated++;
        throw new MockFault('NotAuthenticated', 'The session is not authenticated.', {
          object: new MoRef('SessionManager', 'SessionManager'),
          privilegeId: 'System.View',
        });
      }
      if (method === 'Logout') {
        state.sessions.delete(session);
        return ok(method, undefined);
      }
      if (self === undefined) throw new MockFault('InvalidRequest', `${method} has no _this`);
      switch (method) {
        case 'CreateContainerView':
          return ok(method, createView(state, node));
        case 'DestroyView':
          state.views.delete(self.value);
          return ok(method, undefined);
        case 'RetrievePropertiesEx':
          return ok(method, retrieve(state, node, pages));
        case 'ContinueRetrievePropertiesEx':
          return ok(method, page(state, pages, text(child(node, 'token')) ?? '', Number.POSITIVE_INFINITY));
        case 'CancelRetrievePropertiesEx':
          pages.delete(text(child(node, 'token')) ?? '');
          return ok(method, undefined);
        case 'ReconfigVM_Task':
          return ok(method, reconfigure(state, self, node));
        case 'CreateSnapshot_Task':
          return ok(method, createSnapshot(state, self, node));
        case 'RemoveSnapshot_Task':
          return ok(method, removeSnapshot(state, self));
        case 'QueryChangedDiskAreas':
          return ok(method, queryChangedDiskAreas(state, self, node));
        default:
          throw new MockFault('MethodNotFound', `${self.value} does not implement: ${method}`, {
            receiver: self,
            method,
          });
      }
    } catch (error) {
      if (error instanceof MockFault) {
        return {
          status: 500,
          headers: XML_HEADERS,
          body: faultEnvelope(error.faultType, error.message, error.detail),
        };
      }
      return {
        status: 500,
        headers: XML_HEADERS,
        body: faultEnvelope('SystemError', `${method}: ${(error as Error).message}`, {
          reason: (error as Error).message,
        }),
      };
    }
  };
}

function serviceContent(apiVersion: string): XmlValue {
  return {
    rootFolder: new MoRef('Folder', 'group-d1'),
    propertyCollector: new MoRef('PropertyCollector', 'propertyCollector'),
    viewManager: new MoRef('ViewManager', 'ViewManager'),
    about: {
      name: 'VMware vCenter Server',
      fullName: `VMware vCenter Server ${apiVersion} build-00000000 (syncproxy mock)`,
      vendor: 'VMware, Inc.',
      version: apiVersion.split('.').slice(0, 3).join('.'),
      build: '00000000',
      osType: 'linux-x64',
      productLineId: 'vpx',
      apiType: 'VirtualCenter',
      apiVersion,
      instanceUuid: '00000000-0000-0000-0000-000000000001',
    },
    sessionManager: new MoRef('SessionManager', 'SessionManager'),
  };
}

function createView(state: MockVcenterState, node: XmlNode): XmlValue {
  const types = list(child(node, 'type')).map((t) => text(t) ?? '');
  const members: string[] = [];
  for (const type of types) {
    if (type === 'VirtualMachine') for (const vm of state.vms.keys()) members.push(`VirtualMachine:${vm}`);
    else if (type === 'HostSystem') for (const host of state.hosts.keys()) members.push(`HostSystem:${host}`);
  }
  const moref = `session[mock]${state.next('view')}`;
  state.views.set(moref, members);
  return new MoRef('ContainerView', moref);
}

function retrieve(state: MockVcenterState, node: XmlNode, pages: Map<string, XmlValue[]>): XmlValue {
  const objects: XmlValue[] = [];
  for (const spec of list(child(node, 'specSet'))) {
    const propSets = list(child(spec, 'propSet')).map((p) => ({
      type: text(child(p, 'type')) ?? '',
      paths: list(child(p, 'pathSet')).map((x) => text(x) ?? ''),
    }));
    for (const objectSpec of list(child(spec, 'objectSet'))) {
      const obj = readMoRef(child(objectSpec, 'obj'));
      if (obj === undefined)
        throw new MockFault('InvalidArgument', 'objectSet.obj missing', { invalidProperty: 'obj' });
      const targets: MoRef[] = [];
      if (text(child(objectSpec, 'skip')) !== 'true') targets.push(obj);
      const traverses = list(child(objectSpec, 'selectSet')).some((s) => text(child(s, 'path')) === 'view');
      if (obj.type === 'ContainerView' && traverses) {
        const members = state.views.get(obj.value);
        if (members === undefined) throw notFound('ContainerView', obj.value);
        for (const member of members) {
          const [type, value] = member.split(':') as [string, string];
          targets.push(new MoRef(type, value));
        }
      }
      for (const target of targets) {
        const wanted = propSets.find((p) => p.type === target.type);
        if (wanted === undefined) continue;
        const propSet: XmlValue[] = [];
        const missingSet: XmlValue[] = [];
        for (const path of wanted.paths) {
          const missing = propertyFault(state, target, path);
          if (missing !== undefined) {
            missingSet.push(missing);
            continue;
          }
          const val = propertyOf(state, target, path);
          if (val !== undefined) propSet.push({ name: path, val });
        }
        objects.push({ obj: target, propSet, ...(missingSet.length > 0 ? { missingSet } : {}) });
      }
    }
  }
  const maxObjects = Number(text(child(child(node, 'options'), 'maxObjects')) ?? Number.POSITIVE_INFINITY);
  const token = state.next('token');
  pages.set(token, objects);
  return page(state, pages, token, maxObjects);
}

/**
 * A `MissingProperty` for a property the arranged faults refuse: `path`, and a
 * LocalizedMethodFault whose inner fault carries the SecurityError's type and
 * fields (vim.fault.NoPermission: `object`, `privilegeId`).
 */
function propertyFault(state: MockVcenterState, obj: MoRef, path: string): XmlValue {
  const rule = state.propertyFaults.find(
    (r) => r.path === path && (r.type === undefined || r.type === obj.type) && (r.times ?? 1) > 0,
  );
  if (rule === undefined) return undefined;
  if (rule.times !== undefined) rule.times--;
  if (rule.faultType === 'NotAuthenticated') {
    state.stats.notAuthenticated++;
    return {
      path: str(path),
      fault: {
        fault: { $type: 'NotAuthenticated', object: obj, privilegeId: str('System.View') },
        localizedMessage: str('The session is not authenticated.'),
      },
    };
  }
  const privilegeId = rule.privilegeId ?? 'System.Read';
  return {
    path: str(path),
    fault: {
      fault: { $type: 'NoPermission', object: obj, privilegeId: str(privilegeId) },
      localizedMessage: str(
        `Permission to perform this operation was denied. Required privilege '${privilegeId}' on managed object with id '${obj.value}'.`,
      ),
    },
  };
}

function page(
  state: MockVcenterState,
  pages: Map<string, XmlValue[]>,
  token: string,
  maxObjects: number,
): XmlValue {
  const objects = pages.get(token);
  if (objects === undefined)
    throw new MockFault('InvalidArgument', `unknown token ${token}`, { invalidProperty: 'token' });
  const size = Math.max(
    1,
    Math.min(Number.isFinite(maxObjects) && maxObjects > 0 ? maxObjects : Infinity, state.maxObjectsPerPage),
  );
  const now = objects.splice(0, size);
  if (objects.length === 0) pages.delete(token);
  if (now.length === 0) return undefined;
  return { token: objects.length > 0 ? token : undefined, objects: now };
}

function propertyOf(state: MockVcenterState, obj: MoRef, path: string): XmlValue {
  if (obj.type === 'HostSystem') {
    const name = state.hosts.get(obj.value);
    if (name === undefined) throw notFound(obj.type, obj.value);
    return path === 'name' ? str(name) : undefined;
  }
  if (obj.type === 'Task') {
    const task = state.tasks.get(obj.value);
    if (task === undefined) throw notFound(obj.type, obj.value);
    return path === 'info' ? taskInfo(state, task) : undefined;
  }
  if (obj.type === 'VirtualMachineSnapshot') {
    const snapshot = state.snapshots.get(obj.value);
    if (snapshot === undefined) throw notFound(obj.type, obj.value);
    if (path === 'config.hardware.device') return devices(snapshot.disks);
    if (path === 'vm') return new MoRef('VirtualMachine', snapshot.vm, true);
    return undefined;
  }
  if (obj.type === 'VirtualMachine') {
    const vm = state.vms.get(obj.value);
    if (vm === undefined) throw notFound(obj.type, obj.value);
    switch (path) {
      case 'name':
        return str(vm.name);
      case 'config.uuid':
        return str(vm.uuid);
      case 'config.template':
        return bool(false);
      case 'config.guestFullName':
        return str('Ubuntu Linux (64-bit)');
      case 'config.changeTrackingEnabled':
        return bool(vm.cbtEnabled);
      case 'config.hardware.device':
        return devices(vm.disks.map((d) => liveDisk(vm, d)));
      case 'runtime.powerState':
        return { $type: 'VirtualMachinePowerState', $text: vm.powerState };
      case 'runtime.host':
        return new MoRef('HostSystem', vm.host, true);
      case 'guest.toolsRunningStatus':
        return str(vm.toolsRunning ? 'guestToolsRunning' : 'guestToolsNotRunning');
      case 'snapshot':
        return snapshotInfo(state, vm);
      default:
        return undefined;
    }
  }
  throw notFound(obj.type, obj.value);
}

function liveDisk(vm: MockVm, d: MockDisk): Omit<MockSnapshotDisk, 'view'> {
  return {
    key: d.key,
    label: d.label,
    fileName: d.fileName,
    capacityBytes: d.disk.sizeBytes,
    changeId: vm.cbtEnabled ? `${d.cbt.uuid}/${d.cbt.sequence}` : undefined,
    diskMode: d.diskMode,
    physicalRdm: d.physicalRdm,
  };
}

function devices(disks: Array<Omit<MockSnapshotDisk, 'view'>>): XmlValue {
  const controller: XmlValue = {
    $type: 'ParaVirtualSCSIController',
    key: 1000,
    deviceInfo: { label: 'SCSI controller 0', summary: 'VMware paravirtual SCSI' },
    controllerKey: 100,
    unitNumber: 3,
    busNumber: 0,
    device: disks.map((d) => d.key),
    sharedBus: 'noSharing',
    scsiCtlrUnitNumber: 7,
  };
  const virtualDisks: XmlValue[] = disks.map((d, i) => ({
    $type: 'VirtualDisk',
    key: d.key,
    deviceInfo: { label: d.label, summary: `${Math.ceil(d.capacityBytes / 1024)} KB` },
    backing: d.physicalRdm
      ? {
          $type: 'VirtualDiskRawDiskMappingVer1BackingInfo',
          fileName: d.fileName,
          datastore: new MoRef('Datastore', 'datastore-1'),
          lunUuid: '0200000000600a0b80002a2aba00000000000000',
          deviceName: '/vmfs/devices/disks/naa.600a0b80002a2aba',
          compatibilityMode: 'physicalMode',
          diskMode: d.diskMode,
          changeId: d.changeId,
        }
      : {
          $type: 'VirtualDiskFlatVer2BackingInfo',
          fileName: d.fileName,
          datastore: new MoRef('Datastore', 'datastore-1'),
          diskMode: d.diskMode,
          thinProvisioned: true,
          uuid: `6000C29${String(d.key).padStart(9, '0')}-0000-0000-0000-000000000000`,
          changeId: d.changeId,
        },
    controllerKey: 1000,
    unitNumber: i,
    capacityInKB: Math.floor(d.capacityBytes / 1024),
    capacityInBytes: d.capacityBytes,
  }));
  return { $type: 'ArrayOfVirtualDevice', VirtualDevice: [controller, ...virtualDisks] };
}

function snapshotInfo(state: MockVcenterState, vm: MockVm): XmlValue {
  const chain = vm.snapshots
    .map((m) => state.snapshots.get(m))
    .filter((s): s is MockSnapshot => s !== undefined);
  if (chain.length === 0) return undefined;
  const tree = (i: number): XmlValue => {
    const s = chain[i]!;
    return {
      snapshot: new MoRef('VirtualMachineSnapshot', s.moref),
      vm: new MoRef('VirtualMachine', vm.moref),
      name: s.name,
      description: s.description,
      id: s.id,
      createTime: s.createTime,
      state: vm.powerState,
      quiesced: s.quiesced,
      childSnapshotList: i + 1 < chain.length ? tree(i + 1) : undefined,
    };
  };
  return {
    $type: 'VirtualMachineSnapshotInfo',
    currentSnapshot: new MoRef('VirtualMachineSnapshot', chain[chain.length - 1]!.moref),
    rootSnapshotList: tree(0),
  };
}

function taskInfo(state: MockVcenterState, task: import('./state.js').MockTask): XmlValue {
  const first = task.pollsLeft === state.taskPolls && task.pollsLeft > 0;
  let taskState: string;
  if (task.pollsLeft > 0) {
    task.pollsLeft--;
    taskState = first ? 'queued' : 'running';
  } else taskState = task.error ? 'error' : 'success';
  return {
    $type: 'TaskInfo',
    key: task.moref,
    task: new MoRef('Task', task.moref),
    name: task.name,
    descriptionId: `VirtualMachine.${task.name}`,
    entity: new MoRef('VirtualMachine', task.entity),
    state: taskState,
    cancelled: false,
    cancelable: false,
    error:
      taskState === 'error' && task.error
        ? { fault: { $type: task.error.faultType }, localizedMessage: task.error.message }
        : undefined,
    result:
      taskState === 'success' && task.result
        ? new MoRef(task.result.type, task.result.value, true)
        : undefined,
    queueTime: task.queueTime,
    eventChainId: 1,
  };
}

function newTask(
  state: MockVcenterState,
  name: string,
  entity: string,
  outcome: Pick<import('./state.js').MockTask, 'result' | 'error'>,
): MoRef {
  const moref = state.next('task');
  state.tasks.set(moref, {
    moref,
    name,
    entity,
    pollsLeft: state.taskPolls,
    queueTime: new Date().toISOString(),
    ...outcome,
  });
  return new MoRef('Task', moref);
}

function vmOf(state: MockVcenterState, self: MoRef): MockVm {
  const vm = state.vms.get(self.value);
  if (self.type !== 'VirtualMachine' || vm === undefined) throw notFound(self.type, self.value);
  return vm;
}

function reconfigure(state: MockVcenterState, self: MoRef, node: XmlNode): XmlValue {
  const vm = vmOf(state, self);
  const cbt = text(child(child(node, 'spec'), 'changeTrackingEnabled'));
  if (cbt === 'true' && !vm.cbtEnabled) {
    vm.cbtEnabled = true;
    state.resetCbt(vm.moref);
  } else if (cbt === 'false') {
    vm.cbtEnabled = false;
    for (const disk of vm.disks) disk.cbt.points.clear();
  }
  return newTask(state, 'reconfigure', vm.moref, {});
}

function createSnapshot(state: MockVcenterState, self: MoRef, node: XmlNode): XmlValue {
  const vm = vmOf(state, self);
  const quiesce = text(child(node, 'quiesce')) === 'true';
  if (quiesce && !vm.toolsRunning) {
    return newTask(state, 'createSnapshot', vm.moref, {
      error: {
        faultType: 'ToolsUnavailable',
        message: 'Cannot complete operation because VMware Tools is not running in this virtual machine.',
      },
    });
  }
  const moref = state.next('snapshot');
  const disks: MockSnapshotDisk[] = vm.disks.map((d) => {
    const view = d.disk.snapshot(moref);
    let changeId: string | undefined;
    if (vm.cbtEnabled) {
      changeId = `${d.cbt.uuid}/${d.cbt.sequence}`;
      d.cbt.points.set(changeId, view);
      d.cbt.sequence++;
    }
    const fileName = d.fileName;
    d.deltas++;
    d.fileName = d.fileName.replace(/(-\d{6})?\.vmdk$/, `-${String(d.deltas).padStart(6, '0')}.vmdk`);
    return {
      key: d.key,
      label: d.label,
      fileName,
      capacityBytes: d.disk.sizeBytes,
      changeId,
      view,
      diskMode: d.diskMode,
      physicalRdm: d.physicalRdm,
    };
  });
  const snapshot: MockSnapshot = {
    moref,
    id: vm.snapshots.length + 1,
    vm: vm.moref,
    name: text(child(node, 'name')) ?? moref,
    description: text(child(node, 'description')) ?? '',
    createTime: new Date().toISOString(),
    quiesced: quiesce,
    disks,
  };
  state.snapshots.set(moref, snapshot);
  vm.snapshots.push(moref);
  return newTask(state, 'createSnapshot', vm.moref, {
    result: { type: 'VirtualMachineSnapshot', value: moref },
  });
}

function removeSnapshot(state: MockVcenterState, self: MoRef): XmlValue {
  const snapshot = state.snapshots.get(self.value);
  if (self.type !== 'VirtualMachineSnapshot' || snapshot === undefined) throw notFound(self.type, self.value);
  const vm = state.vms.get(snapshot.vm);
  state.snapshots.delete(snapshot.moref);
  if (vm !== undefined) {
    vm.snapshots = vm.snapshots.filter((m) => m !== snapshot.moref);
    for (const d of vm.disks) d.disk.deleteSnapshot(snapshot.moref);
  }
  return newTask(state, 'removeSnapshot', snapshot.vm, {});
}

function queryChangedDiskAreas(state: MockVcenterState, self: MoRef, node: XmlNode): XmlValue {
  const vm = vmOf(state, self);
  const snapshotRef = readMoRef(child(node, 'snapshot'));
  const snapshot = snapshotRef ? state.snapshots.get(snapshotRef.value) : undefined;
  if (snapshotRef === undefined) {
    throw new MockFault('InvalidArgument', 'A specified parameter was not correct: snapshot', {
      invalidProperty: 'snapshot',
    });
  }
  if (snapshot === undefined || snapshot.vm !== vm.moref)
    throw notFound('VirtualMachineSnapshot', snapshotRef.value);
  const deviceKey = Number(text(child(node, 'deviceKey')));
  const disk = snapshot.disks.find((d) => d.key === deviceKey);
  if (disk === undefined) {
    throw new MockFault('InvalidArgument', 'A specified parameter was not correct: deviceKey', {
      invalidProperty: 'deviceKey',
    });
  }
  const startOffset = Number(text(child(node, 'startOffset')));
  if (!Number.isSafeInteger(startOffset) || startOffset < 0 || startOffset > disk.capacityBytes) {
    throw new MockFault('InvalidArgument', 'A specified parameter was not correct: startOffset', {
      invalidProperty: 'startOffset',
    });
  }
  const changeId = text(child(node, 'changeId')) ?? '';
  const live = vm.disks.find((d) => d.key === deviceKey)!;
  const fileFault = (): MockFault =>
    new MockFault('FileFault', `Error caused by file ${disk.fileName.replace(/\.vmdk$/, '-ctk.vmdk')}`, {
      file: disk.fileName,
    });
  if (!vm.cbtEnabled || disk.changeId === undefined) throw fileFault();
  let extents: Extent[];
  if (changeId === '*') extents = disk.view.allocatedExtents();
  else {
    if (!/^.+\/\d+$/.test(changeId)) {
      throw new MockFault('InvalidArgument', 'A specified parameter was not correct: changeId', {
        invalidProperty: 'changeId',
      });
    }
    const base = live.cbt.points.get(changeId);
    if (base === undefined) throw fileFault();
    extents = live.disk.changedExtents(base, disk.view);
  }
  state.stats.changedAreaReplies++;
  const end = Math.min(disk.capacityBytes, startOffset + state.windowBytes);
  const areas: Array<{ start: number; length: number }> = [];
  for (const e of extents) {
    const from = Math.max(e.offset, startOffset);
    const to = Math.min(e.offset + e.length, end);
    if (to > from) areas.push({ start: from, length: to - from });
  }
  let windowEnd = end;
  if (areas.length > state.maxAreasPerReply) {
    windowEnd = areas[state.maxAreasPerReply]!.start;
    areas.length = state.maxAreasPerReply;
  }
  return {
    startOffset,
    length: windowEnd - startOffset,
    changedArea: areas.map((a) => ({ start: a.start, length: a.length })),
  };
}
