import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, realpath, rm, symlink, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Extent } from '@syncproxy/core';
import type { ActiveFault, MockServer } from '@syncproxy/testkit/mock';
import type { IscsiInitiator, IscsiTarget } from '../iscsi-initiator.js';
import { type MappedRangeScanner, normalizeRanges, type ScanOptions } from '../mapped-range-scanner.js';
import type { ProxyHostTools } from '../session.js';
import { ociRoutes } from './oci-api.js';
import { loadTestkit } from './peers.js';
import type { MockApiKey } from './signature.js';
import { BlockMap, Lifecycle, type MockInstance, MockOciState, type MockVolume } from './state.js';

export interface MockOciOptions {
  /** Items per list page at most. Default 2, so every list pages. */
  pageSize?: number;
  /** GETs a resource stays in each transitional state (CREATING, ATTACHING...). Default 1. */
  polls?: number;
  /** The service clock for the signature's date check. Default Date.now. */
  now?: () => number;
  /** Protect the API key with this passphrase (the config then carries it). */
  passphrase?: string;
}

export interface MockInstanceSpec {
  name: string;
  /** Default: the tenancy (root compartment). */
  compartmentId?: string;
  /** The first volume is the boot volume. */
  volumes: Array<{ sizeBytes: number }>;
}

/** A running mock of OCI Core Services and Identity on 127.0.0.1. */
export interface MockOci extends MockServer<MockOciState> {
  readonly tenancyId: string;
  readonly userId: string;
  readonly fingerprint: string;
  /** The API key's PEM (encrypted when a passphrase was given). */
  readonly privateKeyPem: string;
  readonly passphrase: string | undefined;
  readonly proxyInstanceId: string;
  readonly availabilityDomain: string;
  /** Where attached volumes appear: give it to the connector as `ctx.devices.byIdDir`. */
  readonly devicesDir: string;
  /** The proxy-side tools bound to this mock: an iSCSI initiator and the mapped-range scan. */
  readonly tools: ProxyHostTools;
  /** A connector config (the product form) that reaches this mock. */
  config(): Record<string, unknown>;
  addCompartment(name: string, parentId?: string): string;
  addInstance(spec: MockInstanceSpec): { instance: MockInstance; volumes: MockVolume[] };
  /** Answers every request with 429 TooManyRequests until removed. */
  throttle(): ActiveFault;
  /** Answers the next `times` matching requests with an OCI error. */
  fail(options: {
    method?: string;
    path?: string | RegExp;
    status: number;
    code: string;
    times?: number;
    skip?: number;
  }): ActiveFault;
}

/** An MD5 fingerprint of the public key's DER, as the OCI console shows it. */
export function fingerprintOf(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('md5').update(der).digest('hex').match(/../g)!.join(':');
}

/**
 * Starts the OCI mock: the Core Services and Identity routes the connector
 * calls, every request's signature verified with the user's public key; and
 * the proxy side: attached volumes appear as symlinks under `devicesDir`,
 * iSCSI logins through {@link MockOci.tools}, delta scans answered from the
 * delta volume's record.
 */
