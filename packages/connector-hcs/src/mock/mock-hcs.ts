import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ActiveFault, MockServer } from '@syncproxy/testkit/mock';
import { type DoradoFault, doradoRoutes } from './dorado-api.js';
import { hcsRoutes } from './hcs-api.js';
import { loadTestkit } from './peers.js';
import { MockHcsState, type MockServerRecord, type MockVolumeRecord } from './state.js';

export interface MockHcsOptions {
  /** ECS/EVS items per page at most. Default 2, so every list pages. */
  pageSize?: number;
  /** Token lifetime. Default 24 h (IAM's). */
  tokenTtlMs?: number;
  now?: () => number;
  /** The Dorado user's type: the login's `scope` must match it. Default local. */
  userType?: 'local' | 'LDAP' | 'RADIUS';
  /**
   * TEST-ONLY: the bytes one EVS GB stands for in this mock. Default 1 GiB,
   * as on HCS. A smaller value (a multiple of 512, e.g. 8 MiB) shrinks every
   * volume, its LUN's `CAPACITY` and its mapped image alike while EVS still
   * says whole GB, so suites that compare disks byte by byte stay cheap. The
   * connector must then be created with the same `gbBytes`.
   */
  gbBytes?: number;
}

export interface MockServerSpec {
  name: string;
  /** Whole GB each; the first is the system disk. */
  volumesGb: number[];
  status?: 'ACTIVE' | 'SHUTOFF';
}

/** A running mock of an HCS 8.0.2 project (IAM, ECS, EVS) and one OceanStor Dorado, on 127.0.0.1. */
export interface MockHcs {
  readonly hcs: MockServer<MockHcsState>;
  readonly dorado: MockServer<MockHcsState>;
  readonly state: MockHcsState;
  /** Where mapped snapshots appear (`wwn-0x<wwn>`): give it to the connector as `ctx.devices.byIdDir`. */
  readonly devicesDir: string;
  readonly password: string;
  readonly storagePassword: string;
  readonly proxyInitiator: string;
  /** Bytes per EVS GB in this mock (see {@link MockHcsOptions.gbBytes}). */
  readonly gbBytes: number;
  /** A connector config (the product form) that reaches this mock. */
  config(): Record<string, unknown>;
  addServer(spec: MockServerSpec): { server: MockServerRecord; volumes: MockVolumeRecord[] };
  /** Says this HCS release (`8.2.0`, `8.3.1`...) from now on. */
  setHcsVersion(version: string): void;
  /** Whether the Dorado has snapshot consistency groups (default yes); without, one snapshot per LUN. */
  setConsistencyGroups(supported: boolean): void;
  /** Says this Dorado model (`productModeString`) from now on. */
  setDoradoModel(model: string): void;
  /** Answers every gateway call with 429 APIGW.0308 until removed. */
  throttle(): ActiveFault;
  /** Answers the next matching gateway calls with an HTTP error. */
  failHcs(options: {
    method?: string;
    path?: string | RegExp;
    status: number;
    code: string;
    times?: number;
    skip?: number;
  }): ActiveFault;
  /** Answers the next matching Dorado calls with HTTP 200 and this `error.code`. */
  failDorado(options: Omit<DoradoFault, 'hits' | 'seen'>): DoradoFault;
  /** Ends every Dorado session, as a timeout on the array would: the next call gets -401. */
  expireDoradoSessions(): void;
  /** Makes every IAM token invalid: the next call gets 401. */
  revokeTokens(): void;
  close(): Promise<void>;
}

/**
 * Starts the HCS mock: the gateway (IAM tokens and catalog, ECS servers, EVS
 * volumes with their LUN WWNs) and a Dorado (sessions, LUNs, snapshots,
 * hosts, host groups, LUN groups, mapping views). A snapshot mapped to the
 * proxy's host appears under `devicesDir` as `wwn-0x<snapshot WWN>`, a link
 * to an image of its content at activation; unmapped, the link goes.
 */
