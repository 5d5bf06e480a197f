import type { MockRequest, MockResponse, RouteTable } from '@syncproxy/testkit/mock';
import { type MockCredentials, verifySignature } from './sigv4.js';
import type { MockAwsState, MockInstance, MockSnapshot, MockVolume } from './state.js';

const NS = 'http://ec2.amazonaws.com/doc/2016-11-15/';

/** An XML value: text, a nested element map, or a list sent as `<item>`s (EC2 Query style). */
type Xml = string | number | boolean | undefined | XmlList | { [name: string]: Xml };
interface XmlList {
  items: Xml[];
}

const list = (items: Xml[]): XmlList => ({ items });

function render(name: string, value: Xml): string {
  if (value === undefined) return '';
  if (typeof value === 'object' && 'items' in value && Array.isArray(value.items)) {
    return `<${name}>${value.items.map((item) => render('item', item)).join('')}</${name}>`;
  }
  if (typeof value === 'object') {
    const inner = Object.entries(value as Record<string, Xml>)
      .map(([k, v]) => render(k, v))
      .join('');
    return `<${name}>${inner}</${name}>`;
  }
  return `<${name}>${escapeXml(String(value))}</${name}>`;
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function ok(action: string, fields: Record<string, Xml>): MockResponse {
  const id = requestId();
  const inner = Object.entries({ requestId: id, ...fields })
    .map(([k, v]) => render(k, v))
    .join('');
  return {
    status: 200,
    headers: { 'content-type': 'text/xml;charset=UTF-8' },
    body: `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${NS}">${inner}</${action}Response>`,
  };
}

/** The EC2 error envelope (EC2 API Reference, "Error codes"). */
export function ec2Error(status: number, code: string, message: string): MockResponse {
  return {
    status,
    headers: { 'content-type': 'text/xml;charset=UTF-8' },
    body: `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${escapeXml(code)}</Code><Message>${escapeXml(message)}</Message></Error></Errors><RequestID>${requestId()}</RequestID></Response>`,
  };
}

/** `Prefix.1`, `Prefix.2`... of a Query request, in order. */
function members(params: URLSearchParams, prefix: string): string[] {
  const out: string[] = [];
  for (let n = 1; params.has(`${prefix}.${n}`); n++) out.push(params.get(`${prefix}.${n}`)!);
  return out;
}

function filters(params: URLSearchParams): Array<{ name: string; values: string[] }> {
  const out: Array<{ name: string; values: string[] }> = [];
  for (let n = 1; params.has(`Filter.${n}.Name`); n++) {
    out.push({ name: params.get(`Filter.${n}.Name`)!, values: members(params, `Filter.${n}.Value`) });
  }
  return out;
}

class Ec2Fault extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function tagMatch(tags: Record<string, string>, name: string, values: string[]): boolean | undefined {
  if (name === 'tag-key') return values.some((v) => v in tags);
  if (name.startsWith('tag:')) {
    const value = tags[name.slice(4)];
    return value !== undefined && values.includes(value);
  }
  return undefined;
}

function applyFilters<T>(
  items: T[],
  given: Array<{ name: string; values: string[] }>,
  fields: Record<string, (item: T) => string | string[] | undefined>,
  tagsOf: (item: T) => Record<string, string>,
): T[] {
  for (const f of given) {
    if (!(f.name in fields) && !f.name.startsWith('tag:') && f.name !== 'tag-key') {
      throw new Ec2Fault(400, 'InvalidParameterValue', `The filter '${f.name}' is invalid`);
    }
  }
  return items.filter((item) =>
    given.every((f) => {
      const byTag = tagMatch(tagsOf(item), f.name, f.values);
      if (byTag !== undefined) return byTag;
      const value = fields[f.name]!(item);
      const have = Array.isArray(value) ? value : value === undefined ? [] : [value];
      return have.some((v) => f.values.includes(v));
    }),
  );
}

/** `MaxResults`/`NextToken` paging over a list; the token is the next position. */
function page<T>(
  items: T[],
  params: URLSearchParams,
  min: number,
  max: number,
): { items: T[]; nextToken?: string } {
  const maxParam = params.get('MaxResults');
  const token = params.get('NextToken');
  const start = token === null ? 0 : Number.parseInt(Buffer.from(token, 'base64').toString('utf8'), 10);
  if (!Number.isSafeInteger(start) || start < 0)
    throw new Ec2Fault(400, 'InvalidParameterValue', 'The token is not valid');
  if (maxParam === null) return { items: items.slice(start) };
  const size = Number(maxParam);
  if (!Number.isInteger(size) || size < min || size > max) {
    throw new Ec2Fault(
      400,
      'InvalidParameterValue',
      `Value ( ${maxParam} ) for parameter maxResults is invalid. Expecting a value between ${min} and ${max}.`,
    );
  }
  const slice = items.slice(start, start + size);
  return start + size < items.length
    ? { items: slice, nextToken: Buffer.from(String(start + size)).toString('base64') }
    : { items: slice };
}

const tagSet = (tags: Record<string, string>): XmlList =>
  list(Object.entries(tags).map(([key, value]) => ({ key, value })));

const STATE_CODES: Record<MockInstance['state'], number> = {
  pending: 0,
  running: 16,
  'shutting-down': 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

function instanceXml(state: MockAwsState, instance: MockInstance): Xml {
  return {
    instanceId: instance.id,
    imageId: 'ami-0123456789abcdef0',
    instanceState: { code: STATE_CODES[instance.state], name: instance.state },
    instanceType: instance.instanceType,
    launchTime: instance.launchTime,
    placement: { availabilityZone: instance.availabilityZone, tenancy: 'default' },
    rootDeviceType: 'ebs',
    rootDeviceName: instance.rootDeviceName,
    blockDeviceMapping: list(
      instance.volumeIds.map((volumeId) => {
        const volume = state.volumes.get(volumeId);
        return {
          deviceName: volume?.device,
          ebs: { volumeId, status: 'attached', attachTime: instance.launchTime, deleteOnTermination: true },
        };
      }),
    ),
    platformDetails: 'Linux/UNIX',
    tagSet: tagSet(instance.tags),
  };
}

function volumeXml(volume: MockVolume): Xml {
  return {
    volumeId: volume.id,
    size: volume.sizeGiB,
    snapshotId: '',
    availabilityZone: volume.availabilityZone,
    status: volume.state,
    createTime: volume.createTime,
    attachmentSet: list(
      volume.instanceId === undefined
        ? []
        : [
            {
              volumeId: volume.id,
              instanceId: volume.instanceId,
              device: volume.device,
              status: 'attached',
              attachTime: volume.createTime,
              deleteOnTermination: true,
            },
          ],
    ),
    volumeType: volume.volumeType,
    encrypted: volume.encrypted,
    kmsKeyId: volume.kmsKeyId,
    tagSet: tagSet(volume.tags),
  };
}

function progress(snapshot: MockSnapshot): string {
  if (snapshot.state === 'completed') return '100%';
  return `${Math.floor((100 * (snapshot.pollsTotal - snapshot.pollsLeft)) / Math.max(1, snapshot.pollsTotal))}%`;
}

/** DescribeSnapshots moves pending snapshots on: a test needs no clock to see one complete. */
function poll(snapshot: MockSnapshot): void {
  if (snapshot.state !== 'pending') return;
  snapshot.pollsLeft--;
  if (snapshot.pollsLeft <= 0) snapshot.state = 'completed';
}

const ACTIONS: Record<string, (params: URLSearchParams, state: MockAwsState) => MockResponse> = {
  DescribeRegions(params, state) {
    const names = members(params, 'RegionName');
    const regions = names.length > 0 ? state.regions.filter((r) => names.includes(r)) : state.regions;
    return ok('DescribeRegions', {
      regionInfo: list(
        regions.map((regionName) => ({
          regionName,
          regionEndpoint: `ec2.${regionName}.amazonaws.com`,
          optInStatus: 'opt-in-not-required',
        })),
      ),
    });
  },

  DescribeInstances(params, state) {
    const ids = members(params, 'InstanceId');
    for (const id of ids) {
      if (!state.instances.has(id))
        throw new Ec2Fault(400, 'InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
    }
    let instances = [...state.instances.values()];
    if (ids.length > 0) instances = instances.filter((i) => ids.includes(i.id));
    instances = applyFilters(
      instances,
      filters(params),
      {
        'instance-id': (i) => i.id,
        'instance-state-name': (i) => i.state,
        'availability-zone': (i) => i.availabilityZone,
      },
      (i) => i.tags,
    );
    const { items, nextToken } = page(instances, params, 5, 1000);
    return ok('DescribeInstances', {
      reservationSet: list(
        items.map((instance) => ({
          reservationId: `r-${instance.id.slice(2)}`,
          ownerId: state.accountId,
          groupSet: list([]),
          instancesSet: list([instanceXml(state, instance)]),
        })),
      ),
      nextToken,
    });
  },

  DescribeVolumes(params, state) {
    const ids = members(params, 'VolumeId');
    for (const id of ids) {
      if (!state.volumes.has(id))
        throw new Ec2Fault(400, 'InvalidVolume.NotFound', `The volume '${id}' does not exist.`);
    }
    let volumes = [...state.volumes.values()];
    if (ids.length > 0) volumes = volumes.filter((v) => ids.includes(v.id));
    volumes = applyFilters(
      volumes,
      filters(params),
      {
        'attachment.instance-id': (v) => v.instanceId,
        'volume-id': (v) => v.id,
        status: (v) => v.state,
        encrypted: (v) => String(v.encrypted),
      },
      (v) => v.tags,
    );
    const { items, nextToken } = page(volumes, params, 5, 500);
    return ok('DescribeVolumes', { volumeSet: list(items.map(volumeXml)), nextToken });
  },

  CreateSnapshots(params, state) {
    const instanceId = params.get('InstanceSpecification.InstanceId');
    const instance = instanceId === null ? undefined : state.instances.get(instanceId);
    if (instance === undefined) {
      throw new Ec2Fault(
        400,
        'InvalidInstanceID.NotFound',
        `The instance ID '${String(instanceId)}' does not exist`,
      );
    }
    const excludeBoot = params.get('InstanceSpecification.ExcludeBootVolume') === 'true';
    const excluded = new Set(members(params, 'InstanceSpecification.ExcludeDataVolumeId'));
    const tags: Record<string, string> = {};
    for (let n = 1; params.has(`TagSpecification.${n}.ResourceType`); n++) {
      if (params.get(`TagSpecification.${n}.ResourceType`) !== 'snapshot') continue;
      for (let m = 1; params.has(`TagSpecification.${n}.Tag.${m}.Key`); m++) {
        tags[params.get(`TagSpecification.${n}.Tag.${m}.Key`)!] =
          params.get(`TagSpecification.${n}.Tag.${m}.Value`) ?? '';
      }
    }
    const description = params.get('Description') ?? '';
    const startTime = new Date(state.now()).toISOString();
    // All volumes are frozen in this one synchronous step: crash-consistent.
    const created: MockSnapshot[] = [];
    instance.volumeIds.forEach((volumeId, position) => {
      if ((position === 0 && excludeBoot) || (position > 0 && excluded.has(volumeId))) return;
      const volume = state.volumes.get(volumeId)!;
      const id = state.nextId('snap');
      const snapshot: MockSnapshot = {
        id,
        volumeId,
        volumeSizeGiB: volume.sizeGiB,
        state: state.snapshotPollsUntilCompleted > 0 ? 'pending' : 'completed',
        pollsLeft: state.snapshotPollsUntilCompleted,
        pollsTotal: state.snapshotPollsUntilCompleted,
        view: volume.disk.snapshot(id),
        checksums: new Map(),
        startTime,
        description,
        tags: { ...tags },
        storageTier: 'standard',
        encrypted: volume.encrypted,
        ...(volume.kmsKeyId ? { kmsKeyId: volume.kmsKeyId } : {}),
      };
      state.snapshots.set(id, snapshot);
      created.push(snapshot);
    });
    return ok('CreateSnapshots', {
      snapshotSet: list(
        created.map((s) => ({
          description: s.description,
          tagSet: tagSet(s.tags),
          encrypted: s.encrypted,
          volumeId: s.volumeId,
          state: s.state,
          volumeSize: s.volumeSizeGiB,
          startTime: s.startTime,
          progress: progress(s),
          ownerId: state.accountId,
          snapshotId: s.id,
        })),
      ),
    });
  },

  DescribeSnapshots(params, state) {
    const ids = members(params, 'SnapshotId');
    for (const id of ids) {
      if (!state.snapshots.has(id))
        throw new Ec2Fault(400, 'InvalidSnapshot.NotFound', `The snapshot '${id}' does not exist.`);
    }
    let snapshots = [...state.snapshots.values()];
    if (ids.length > 0) snapshots = snapshots.filter((s) => ids.includes(s.id));
    snapshots = applyFilters(
      snapshots,
      filters(params),
      {
        'volume-id': (s) => s.volumeId,
        status: (s) => s.state,
        'snapshot-id': (s) => s.id,
        'storage-tier': (s) => s.storageTier,
        'owner-id': () => state.accountId,
      },
      (s) => s.tags,
    );
    const { items, nextToken } = page(snapshots, params, 5, 1000);
    for (const s of items) poll(s);
    return ok('DescribeSnapshots', {
      snapshotSet: list(
        items.map((s) => ({
          snapshotId: s.id,
          volumeId: s.volumeId,
          status: s.state,
          startTime: s.startTime,
          progress: progress(s),
          ownerId: state.accountId,
          volumeSize: s.volumeSizeGiB,
          description: s.description,
          encrypted: s.encrypted,
          kmsKeyId: s.kmsKeyId,
          storageTier: s.storageTier,
          tagSet: tagSet(s.tags),
        })),
      ),
      nextToken,
    });
  },

  DeleteSnapshot(params, state) {
    const id = params.get('SnapshotId') ?? '';
    if (!state.deleteSnapshot(id))
      throw new Ec2Fault(400, 'InvalidSnapshot.NotFound', `The snapshot '${id}' does not exist.`);
    return ok('DeleteSnapshot', { return: true });
  },
};

/** The EC2 Query API subset the connector uses, at `POST /`. */
export function ec2Routes(options: { credentials: MockCredentials }): RouteTable<MockAwsState> {
  return {
    'POST /': async (request: MockRequest, state: MockAwsState) => {
      const params = new URLSearchParams(request.text());
      const action = params.get('Action') ?? '';
      state.count(action || 'EC2');
      const problem = await verifySignature(request, {
        credentials: options.credentials,
        region: state.region,
        service: 'ec2',
      });
      if (problem !== undefined) {
        state.stats.authFailures++;
        return ec2Error(401, 'AuthFailure', 'AWS was not able to validate the provided access credentials');
      }
      const handler = ACTIONS[action];
      if (handler === undefined)
        return ec2Error(400, 'InvalidAction', `The action ${action} is not valid for this web service.`);
      if (params.get('Version') !== '2016-11-15') {
        return ec2Error(
          400,
          'InvalidParameterValue',
          `Version ${String(params.get('Version'))} is not supported by this mock`,
        );
      }
      try {
        return handler(params, state);
      } catch (error) {
        if (error instanceof Ec2Fault) return ec2Error(error.status, error.code, error.message);
        throw error;
      }
    },
  };
}

let requests = 0;
function requestId(): string {
  requests++;
  return `10000000-0000-4000-8000-${requests.toString(16).padStart(12, '0')}`;
}