export async function startMockOci(options: MockOciOptions = {}): Promise<MockOci> {
  // First, before anything is created on disk: without the testkit there is nothing to clean up.
  const { startMockServer } = await loadTestkit();
  const state = new MockOciState();
  const workDir = await mkdtemp(join(tmpdir(), 'syncproxy-mock-oci-'));
  const devicesDir = join(workDir, 'by-id');
  await import('node:fs/promises').then((fs) => fs.mkdir(devicesDir));
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privateKeyPem = privateKey.export({
    type: 'pkcs8',
    format: 'pem',
    ...(options.passphrase ? { cipher: 'aes-256-cbc', passphrase: options.passphrase } : {}),
  }) as string;
  const key: MockApiKey = {
    tenancyId: state.ocid('tenancy', true),
    userId: state.ocid('user', true),
    fingerprint: fingerprintOf(publicKey),
    publicKey,
  };
  state.compartments.clear();
  const availabilityDomain = 'Uocm:US-ASHBURN-AD-1';
  const now = options.now ?? Date.now;
  const polls = options.polls ?? 1;
  const server = await startMockServer({
    state,
    routes: ociRoutes({
      keys: [key],
      workDir,
      devicesDir,
      pageSize: options.pageSize ?? 2,
      polls,
      now,
    }),
    notFound: () => ({ status: 404, body: { code: 'NotAuthorizedOrNotFound', message: 'no such route' } }),
  });

  const proxy: MockInstance = {
    id: state.ocid('instance'),
    compartmentId: key.tenancyId,
    availabilityDomain,
    displayName: 'sync-proxy',
    lifecycleState: 'RUNNING',
    timeCreated: new Date(now()).toISOString(),
  };
  state.instances.set(proxy.id, proxy);

  const linkOf = (t: IscsiTarget) => join(devicesDir, `ip-${t.ipv4}:${t.port}-iscsi-${t.iqn}-lun-1`);
  const iscsi: IscsiInitiator = {
    async login(target) {
      const a = [...state.attachments.values()].find(
        (x) => x.iqn === target.iqn && x.lifecycle.state === 'ATTACHED',
      );
      const volume = a && state.volumes.get(a.volumeId);
      if (!a || !volume?.file)
        throw new Error(`iscsiadm: no target ${target.iqn} at ${target.ipv4}:${target.port}`);
      a.link = linkOf(target);
      await symlink(volume.file, a.link);
      state.stats.iscsiLogins++;
    },
    async logout(target) {
      await unlink(linkOf(target)).catch(() => {});
      state.stats.iscsiLogouts++;
    },
  };
  const scanner: MappedRangeScanner = {
    async scan(scan: ScanOptions): Promise<Extent[]> {
      const file = await realpath(scan.devicePath);
      const volume = [...state.volumes.values()].find((v) => v.file === file);
      if (!volume?.mappedRanges)
        throw new Error(`sg_get_lba_status: ${scan.devicePath} is not a volume of this mock`);
      const ranges = normalizeRanges(volume.mappedRanges, scan.diskSize);
      state.stats.mappedBytesReported += ranges.reduce((sum, r) => sum + r.length, 0);
      return ranges;
    },
  };

  const mock: MockOci = {
    ...server,
    get url() {
      return server.url;
    },
    tenancyId: key.tenancyId,
    userId: key.userId,
    fingerprint: key.fingerprint,
    privateKeyPem,
    passphrase: options.passphrase,
    proxyInstanceId: proxy.id,
    availabilityDomain,
    devicesDir,
    tools: { iscsi, scanner },
    config() {
      return {
        tenancyId: key.tenancyId,
        userId: key.userId,
        fingerprint: key.fingerprint,
        region: 'us-ashburn-1',
        privateKey: privateKeyPem,
        ...(options.passphrase ? { passphrase: options.passphrase } : {}),
        proxyInstanceId: proxy.id,
        proxyAvailabilityDomain: availabilityDomain,
        endpoints: { core: server.url, identity: server.url },
      };
    },
    addCompartment(name, parentId = key.tenancyId) {
      const id = state.ocid('compartment', true);
      state.compartments.set(id, { id, parentId, name, timeCreated: new Date(now()).toISOString() });
      return id;
    },
    addInstance(spec) {
      const compartmentId = spec.compartmentId ?? key.tenancyId;
      const instance: MockInstance = {
        id: state.ocid('instance'),
        compartmentId,
        availabilityDomain,
        displayName: spec.name,
        lifecycleState: 'RUNNING',
        timeCreated: new Date(now()).toISOString(),
      };
      state.instances.set(instance.id, instance);
      const volumes = spec.volumes.map((v, i): MockVolume => {
        const kind = i === 0 ? 'boot' : 'block';
        const volume: MockVolume = {
          id: state.ocid(kind === 'boot' ? 'bootvolume' : 'volume'),
          kind,
          compartmentId,
          availabilityDomain,
          displayName: `${spec.name}-${kind === 'boot' ? 'boot' : `data${i}`}`,
          sizeBytes: v.sizeBytes,
          data: new BlockMap(),
          lifecycle: new Lifecycle([{ state: 'AVAILABLE', polls: 0 }]),
          freeformTags: {},
          timeCreated: instance.timeCreated,
        };
        state.volumes.set(volume.id, volume);
        const attachmentId = state.ocid(kind === 'boot' ? 'bootvolumeattachment' : 'volumeattachment');
        state.attachments.set(attachmentId, {
          id: attachmentId,
          kind,
          instanceId: instance.id,
          volumeId: volume.id,
          compartmentId,
          availabilityDomain,
          attachmentType: 'paravirtualized',
          displayName: `${volume.displayName}-attachment`,
          ...(kind === 'block' ? { device: `/dev/oracleoci/oraclevd${String.fromCharCode(97 + i)}` } : {}),
          lifecycle: new Lifecycle([{ state: 'ATTACHED', polls: 0 }]),
          timeCreated: instance.timeCreated,
        });
        return volume;
      });
      return { instance, volumes };
    },
    throttle() {
      return server.faults.add({
        kind: 'throttle',
        status: 429,
        body: { code: 'TooManyRequests', message: 'Too many requests for the tenancy' },
        headers: { 'opc-request-id': 'THROTTLED' },
      });
    },
    fail({ status, code, ...match }) {
      return server.faults.add({
        kind: 'status',
        status,
        body: { code, message: `injected ${code}` },
        headers: { 'opc-request-id': 'INJECTED' },
        ...match,
      });
    },
    async close() {
      await server.close();
      await rm(workDir, { recursive: true, force: true });
    },
  };
  return mock;
}
