import type { ActiveFault, MockServer, VirtualDisk as TestkitVirtualDisk } from '@syncproxy/testkit/mock';
import { ebsError, ebsRoutes } from './ebs-api.js';
import { ec2Error, ec2Routes } from './ec2-api.js';
import { loadSigner, loadTestkit } from './peers.js';
import type { MockCredentials } from './sigv4.js';
import { MockAwsState, type MockInstance, type MockVolume } from './state.js';
import { type VolumeDisk, volumeOfVirtualDisk } from './volume-disk.js';

const GIB = 1024 ** 3;

export interface MockAwsOptions {
  /** The only credentials the mock accepts; requests signed otherwise fail as on AWS. */
  credentials?: MockCredentials;
  /** Default `us-east-1`. */
  region?: string;
  /** Regions DescribeRegions lists. Default: `region` and a few others. */
  regions?: string[];
  accountId?: string;
  /** Milliseconds since the epoch; drives token expiry and snapshot times. Default `Date.now`. */
  now?: () => number;
  /** Lifetime of block tokens. Default 7 days (EBS direct FAQ). */
  blockTokenLifetimeSec?: number;
  /** Lifetime of page tokens. Default 60 minutes (EBS direct FAQ). */
  pageTokenLifetimeSec?: number;
  /** DescribeSnapshots polls a new snapshot stays `pending` for. Default 2. */
  snapshotPollsUntilCompleted?: number;
  /** Block indexes one list page scans; small values give empty pages that continue. Default: no limit. */
  maxBlocksScannedPerPage?: number;
  /** Seed of the random fault modes. Default 1. */
  seed?: number;
}

export interface MockVolumeSpec {
  /** Size in bytes; EC2 reports it rounded up to whole GiB, as volume sizes are. Ignored with `disk`. */
  sizeBytes?: number;
  /** The volume's bytes: a testkit VirtualDisk (default: a new, empty one) or a test's own source. */
  disk?: TestkitVirtualDisk | VolumeDisk;
  device?: string;
  volumeType?: string;
  encrypted?: boolean;
  kmsKeyId?: string;
}

export interface MockInstanceSpec {
  name?: string;
  state?: MockInstance['state'];
  instanceType?: string;
  volumes: MockVolumeSpec[];
}

export interface ThrottleOptions {
  /** Share of matching requests refused, 0..1. Default 1. */
  ratio?: number;
  /** `ebs`, `ec2` or both. Default both. */
  api?: 'ebs' | 'ec2' | 'all';
  /** Only this EBS operation (by path shape). */
  operation?: 'GetSnapshotBlock' | 'ListSnapshotBlocks' | 'ListChangedBlocks';
}

/** A running mock of AWS (EC2 Query API + EBS direct read APIs) on 127.0.0.1. */
export interface MockAws extends MockServer<MockAwsState> {
  readonly credentials: MockCredentials;
  readonly region: string;
  /** A connector config (the product form) that reaches this mock. */
  config(): {
    accessKeyId: string;
    secretAccessKey: string;
    region: string;
    endpoints: { ec2: string; ebs: string };
  };
  addInstance(spec: MockInstanceSpec): { instance: MockInstance; volumes: MockVolume[] };
  /** Answers a share of requests with AWS's throttling errors until removed. */
  throttle(options?: ThrottleOptions): ActiveFault;
  /** Sends the next `times` blocks with a wrong `x-amz-Checksum` (Infinity: every block). */
  corruptChecksums(times: number): void;
  /** Adds `ms` before each GetSnapshotBlock answer (the benchmark's latency). */
  delayBlocks(ms: number): ActiveFault;
}

const BLOCK_PATH = /^\/snapshots\/[^/]+\/blocks\/\d+$/;
const LIST_PATH = /^\/snapshots\/[^/]+\/blocks$/;
const CHANGED_PATH = /^\/snapshots\/[^/]+\/changedblocks$/;

/**
 * Starts the AWS mock: one loopback HTTP server answering the EC2 Query API
 * (`POST /`) and the EBS direct read APIs (`/snapshots/...`), each request's
 * SigV4 signature checked against `credentials`. Volumes are testkit
 * VirtualDisks; snapshots freeze them at CreateSnapshots time.
 */