export async function startMockHcs(options: MockHcsOptions = {}): Promise<MockHcs> {
  const { startMockServer, VirtualDisk, writeImageFile } = await loadTestkit();
  const workDir = await mkdtemp(join(tmpdir(), 'syncproxy-mock-hcs-'));
  const devicesDir = join(workDir, 'by-id');
  const imagesDir = join(workDir, 'images');
  await mkdir(devicesDir);
  await mkdir(imagesDir);
  const gbBytes = options.gbBytes ?? 1024 ** 3;
  if (!Number.isSafeInteger(gbBytes) || gbBytes <= 0 || gbBytes % 512 !== 0)
    throw new Error(`gbBytes must be a positive multiple of 512 (got ${gbBytes})`);
  const state = new MockHcsState(devicesDir, imagesDir, gbBytes, { VirtualDisk, writeImageFile });
  const now = options.now ?? Date.now;
  const ids = {
    tenantId: randomUUID().replace(/-/g, ''),
    projectId: randomUUID().replace(/-/g, ''),
    user: 'hcs-admin',
    password: `pw-${randomUUID()}`,
    projectName: 'mx-ags-1_migration',
    region: 'mx-ags-1',
  };
  const storageUser = 'syncproxy';
  const storagePassword = `st-${randomUUID()}`;
  const userType = options.userType ?? 'local';
  const proxyInitiator = 'iqn.1994-05.com.redhat:syncproxy-proxy';
  let gatewayUrl = '';
  const hcs = await startMockServer({
    state,
    routes: hcsRoutes({
      url: () => gatewayUrl,
      tenantId: ids.tenantId,
      user: ids.user,
      password: ids.password,
      projectDomainId: ids.tenantId,
      projectName: ids.projectName,
      projectId: ids.projectId,
      region: ids.region,
      pageSize: options.pageSize ?? 2,
      tokenTtlMs: options.tokenTtlMs ?? 24 * 3600_000,
      now,
    }),
    notFound: () => ({
      status: 404,
      body: {
        error_code: 'APIGW.0101',
        error_msg: 'The API does not exist or has not been published in the environment',
      },
    }),
  });
  gatewayUrl = hcs.url;
  const doradoFaults: DoradoFault[] = [];
  const dorado = await startMockServer({
    state,
    routes: doradoRoutes({
      user: storageUser,
      password: storagePassword,
      scope: userType === 'local' ? '0' : userType === 'LDAP' ? '1' : '2',
      faults: doradoFaults,
    }),
  });

  return {
    hcs,
    dorado,
    state,
    devicesDir,
    password: ids.password,
    storagePassword,
    proxyInitiator,
    gbBytes,
    config() {
      return {
        iamUrl: `${hcs.url}/v3`,
        tenantId: ids.tenantId,
        user: ids.user,
        password: ids.password,
        projectDomainId: ids.tenantId,
        projectName: ids.projectName,
        region: ids.region,
        proxy: { hostName: 'syncproxy-proxy-01', initiators: [proxyInitiator] },
        storages: [
          { type: 'DORADO', url: dorado.url, user: storageUser, password: storagePassword, userType },
        ],
      };
    },
    addServer(spec) {
      const server: MockServerRecord = {
        id: randomUUID(),
        name: spec.name,
        status: spec.status ?? 'ACTIVE',
        volumeIds: [],
      };
      state.servers.set(server.id, server);
      const volumes = spec.volumesGb.map((sizeGb, i) => {
        const volume = state.addVolume({
          name: `${spec.name}-${i === 0 ? 'sys' : `data${i}`}`,
          sizeGb,
          serverId: server.id,
          device: `/dev/vd${String.fromCharCode(97 + i)}`,
          boot: i === 0,
        });
        server.volumeIds.push(volume.id);
        return volume;
      });
      return { server, volumes };
    },
    setHcsVersion(version) {
      state.hcsVersion = version;
    },
    setConsistencyGroups(supported) {
      state.consistencyGroupsSupported = supported;
    },
    setDoradoModel(model) {
      state.doradoModel = model;
    },
    throttle() {
      return hcs.faults.add({
        kind: 'throttle',
        status: 429,
        body: { error_code: 'APIGW.0308', error_msg: 'The throttling threshold has been reached' },
      });
    },
    failHcs({ status, code, ...match }) {
      return hcs.faults.add({
        kind: 'status',
        status,
        body: { error_code: code, error_msg: `injected ${code}` },
        ...match,
      });
    },
    failDorado(fault) {
      const entry: DoradoFault = { ...fault, hits: 0, seen: 0 };
      doradoFaults.push(entry);
      return entry;
    },
    expireDoradoSessions() {
      state.sessions.clear();
    },
    revokeTokens() {
      state.tokens.clear();
    },
    async close() {
      await hcs.close();
      await dorado.close();
      await rm(workDir, { recursive: true, force: true });
    },
  };
}
