import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ActiveFault, FaultRule, MockServer, RecordedCall } from '@syncproxy/testkit/mock';
import type { MockCredentials } from './aksk-verifier.js';
import { cloudRoutes } from './cloud-routes.js';
import { obsRoutes } from './obs-routes.js';
import { loadTestkit } from './peers.js';
import { GIB, type MockServer as MockEcs, MockHuaweiState, type MockVolume } from './state.js';

export interface MockHuaweiCloudOptions {
  /** The only AK/SK the mock accepts. */
  credentials?: MockCredentials;
  /** Default `tr-west-1`. */
  region?: string;
  /** The bucket the config names (it does not exist until the connector creates it, unless `bucketExists`). */
  bucket?: string;
  bucketExists?: boolean;
  /** False: the account is not white-listed for the snapshot data export. Default true. */
  exportEnabled?: boolean;
  /** Polls a job, checkpoint or export stays running. Default 1. */
  pollsUntilDone?: number;
  /** Object size of an export. Default 4 MiB. */
  exportObjectBytes?: number;
  /** Where attached volumes appear (`by-id` and device files); default a new temporary directory. */
  devicesDir?: string;
  /** Milliseconds since the epoch (signature dates are checked against it). Default `Date.now`. */
  now?: () => number;
}

export interface MockServerSpec {
  name: string;
  /** Volume sizes in GB, the first the system disk. */
  volumesGb: number[];
  availabilityZone?: string;
  /** Put the server in the CBR server backup vault. Default true. */
  inVault?: boolean;
}

/** A running mock of Huawei Cloud (IAM, ECS, EVS, CBR on one server, OBS on another), on 127.0.0.1. */
export interface MockHuaweiCloud {
  /** IAM, ECS, EVS and CBR. */
  readonly api: MockServer<MockHuaweiState>;
  readonly obs: MockServer<MockHuaweiState>;
  readonly state: MockHuaweiState;
  readonly credentials: MockCredentials;
  readonly region: string;
  readonly bucket: string;
  /** The proxy ECS the config names. */
  readonly proxyId: string;
  /** Where attached volumes appear: pass as `ctx.devices.byIdDir`. */
  readonly byIdDir: string;
  /** Every request to both servers, in arrival order per server. */
  readonly calls: { api: RecordedCall[]; obs: RecordedCall[] };
  /** Faults on both servers: `api` or `obs`. */
  fault(server: 'api' | 'obs', rule: FaultRule): ActiveFault;
  /** The product form that reaches this mock. */
  config(): {
    accessKeyId: string;
    secretAccessKey: string;
    project: string;
    proxy: string;
    bucket: string;
    endpoints: { iam: string; ecs: string; evs: string; cbr: string; obs: string };
  };
  addServer(spec: MockServerSpec): { server: MockEcs; volumes: MockVolume[] };
  /** Answers every request with the API gateway's throttling error (429 APIGW.0308) until removed. */
  throttle(): () => void;
  close(): Promise<void>;
}

const DEFAULT_CREDENTIALS: MockCredentials = {
  accessKeyId: 'HPUAMOCKSYNCPROXY0001',
  secretAccessKey: 'mockSecretKey0SyncproxyHuaweiCloud0000001',
};

export async function startMockHuaweiCloud(options: MockHuaweiCloudOptions = {}): Promise<MockHuaweiCloud> {
  const testkit = await loadTestkit();
  const { startMockServer, VirtualDisk } = testkit;
  const credentials = options.credentials ?? DEFAULT_CREDENTIALS;
  const region = options.region ?? 'tr-west-1';
  const bucket = options.bucket ?? 'syncproxy-cache';
  const now = options.now ?? Date.now;
  const state = new MockHuaweiState(region);
  state.exportEnabled = options.exportEnabled ?? true;
  if (options.bucketExists) state.buckets.set(bucket, new Map());
  const ownsDevices = options.devicesDir === undefined;
  const devicesDir = options.devicesDir ?? (await mkdtemp(join(tmpdir(), 'syncproxy-hwc-devices-')));
  const byIdDir = join(devicesDir, 'by-id');
  const zone = `${region}a`;
  const vaultId = state.newId();
  state.vaults.set(vaultId, { id: vaultId, name: 'vault-syncproxy', serverIds: new Set() });

  const api = await startMockServer({
    state,
    routes: cloudRoutes({
      credentials,
      now,
      pollsUntilDone: options.pollsUntilDone ?? 1,
      devices: { byIdDir, devDir: join(devicesDir, 'dev') },
      exportObjectBytes: options.exportObjectBytes ?? 4 * 1024 * 1024,
      testkit,
    }),
    notFound: (request) => ({
      status: 404,
      headers: { 'content-type': 'application/json' },
      body: {
        error_code: 'APIGW.0101',
        error_msg: `The API does not exist or has not been published in the environment: ${request.method} ${request.path}`,
      },
    }),
  });
  const obs = await startMockServer({ state, routes: obsRoutes({ credentials, now }) });

  const addServer = (spec: MockServerSpec) => {
    const server: MockEcs = {
      id: state.newId(),
      name: spec.name,
      status: 'ACTIVE',
      availabilityZone: spec.availabilityZone ?? zone,
      volumeIds: [],
    };
    const volumes = spec.volumesGb.map((sizeGb, i) => {
      const volume: MockVolume = {
        id: state.newId(),
        name: `${spec.name}-volume-${String(i).padStart(4, '0')}`,
        sizeGb,
        disk: new VirtualDisk({ sizeBytes: sizeGb * GIB }),
        availabilityZone: server.availabilityZone,
        status: 'in-use',
        bootable: i === 0,
        metadata: {},
        createdAt: new Date(now()).toISOString(),
        attachment: { serverId: server.id, device: `/dev/vd${String.fromCharCode(97 + i)}` },
      };
      state.volumes.set(volume.id, volume);
      server.volumeIds.push(volume.id);
      return volume;
    });
    state.servers.set(server.id, server);
    if (spec.inVault ?? true) state.vaults.get(vaultId)!.serverIds.add(server.id);
    return { server, volumes };
  };

  const proxy = addServer({ name: 'syncproxy-proxy', volumesGb: [40], inVault: false });
  let closed = false;

  return {
    api,
    obs,
    state,
    credentials,
    region,
    bucket,
    proxyId: proxy.server.id,
    byIdDir,
    calls: { api: api.calls, obs: obs.calls },
    fault: (server, rule) => (server === 'api' ? api : obs).faults.add(rule),
    config: () => ({
      accessKeyId: credentials.accessKeyId,
      secretAccessKey: credentials.secretAccessKey,
      project: region,
      proxy: proxy.server.id,
      bucket,
      endpoints: { iam: api.url, ecs: api.url, evs: api.url, cbr: api.url, obs: obs.url },
    }),
    addServer,
    throttle() {
      const body = {
        error_code: 'APIGW.0308',
        error_msg:
          'The throttling threshold has been reached: policy user over ratelimit,limit:100,time:1 minute',
      };
      const onApi = api.faults.add({ kind: 'throttle', status: 429, body });
      const onObs = obs.faults.add({
        kind: 'throttle',
        status: 503,
        headers: { 'content-type': 'application/xml' },
        body: '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>',
      });
      return () => {
        onApi.remove();
        onObs.remove();
      };
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([api.close(), obs.close()]);
      if (ownsDevices) await rm(devicesDir, { recursive: true, force: true });
    },
  };
}