export async function startMockAws(options: MockAwsOptions = {}): Promise<MockAws> {
  const [{ SeededRandom, startMockServer, VirtualDisk }] = await Promise.all([loadTestkit(), loadSigner()]);
  const credentials = options.credentials ?? {
    accessKeyId: 'AKIAMOCKSYNCPROXY001',
    secretAccessKey: 'mock/Secret+Access/Key0123456789abcdefghij',
  };
  const region = options.region ?? 'us-east-1';
  const state = new MockAwsState({
    region,
    regions: options.regions ?? [
      ...new Set([region, 'us-east-1', 'us-west-2', 'eu-west-1', 'ap-southeast-1']),
    ],
    accountId: options.accountId ?? '123456789012',
    now: options.now ?? Date.now,
    blockTokenLifetimeSec: options.blockTokenLifetimeSec ?? 7 * 24 * 3600,
    pageTokenLifetimeSec: options.pageTokenLifetimeSec ?? 3600,
    snapshotPollsUntilCompleted: options.snapshotPollsUntilCompleted ?? 2,
    maxBlocksScannedPerPage: options.maxBlocksScannedPerPage ?? Number.POSITIVE_INFINITY,
  });
  const server = await startMockServer<MockAwsState>({
    state,
    routes: { ...ebsRoutes({ credentials }), ...ec2Routes({ credentials }) },
  });
  const random = new SeededRandom(options.seed ?? 1);

  const mock: MockAws = {
    ...server,
    credentials,
    region,
    config() {
      return {
        accessKeyId: credentials.accessKeyId,
        secretAccessKey: credentials.secretAccessKey,
        region,
        endpoints: { ec2: server.url, ebs: server.url },
      };
    },
    addInstance(spec: MockInstanceSpec) {
      const id = state.nextId('i');
      const now = new Date(state.now()).toISOString();
      const volumes = spec.volumes.map((v, position): MockVolume => {
        const disk = toVolumeDisk(v, VirtualDisk);
        const volume: MockVolume = {
          id: state.nextId('vol'),
          sizeGiB: Math.max(1, Math.ceil(disk.sizeBytes / GIB)),
          disk,
          availabilityZone: `${region}a`,
          volumeType: v.volumeType ?? 'gp3',
          encrypted: v.encrypted ?? false,
          ...(v.kmsKeyId ? { kmsKeyId: v.kmsKeyId } : {}),
          state: 'in-use',
          instanceId: id,
          device:
            v.device ?? (position === 0 ? '/dev/xvda' : `/dev/sd${String.fromCharCode(0x66 + position - 1)}`),
          createTime: now,
          tags: {},
        };
        state.volumes.set(volume.id, volume);
        return volume;
      });
      const instance: MockInstance = {
        id,
        state: spec.state ?? 'running',
        instanceType: spec.instanceType ?? 'm5.large',
        availabilityZone: `${region}a`,
        rootDeviceName: volumes[0]?.device ?? '/dev/xvda',
        volumeIds: volumes.map((v) => v.id),
        launchTime: now,
        tags: spec.name ? { Name: spec.name } : {},
      };
      state.instances.set(id, instance);
      return { instance, volumes };
    },
    throttle(throttle: ThrottleOptions = {}) {
      const ratio = throttle.ratio ?? 1;
      const api = throttle.api ?? 'all';
      const pattern =
        throttle.operation === 'GetSnapshotBlock'
          ? BLOCK_PATH
          : throttle.operation === 'ListSnapshotBlocks'
            ? LIST_PATH
            : throttle.operation === 'ListChangedBlocks'
              ? CHANGED_PATH
              : undefined;
      const ebs = ebsError(400, 'RequestThrottledException', 'Rate exceeded', 'ACCOUNT_THROTTLED');
      const ec2 = ec2Error(503, 'RequestLimitExceeded', 'Request limit exceeded.');
      const rule = (isEc2Rule: boolean, answer: typeof ebs): ActiveFault =>
        server.faults.add({
          kind: 'status',
          status: answer.status ?? 400,
          body: answer.body,
          headers: answer.headers as Record<string, string>,
          when: (request) => {
            const isEc2 = request.method === 'POST' && request.path === '/';
            if (isEc2 !== isEc2Rule) return false;
            if (pattern !== undefined && !pattern.test(request.path)) return false;
            if (!random.chance(ratio)) return false;
            state.count(isEc2 ? 'EC2 throttled' : 'EBS throttled');
            return true;
          },
        });
      const rules = [
        ...(api !== 'ec2' ? [rule(false, ebs)] : []),
        ...(api !== 'ebs' ? [rule(true, ec2)] : []),
      ];
      return {
        rule: rules[0]!.rule,
        get hits() {
          return rules.reduce((sum, r) => sum + r.hits, 0);
        },
        remove() {
          for (const r of rules) r.remove();
        },
      };
    },
    corruptChecksums(times: number) {
      state.corruptChecksums = times;
    },
    delayBlocks(ms: number) {
      return server.faults.add({ kind: 'latency', ms, method: 'GET', path: BLOCK_PATH });
    },
  };
  return mock;
}

function toVolumeDisk(spec: MockVolumeSpec, VirtualDisk: typeof TestkitVirtualDisk): VolumeDisk {
  if (spec.disk === undefined) {
    return volumeOfVirtualDisk(
      new VirtualDisk({ sizeBytes: spec.sizeBytes ?? GIB, blockSizeBytes: 64 * 1024 }),
    );
  }
  if (spec.disk instanceof VirtualDisk) return volumeOfVirtualDisk(spec.disk);
  return spec.disk;
}
