import { randomUUID } from 'node:crypto';
import type { MockRequest, MockResponse, RouteTable } from '@syncproxy/testkit/mock';

/** A Nova server of the mock. */
export interface MockServerEntry {
  id: string;
  name: string;
  status: 'ACTIVE' | 'SHUTOFF';
  volumeIds: string[];
  /** Set for an instance booted from an image (its root disk is not a volume). */
  imageId?: string;
  /** The server's flavor; `diskGiB` is its root disk (0 for boot-from-volume flavors). */
  flavor?: { id: string; name: string; diskGiB: number };
}

/** A Cinder volume of the mock; its data is the RBD image `volume-<id>` in the real test Ceph. */
export interface MockVolume {
  id: string;
  name: string;
  sizeBytes: number;
  status: 'available' | 'in-use';
  volumeType: string;
  serverId?: string;
  device?: string;
  bootable: boolean;
}

export interface MockSnapshot {
  id: string;
  volumeId: string;
  name: string;
  status: 'creating' | 'available' | 'deleting' | 'error';
  /** GETs seen while creating. */
  polls: number;
  /** Cinder's naive UTC time, `2026-03-01T00:00:00.000000` (no zone). */
  createdAt: string;
  description: string | null;
  /** Key/value metadata set at creation (`snapshot.metadata`). */
  metadata: Record<string, string>;
}

/** The mock's state: a back door for arranging and asserting. */
export interface MockOpenstackState {
  projectId: string;
  projectName: string;
  user: string;
  password: string;
  domainId: string;
  region: string;
  /** Catalog type of Cinder: `block-storage` (newer) or `volumev3` (older clouds). */
  volumeServiceType: 'block-storage' | 'volumev3';
  tokens: Map<string, { expiresAt: number }>;
  tokenTtlSec: number;
  /** The mock's clock (ms); tests move it to expire tokens. */
  now: () => number;
  /** GETs a snapshot answers `creating` to before it is `available`. */
  pollsUntilAvailable: number;
  /** Largest page the list calls return, whatever `limit` asks. */
  maxPageSize: number;
  servers: Map<string, MockServerEntry>;
  volumes: Map<string, MockVolume>;
  snapshots: Map<string, MockSnapshot>;
  /** Makes and removes the RBD snapshot behind a Cinder snapshot. */
  ceph: {
    createSnapshot(volumeId: string, snapshotId: string): Promise<void>;
    deleteSnapshot(volumeId: string, snapshotId: string): Promise<void>;
  };
  /** The mock's base URL, for catalog URLs and paging links. */
  baseUrl: string;
  /**
   * Base URL of the `next` links when set: what a Nova with a wrong
   * `compute_link_prefix` (or a hostile one) writes. Default: `baseUrl`.
   */
  linkBaseUrl?: string;
}

const GiB = 1024 ** 3;

const unauthorized: MockResponse = {
  status: 401,
  body: {
    error: {
      code: 401,
      title: 'Unauthorized',
      message: 'The request you have made requires authentication.',
    },
  },
};

function authed(req: MockRequest, state: MockOpenstackState): boolean {
  const token = req.headers['x-auth-token'];
  const entry = typeof token === 'string' ? state.tokens.get(token) : undefined;
  return entry !== undefined && state.now() < entry.expiresAt;
}

function notFound(what: string): MockResponse {
  return { status: 404, body: { itemNotFound: { code: 404, message: `${what} could not be found.` } } };
}

function badRequest(message: string): MockResponse {
  return { status: 400, body: { badRequest: { code: 400, message } } };
}

/** Cinder's timestamps: UTC without a zone, microseconds. */
function cinderTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000');
}

/** The minor of `OpenStack-API-Version: volume 3.x`; 0 (the base 3.0) when absent. */
function volumeMicroversion(req: MockRequest): number {
  const header = req.headers['openstack-api-version'];
  const match = typeof header === 'string' ? /\bvolume 3\.(\d+)\b/.exec(header) : null;
  return match ? Number(match[1]) : 0;
}

