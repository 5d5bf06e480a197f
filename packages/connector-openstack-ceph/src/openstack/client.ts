import {
  abortError,
  type Logger,
  PlatformApiError,
  type Redactor,
  SyncproxyError,
  silentLogger,
  toSyncproxyError,
} from '@syncproxy/core';
import { Agent, type Dispatcher, request } from 'undici';

const PLATFORM = 'openstack-ceph';

export interface OpenstackClientOptions {
  authUrl: string;
  userDomainId: string;
  user: string;
  password: string;
  projectDomainId: string;
  projectName: string;
  region: string;
  interface: 'public' | 'internal' | 'admin';
  /** The proxy's dispatcher; without one the client makes (and closes) its own. */
  dispatcher?: Dispatcher;
  caCertificate?: string;
  redactor: Redactor;
  logger?: Logger;
  /** A call with no answer for this long fails. Default 600 s (the proxy setting). */
  httpTimeoutSec?: number;
  /** Re-authenticate this long before the token expires. Default 120 s. */
  tokenRefreshMarginSec?: number;
  /** The clock token expiry is judged by (tests inject one). */
  now?: () => number;
  signal?: AbortSignal;
}

interface CatalogEntry {
  type: string;
  endpoints: Array<{ interface: string; region?: string; region_id?: string; url: string }>;
}

/** A Nova server as `GET /servers/detail` lists it (the fields this connector reads). */
export interface NovaServer {
  id: string;
  name: string;
  status: string;
  image?: { id?: string } | string | null;
  /** From compute microversion 2.47 on, the flavor itself; `disk` is its root disk in GiB. */
  flavor?: { id?: string; disk?: number; original_name?: string };
  'OS-EXT-STS:vm_state'?: string;
  'os-extended-volumes:volumes_attached'?: Array<{ id: string; delete_on_termination?: boolean }>;
}

/** A Cinder volume as `GET /volumes/detail` lists it. */
export interface CinderVolume {
  id: string;
  name: string | null;
  size: number;
  status: string;
  volume_type: string | null;
  bootable?: string | boolean;
  attachments?: Array<{ server_id: string; device?: string; attachment_id?: string }>;
  'os-vol-mig-status-attr:name_id'?: string | null;
}

export interface CinderSnapshot {
  id: string;
  volume_id: string;
  status: string;
  name?: string | null;
  description?: string | null;
  /** Naive UTC (`2026-03-01T00:00:00.000000`), as Cinder writes it. */
  created_at?: string;
  metadata?: Record<string, string>;
}

/** Nova embeds the flavor (with its root disk size) in a server from this microversion on (2.47). */
const EMBEDDED_FLAVOR_VERSION = 'compute 2.47';

/** Cinder filters snapshot lists by metadata from this microversion on (3.22). */
const SNAPSHOT_METADATA_FILTER_VERSION = 'volume 3.22';

/** Services by catalog type: Cinder is `block-storage` in newer catalogs, `volumev3` in older ones. */
const SERVICE_TYPES = { compute: ['compute'], volume: ['block-storage', 'volumev3'] } as const;
export type Service = keyof typeof SERVICE_TYPES;

/**
 * Keystone v3 password auth, then Nova and Cinder through the catalog
 * (platforms/openstack.md). Thin: one method per API call, every failure a
 * PlatformApiError or SyncproxyError with secrets redacted.
 */
export class OpenstackClient {
  private token: string | undefined;
  private expiresAt = 0;
  private catalog: CatalogEntry[] = [];
  private projectId: string | undefined;
  private authenticating: Promise<void> | undefined;
  private readonly dispatcher: Dispatcher;
  private readonly ownDispatcher: Agent | undefined;
  private readonly now: () => number;
  private readonly logger: Logger;
  /** Knows the config's secrets, and each token once issued. */
  private redactor: Redactor;