/** The minor of `OpenStack-API-Version: compute 2.x`; 1 (the base 2.1) when absent. */
function computeMicroversion(req: MockRequest): number {
  const header = req.headers['openstack-api-version'];
  const match = typeof header === 'string' ? /\bcompute 2\.(\d+)\b/.exec(header) : null;
  return match ? Number(match[1]) : 1;
}

/** A server's flavor: a link before compute 2.47, the flavor itself (without its id) from 2.47 on. */
function flavorJson(
  req: MockRequest,
  state: MockOpenstackState,
  s: MockServerEntry,
): Record<string, unknown> {
  const flavor = s.flavor ?? { id: 'f-volume', name: 'm1.volume', diskGiB: 0 };
  if (computeMicroversion(req) >= 47) {
    return {
      original_name: flavor.name,
      vcpus: 1,
      ram: 512,
      disk: flavor.diskGiB,
      ephemeral: 0,
      swap: 0,
      extra_specs: {},
    };
  }
  return {
    id: flavor.id,
    links: [{ rel: 'bookmark', href: `${state.baseUrl}/compute/flavors/${flavor.id}` }],
  };
}

/** One page of `items` after `marker`, with a `next` link when more remain (Nova/Cinder paging). */
function page<T extends { id: string }>(
  req: MockRequest,
  state: MockOpenstackState,
  items: T[],
): { items: T[]; links: Array<{ rel: string; href: string }> } | MockResponse {
  const limit = Math.min(
    Number(req.query.get('limit') ?? state.maxPageSize) || state.maxPageSize,
    state.maxPageSize,
  );
  const marker = req.query.get('marker');
  let start = 0;
  if (marker) {
    const at = items.findIndex((i) => i.id === marker);
    if (at === -1) return badRequest(`marker [${marker}] not found`);
    start = at + 1;
  }
  const slice = items.slice(start, start + limit);
  const links: Array<{ rel: string; href: string }> = [];
  if (start + limit < items.length && slice.length > 0) {
    const next = new URL(req.path, state.linkBaseUrl ?? state.baseUrl);
    // The next link keeps the request's filters, as Cinder's and Nova's do.
    for (const [key, value] of req.query) if (key !== 'marker') next.searchParams.set(key, value);
    next.searchParams.set('limit', String(limit));
    next.searchParams.set('marker', slice[slice.length - 1]!.id);
    links.push({ rel: 'next', href: next.toString() });
  }
  return { items: slice, links };
}

function volumeJson(v: MockVolume): Record<string, unknown> {
  return {
    id: v.id,
    name: v.name,
    size: Math.ceil(v.sizeBytes / GiB),
    status: v.status,
    volume_type: v.volumeType,
    bootable: v.bootable ? 'true' : 'false',
    multiattach: false,
    attachments: v.serverId
      ? [
          {
            server_id: v.serverId,
            attachment_id: `att-${v.id}`,
            volume_id: v.id,
            id: v.id,
            device: v.device,
            host_name: 'compute-1',
          },
        ]
      : [],
  };
}

function snapshotJson(s: MockSnapshot): Record<string, unknown> {
  return {
    id: s.id,
    volume_id: s.volumeId,
    name: s.name,
    description: s.description,
    status: s.status,
    created_at: s.createdAt,
    metadata: { ...s.metadata },
    size: 1,
  };
}

/**
 * Keystone v3, Nova v2.1 and Cinder v3 as platforms/openstack.md describes
 * them: 201 + X-Subject-Token, a catalog by region and interface, 401 for
 * expired tokens, paged lists with `*_links`, snapshots `creating` ->
 * `available`, `force` needed for in-use volumes, delete 202 then 404.
 */