  constructor(private readonly options: OpenstackClientOptions) {
    this.redactor = options.redactor;
    this.now = options.now ?? Date.now;
    this.logger = options.logger ?? silentLogger;
    if (options.dispatcher) this.dispatcher = options.dispatcher;
    else {
      this.ownDispatcher = new Agent(options.caCertificate ? { connect: { ca: options.caCertificate } } : {});
      this.dispatcher = this.ownDispatcher;
    }
  }

  /** Keystone's base with `/v3` whatever form the user typed. */
  private get identityUrl(): string {
    const base = this.options.authUrl.replace(/\/+$/, '');
    return base.endsWith('/v3') ? base : `${base}/v3`;
  }

  /** Gets a token now (verify()), or when the current one is close to expiry. */
  async authenticate(force = false): Promise<void> {
    const margin = (this.options.tokenRefreshMarginSec ?? 120) * 1000;
    if (!force && this.token !== undefined && this.now() < this.expiresAt - margin) return;
    this.authenticating ??= this.login().finally(() => {
      this.authenticating = undefined;
    });
    await this.authenticating;
  }

  private async login(): Promise<void> {
    const o = this.options;
    const url = `${this.identityUrl}/auth/tokens`;
    const body = {
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: o.user, domain: { id: o.userDomainId }, password: o.password } },
        },
        scope: { project: { name: o.projectName, domain: { id: o.projectDomainId } } },
      },
    };
    const res = await this.send('Keystone CreateToken', 'POST', url, { body, authenticated: false });
    const token = res.headers['x-subject-token'];
    const json = (await this.readJson('Keystone CreateToken', 'POST', url, res)) as {
      token?: { expires_at?: string; catalog?: CatalogEntry[]; project?: { id?: string } };
    };
    if (typeof token !== 'string' || token === '' || !json.token) {
      throw new SyncproxyError(
        `Keystone CreateToken at ${url} answered without an X-Subject-Token header or token body`,
        {
          code: 'protocol',
          retryable: false,
          platform: PLATFORM,
        },
      );
    }
    this.redactor = this.redactor.with([token]);
    this.token = token;
    const expires = Date.parse(json.token.expires_at ?? '');
    this.expiresAt = Number.isFinite(expires) ? expires : this.now() + 3600_000;
    this.catalog = json.token.catalog ?? [];
    this.projectId = json.token.project?.id;
    this.logger.debug({ expiresAt: new Date(this.expiresAt).toISOString() }, 'keystone token issued');
  }

  /** The endpoint of a service in the configured region and interface. */
  endpoint(service: Service): string {
    const types: readonly string[] = SERVICE_TYPES[service];
    const { region } = this.options;
    for (const entry of this.catalog) {
      if (!types.includes(entry.type)) continue;
      const hit = entry.endpoints.find(
        (e) => e.interface === this.options.interface && (e.region_id === region || e.region === region),
      );
      if (hit) return hit.url.replace(/\/+$/, '');
    }
    throw new SyncproxyError(
      `the Keystone catalog has no ${types.join('/')} endpoint with interface ${this.options.interface} in region ${region} (check the region)`,
      { code: 'config', retryable: false, platform: PLATFORM },
    );
  }

  get project(): string | undefined {
    return this.projectId;
  }

  /** A JSON call to a service path (or an absolute `next` link); re-authenticates once on 401. */
  async call<T>(
    operation: string,
    service: Service,
    method: string,
    pathOrUrl: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<T> {
    await this.authenticate();
    const url = (): string => {
      if (!/^[a-z][a-z0-9+.-]*:/i.test(pathOrUrl)) return `${this.endpoint(service)}${pathOrUrl}`;
      this.checkLinkOrigin(operation, service, pathOrUrl);
      return pathOrUrl;
    };
    let res = await this.send(operation, method, url(), {
      body,
      authenticated: true,
      allow401: true,
      ...(headers ? { headers } : {}),
    });
    if (res.statusCode === 401) {
      await res.body.dump();
      this.logger.debug({ operation }, 'token refused, authenticating again');
      await this.authenticate(true);
      res = await this.send(operation, method, url(), {
        body,
        authenticated: true,
        ...(headers ? { headers } : {}),
      });
    }
    if (res.statusCode === 204 || method === 'DELETE') {
      await res.body.dump();
      return undefined as T;
    }
    return (await this.readJson(operation, method, url(), res)) as T;
  }

  /**
   * A `next` link is the service's word, written from its own config
   * (`compute_link_prefix`, `public_endpoint`): one that points elsewhere
   * would receive the token. Only the catalog endpoint's origin gets it.
   */
  private checkLinkOrigin(operation: string, service: Service, link: string): void {
    const expected = new URL(this.endpoint(service)).origin;
    let origin: string;
    try {
      origin = new URL(link).origin;
    } catch {
      origin = 'an unparsable URL';
    }
    if (origin === expected) return;
    throw new SyncproxyError(
      `${operation}: the next link points to ${origin}, not to the catalog's ${expected}; refusing to send the token there (check compute_link_prefix / public_endpoint on the service)`,
      { code: 'protocol', retryable: false, platform: PLATFORM },
    );
  }

  private async send(
    operation: string,
    method: string,
    url: string,
    options: { body?: unknown; authenticated: boolean; allow401?: boolean; headers?: Record<string, string> },
  ): Promise<Dispatcher.ResponseData> {
    const signal = this.options.signal;
    if (signal?.aborted) throw abortError(signal, operation);
    const timeoutMs = (this.options.httpTimeoutSec ?? 600) * 1000;
    const headers: Record<string, string> = { ...options.headers, accept: 'application/json' };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (options.authenticated && this.token) headers['x-auth-token'] = this.token;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        method: method as Dispatcher.HttpMethod,
        headers,
        dispatcher: this.dispatcher,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        ...(signal ? { signal } : {}),
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
      });
    } catch (error) {
      throw this.redactor.error(toSyncproxyError(error, { operation, platform: PLATFORM }));
    }
    if (res.statusCode >= 400 && !(options.allow401 && res.statusCode === 401)) {
      throw await this.apiError(operation, method, url, res);
    }
    return res;
  }

  private async readJson(
    operation: string,
    method: string,
    url: string,
    res: Dispatcher.ResponseData,
  ): Promise<unknown> {
    const text = await res.body.text();
    try {
      return text === '' ? {} : JSON.parse(text);
    } catch {
      throw new SyncproxyError(
        `${operation} answered HTTP ${res.statusCode} with a body that is not JSON from ${method} ${url}`,
        {
          code: 'protocol',
          retryable: false,
          platform: PLATFORM,
        },
      );
    }
  }

  private async apiError(
    operation: string,
    method: string,
    url: string,
    res: Dispatcher.ResponseData,
  ): Promise<PlatformApiError> {
    const text = this.redactor.text(await res.body.text().catch(() => ''));
    // Nova/Cinder errors are `{"itemNotFound": {"code": 404, "message": ...}}`; Keystone's `{"error": {...}}`.
    let platformCode: string | undefined;
    let detail: string | undefined;
    try {
      const json = JSON.parse(text) as Record<string, { message?: string; title?: string }>;
      const [key, value] = Object.entries(json)[0] ?? [];
      if (key !== undefined && value && typeof value === 'object') {
        platformCode = key === 'error' ? value.title : key;
        detail = value.message;
      }
    } catch {
      // Not JSON: the body is kept as text.
    }
    const requestId = header(res, 'x-openstack-request-id') ?? header(res, 'x-compute-request-id');
    const status = res.statusCode;
    // Cinder answers rate limits with 413 overLimit and Retry-After.
    const throttled = status === 429 || (status === 413 && platformCode === 'overLimit');
    const message = `${operation} failed: HTTP ${status}${platformCode ? ` ${platformCode}` : ''} from ${method} ${url.split('?')[0]}${detail ? `: ${detail}` : ''}${requestId ? ` (request id ${requestId})` : ''}`;
    return new PlatformApiError({
      operation,
      method,
      url,
      status,
      body: text,
      platform: PLATFORM,
      message: this.redactor.text(message),
      ...(requestId ? { requestId } : {}),
      ...(platformCode ? { platformCode } : {}),
      ...(throttled ? { code: 'throttled' as const, retryable: true } : {}),
      ...(status === 401 ? { retryable: false } : {}),
    });
  }

  // --- Nova -------------------------------------------------------------------

  async *listServers(pageSize = 100): AsyncGenerator<NovaServer> {
    let next: string | undefined = `/servers/detail?limit=${pageSize}`;
    while (next !== undefined) {
      const page: { servers?: NovaServer[]; servers_links?: Array<{ rel: string; href: string }> } =
        await this.call('Nova ListServersDetailed', 'compute', 'GET', next, undefined, {
          'openstack-api-version': EMBEDDED_FLAVOR_VERSION,
        });
      yield* page.servers ?? [];
      next = nextLink(page.servers_links, page.servers?.length ?? 0);
    }
  }

  // --- Cinder -----------------------------------------------------------------

  async *listVolumes(pageSize = 100): AsyncGenerator<CinderVolume> {
    let next: string | undefined = `/volumes/detail?limit=${pageSize}`;
    while (next !== undefined) {
      const page: { volumes?: CinderVolume[]; volumes_links?: Array<{ rel: string; href: string }> } =
        await this.call('Cinder ListVolumesDetailed', 'volume', 'GET', next);
      yield* page.volumes ?? [];
      next = nextLink(page.volumes_links, page.volumes?.length ?? 0);
    }
  }

  async createSnapshot(
    volumeId: string,
    name: string,
    metadata?: Record<string, string>,
  ): Promise<CinderSnapshot> {
    const res = await this.call<{ snapshot: CinderSnapshot }>(
      'Cinder CreateSnapshot',
      'volume',
      'POST',
      '/snapshots',
      {
        // `force` lets Cinder snapshot an in-use volume (a crash-consistent snapshot).
        snapshot: { volume_id: volumeId, name, force: true, ...(metadata ? { metadata } : {}) },
      },
    );
    return res.snapshot;
  }

  /**
   * The project's snapshots whose metadata holds every pair of `metadata`,
   * filtered by Cinder (microversion 3.22) and again here, since a Cinder that
   * predates the filter ignores it and lists everything.
   */
  async *listSnapshots(metadata: Record<string, string>, pageSize = 100): AsyncGenerator<CinderSnapshot> {
    const filter = encodeURIComponent(JSON.stringify(metadata));
    let next: string | undefined = `/snapshots/detail?limit=${pageSize}&metadata=${filter}`;
    while (next !== undefined) {
      const page: { snapshots?: CinderSnapshot[]; snapshots_links?: Array<{ rel: string; href: string }> } =
        await this.call('Cinder ListSnapshotsDetailed', 'volume', 'GET', next, undefined, {
          'openstack-api-version': SNAPSHOT_METADATA_FILTER_VERSION,
        });
      for (const snapshot of page.snapshots ?? []) {
        if (Object.entries(metadata).every(([k, v]) => snapshot.metadata?.[k] === v)) yield snapshot;
      }
      next = nextLink(page.snapshots_links, page.snapshots?.length ?? 0);
    }
  }

  async getSnapshot(id: string): Promise<CinderSnapshot> {
    const res = await this.call<{ snapshot: CinderSnapshot }>(
      'Cinder ShowSnapshot',
      'volume',
      'GET',
      `/snapshots/${encodeURIComponent(id)}`,
    );
    return res.snapshot;
  }

  async deleteSnapshot(id: string): Promise<void> {
    await this.call('Cinder DeleteSnapshot', 'volume', 'DELETE', `/snapshots/${encodeURIComponent(id)}`);
  }

  async close(): Promise<void> {
    await this.ownDispatcher?.close();
  }
}

function header(res: Dispatcher.ResponseData, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The `next` link of a page; an empty page ends paging even if a link is (wrongly) there. */
function nextLink(
  links: Array<{ rel: string; href: string }> | undefined,
  count: number,
): string | undefined {
  if (count === 0) return undefined;
  return links?.find((l) => l.rel === 'next')?.href;
}