export function openstackRoutes(): RouteTable<MockOpenstackState> {
  const volumeBase = '/volume/v3/:project';
  return {
    'POST /identity/v3/auth/tokens': (req, state) => {
      let body: {
        auth?: {
          identity?: {
            methods?: string[];
            password?: {
              user?: { name?: string; password?: string; domain?: { id?: string; name?: string } };
            };
          };
          scope?: { project?: { name?: string; domain?: { id?: string; name?: string } } };
        };
      };
      try {
        body = req.json();
      } catch {
        return badRequest('malformed JSON');
      }
      const user = body.auth?.identity?.password?.user;
      const project = body.auth?.scope?.project;
      const domainOk = (d?: { id?: string; name?: string }): boolean =>
        d?.id === state.domainId || (state.domainId === 'default' && d?.name === 'Default');
      if (
        !body.auth?.identity?.methods?.includes('password') ||
        user?.name !== state.user ||
        user.password !== state.password ||
        !domainOk(user.domain)
      ) {
        return unauthorized;
      }
      if (project?.name !== state.projectName || !domainOk(project.domain)) {
        return {
          status: 401,
          body: { error: { code: 401, title: 'Unauthorized', message: 'No project found.' } },
        };
      }
      const token = `gAAAAA${randomUUID().replace(/-/g, '')}`;
      const issued = state.now();
      const expiresAt = issued + state.tokenTtlSec * 1000;
      state.tokens.set(token, { expiresAt });
      const endpoints = (path: string) =>
        ['public', 'internal', 'admin'].map((iface) => ({
          id: randomUUID(),
          interface: iface,
          region: state.region,
          region_id: state.region,
          url: `${state.baseUrl}${path}`,
        }));
      return {
        status: 201,
        headers: { 'x-subject-token': token },
        body: {
          token: {
            methods: ['password'],
            issued_at: new Date(issued).toISOString(),
            expires_at: new Date(expiresAt).toISOString(),
            user: { id: 'u-1', name: state.user, domain: { id: state.domainId, name: 'Default' } },
            project: {
              id: state.projectId,
              name: state.projectName,
              domain: { id: state.domainId, name: 'Default' },
            },
            roles: [{ id: 'r-1', name: 'member' }],
            catalog: [
              { type: 'identity', name: 'keystone', id: 'c-1', endpoints: endpoints('/identity/v3') },
              { type: 'compute', name: 'nova', id: 'c-2', endpoints: endpoints('/compute/v2.1') },
              {
                type: state.volumeServiceType,
                name: 'cinderv3',
                id: 'c-3',
                endpoints: endpoints(`/volume/v3/${state.projectId}`),
              },
            ],
          },
        },
      };
    },

    'GET /compute/v2.1/servers/detail': (req, state) => {
      if (!authed(req, state)) return unauthorized;
      const result = page(req, state, [...state.servers.values()]);
      if (!('items' in result)) return result;
      return {
        body: {
          servers: result.items.map((s) => ({
            id: s.id,
            name: s.name,
            status: s.status,
            'OS-EXT-STS:vm_state': s.status === 'ACTIVE' ? 'active' : 'stopped',
            image: s.imageId ? { id: s.imageId } : '',
            flavor: flavorJson(req, state, s),
            'os-extended-volumes:volumes_attached': s.volumeIds.map((id) => ({
              id,
              delete_on_termination: false,
            })),
          })),
          ...(result.links.length ? { servers_links: result.links } : {}),
        },
      };
    },

    [`GET ${volumeBase}/volumes/detail`]: (req, state) => {
      if (!authed(req, state)) return unauthorized;
      if (req.params.project !== state.projectId) return notFound(`Project ${req.params.project}`);
      const result = page(req, state, [...state.volumes.values()]);
      if (!('items' in result)) return result;
      return {
        body: {
          volumes: result.items.map(volumeJson),
          ...(result.links.length ? { volumes_links: result.links } : {}),
        },
      };
    },

    [`GET ${volumeBase}/volumes/:id`]: (req, state) => {
      if (!authed(req, state)) return unauthorized;
      const volume = state.volumes.get(req.params.id!);
      return volume ? { body: { volume: volumeJson(volume) } } : notFound(`Volume ${req.params.id}`);
    },

    [`POST ${volumeBase}/snapshots`]: async (req, state) => {
      if (!authed(req, state)) return unauthorized;
      let body: {
        snapshot?: {
          volume_id?: string;
          name?: string;
          description?: string;
          force?: boolean | string;
          metadata?: unknown;
        };
      };
      try {
        body = req.json();
      } catch {
        return badRequest('malformed JSON');
      }
      const volume = state.volumes.get(body.snapshot?.volume_id ?? '');
      if (!volume) return notFound(`Volume ${body.snapshot?.volume_id}`);
      const force = body.snapshot?.force === true || body.snapshot?.force === 'true';
      if (volume.status === 'in-use' && !force) {
        return badRequest(
          `Invalid volume: Volume ${volume.id} status must be available, but current status is: in-use.`,
        );
      }
      const metadata = body.snapshot?.metadata ?? {};
      if (
        typeof metadata !== 'object' ||
        metadata === null ||
        Array.isArray(metadata) ||
        Object.entries(metadata).some(([k, v]) => typeof v !== 'string' || k.length === 0 || k.length > 255)
      ) {
        return badRequest('Invalid input for field/attribute metadata. Value: must be a dict of strings.');
      }
      const snapshot: MockSnapshot = {
        id: randomUUID(),
        volumeId: volume.id,
        name: body.snapshot?.name ?? '',
        description: body.snapshot?.description ?? null,
        status: 'creating',
        polls: 0,
        createdAt: cinderTime(state.now()),
        metadata: { ...(metadata as Record<string, string>) },
      };
      // The RBD snapshot is the point in time; `creating` only delays when Cinder says so.
      await state.ceph.createSnapshot(volume.id, snapshot.id);
      state.snapshots.set(snapshot.id, snapshot);
      return { status: 202, body: { snapshot: snapshotJson(snapshot) } };
    },

    [`GET ${volumeBase}/snapshots/detail`]: (req, state) => {
      if (!authed(req, state)) return unauthorized;
      const volumeId = req.query.get('volume_id');
      let wanted: Record<string, unknown> = {};
      // Cinder filters snapshots by metadata from microversion 3.22 on; older requests have the filter ignored.
      const metadataFilter = req.query.get('metadata');
      if (metadataFilter !== null && volumeMicroversion(req) >= 22) {
        try {
          // Cinder reads it with ast.literal_eval: a JSON object is a Python dict literal.
          wanted = JSON.parse(metadataFilter) as Record<string, unknown>;
        } catch {
          return badRequest(`Invalid filter metadata: ${metadataFilter}`);
        }
      }
      const list = [...state.snapshots.values()].filter(
        (s) =>
          (!volumeId || s.volumeId === volumeId) &&
          Object.entries(wanted).every(([k, v]) => s.metadata[k] === String(v)),
      );
      const result = page(req, state, list);
      if (!('items' in result)) return result;
      return {
        body: {
          snapshots: result.items.map(snapshotJson),
          ...(result.links.length ? { snapshots_links: result.links } : {}),
        },
      };
    },

    [`GET ${volumeBase}/snapshots/:id`]: (req, state) => {
      if (!authed(req, state)) return unauthorized;
      const snapshot = state.snapshots.get(req.params.id!);
      if (!snapshot) return notFound(`Snapshot ${req.params.id}`);
      if (snapshot.status === 'creating') {
        snapshot.polls++;
        if (snapshot.polls >= state.pollsUntilAvailable) snapshot.status = 'available';
      }
      return { body: { snapshot: snapshotJson(snapshot) } };
    },

    [`DELETE ${volumeBase}/snapshots/:id`]: async (req, state) => {
      if (!authed(req, state)) return unauthorized;
      const snapshot = state.snapshots.get(req.params.id!);
      if (!snapshot) return notFound(`Snapshot ${req.params.id}`);
      snapshot.status = 'deleting';
      await state.ceph.deleteSnapshot(snapshot.volumeId, snapshot.id);
      state.snapshots.delete(snapshot.id);
      return { status: 202 };
    },
  };
}
