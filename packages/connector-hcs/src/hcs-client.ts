import {
  abortError,
  type Logger,
  PlatformApiError,
  type Redactor,
  SyncproxyError,
  toSyncproxyError,
} from '@syncproxy/core';
import { type Dispatcher, request } from 'undici';
import { type HcsConfig, identityUrlOf } from './config.js';

export const PLATFORM = 'hcs';

/** The release this connector speaks to; 8.2.x and 8.3.x changed the APIs it relies on. */
export const SUPPORTED_HCS_RELEASE = '8.0.2';

export interface CatalogEntry {
  type: string;
  name?: string;
  endpoints: Array<{ interface?: string; region?: string; region_id?: string; url: string }>;
}

/** An ECS server as `GET /v1/{project_id}/cloudservers/detail` lists it (the fields used). */
export interface EcsServer {
  id: string;
  name: string;
  status: string;
  'os-extended-volumes:volumes_attached'?: Array<{ id: string; bootIndex?: string; device?: string }>;
}

/** An EVS volume as `GET /v2/{project_id}/cloudvolumes/detail` lists it (the fields used). */
export interface EvsVolume {
  id: string;
  name: string;
  /** GB. */
  size: number;
  status: string;
  bootable?: string;
  /** The WWN of the LUN behind the volume (SAN-backed volume types). */
  wwn?: string;
  attachments?: Array<{ server_id: string; device?: string }>;
  metadata?: Record<string, string>;
}

export interface HcsClientOptions {
  config: HcsConfig;
  dispatcher: Dispatcher;
  redactor: Redactor;
  logger: Logger;
  httpTimeoutSec?: number;
  /** Re-authenticate this long before the token expires. Default 300 s. */
  tokenRefreshMarginSec?: number;
  now?: () => number;
  signal?: AbortSignal;
}

/** ECS and EVS page sizes (ECS allows 1000, EVS 1000; kept small so both page in practice). */
const PAGE_SIZE = 100;

export const SERVICE_TYPES = {
  ecs: ['ecs', 'compute'],
  evs: ['evs', 'volumev2', 'volumev3', 'volume'],
} as const;
export type HcsService = keyof typeof SERVICE_TYPES;

/**
 * The HCS side, thin: an IAM v3 password token scoped to the project (taken
 * again before it expires and when a call answers 401), the endpoint catalog
 * it carries, ECS servers and EVS volumes, paged.
 */
export class HcsClient {
  readonly #options: HcsClientOptions;
  #redactor: Redactor;
  #token: string | undefined;
  #expiresAt = 0;
  #catalog: CatalogEntry[] = [];
  #projectId: string | undefined;
  #authenticating: Promise<void> | undefined;
  readonly #now: () => number;

  constructor(options: HcsClientOptions) {
    this.#options = options;
    this.#redactor = options.redactor;
    this.#now = options.now ?? Date.now;
  }

  get projectId(): string {
    if (this.#projectId === undefined) throw new SyncproxyError('not authenticated', { code: 'internal' });
    return this.#projectId;
  }

  /** Takes a token now, or when the one held is within the margin of its expiry. */
  async authenticate(force = false): Promise<void> {
    const margin = (this.#options.tokenRefreshMarginSec ?? 300) * 1000;
    if (!force && this.#token !== undefined && this.#now() < this.#expiresAt - margin) return;
    this.#authenticating ??= this.#login().finally(() => {
      this.#authenticating = undefined;
    });
    await this.#authenticating;
  }

  async #login(): Promise<void> {
    const { config } = this.#options;
    const url = `${identityUrlOf(config.iamUrl)}/auth/tokens`;
    const body = {
      auth: {
        identity: {
          methods: ['password'],
          password: {
            user: { name: config.user, password: config.password, domain: { id: config.tenantId } },
          },
        },
        scope: { project: { name: config.projectName, domain: { id: config.projectDomainId } } },
      },
    };
    const res = await this.#send('IAM KeystoneCreateUserTokenByPassword', 'POST', url, { body });
    const token = res.headers['x-subject-token'];
    const json = (await this.#json('IAM KeystoneCreateUserTokenByPassword', res)) as {
      token?: { expires_at?: string; catalog?: CatalogEntry[]; project?: { id?: string } };
    };
    if (typeof token !== 'string' || token === '' || !json.token?.project?.id) {
      throw new SyncproxyError(
        `IAM at ${url} answered without an X-Subject-Token header or a project-scoped token body`,
        { code: 'protocol', retryable: false, platform: PLATFORM },
      );
    }
    this.#redactor = this.#redactor.with([token]);
    this.#token = token;
    const expires = Date.parse(json.token.expires_at ?? '');
    this.#expiresAt = Number.isFinite(expires) ? expires : this.#now() + 3600_000;
    this.#catalog = json.token.catalog ?? [];
    this.#projectId = json.token.project.id;
    this.#options.logger.debug(
      {
        expiresAt: new Date(this.#expiresAt).toISOString(),
      },
      'hcs: IAM token issued',
    );
  }

  /** The public endpoint of a service in the configured region, from the token's catalog. */
  endpoint(service: HcsService): string {
    const types: readonly string[] = SERVICE_TYPES[service];
    const { region } = this.#options.config;
    for (const entry of this.#catalog) {
      if (!types.includes(entry.type)) continue;
      const hit = entry.endpoints.find(
        (e) => (e.interface ?? 'public') === 'public' && (e.region_id === region || e.region === region),
      );
      if (hit) return hit.url.replace(/\/+$/, '').replace('$(tenant_id)', this.projectId);
    }
    throw new SyncproxyError(
      `region: the IAM catalog has no public ${types.join('/')} endpoint in region ${region} (give the region id, not its display name)`,
      { code: 'config', retryable: false, platform: PLATFORM, details: { field: 'region' } },
    );
  }

  /**
   * The HCS release, from the IAM gateway's version document (`GET /v3`,
   * `version.hcs_version`; UNCONFIRMED where real gateways put it, so a
   * document without it yields undefined and the caller decides).
   */
  async platformVersion(): Promise<string | undefined> {
    const url = identityUrlOf(this.#options.config.iamUrl);
    const res = await this.#send('IAM ShowVersion', 'GET', url, {});
    const json = (await this.#json('IAM ShowVersion', res)) as { version?: { hcs_version?: unknown } };
    const found = json.version?.hcs_version;
    return typeof found === 'string' && found !== '' ? found : undefined;
  }

  /** A JSON call to a service; re-authenticates once when the token is refused (401). */
  async call<T>(operation: string, service: HcsService, method: string, path: string): Promise<T> {
    await this.authenticate();
    let res = await this.#send(operation, method, `${this.endpoint(service)}${path}`, {
      authenticated: true,
      allow401: true,
    });
    if (res.statusCode === 401) {
      await res.body.dump();
      this.#options.logger.debug({ operation }, 'hcs: token refused, authenticating again');
      await this.authenticate(true);
      res = await this.#send(operation, method, `${this.endpoint(service)}${path}`, { authenticated: true });
    }
    return (await this.#json(operation, res)) as T;
  }

  /** Every server of the project: ECS pages by page number (`offset` starts at 1). */
  async listServers(): Promise<EcsServer[]> {
    await this.authenticate();
    const servers: EcsServer[] = [];
    for (let page = 1; ; page++) {
      const answer = await this.call<{ count?: number; servers?: EcsServer[] }>(
        'ECS ListServersDetails',
        'ecs',
        'GET',
        `/v1/${this.projectId}/cloudservers/detail?offset=${page}&limit=${PAGE_SIZE}`,
      );
      const got = answer.servers ?? [];
      servers.push(...got);
      if (got.length === 0 || servers.length >= (answer.count ?? 0)) return servers;
    }
  }

  /** Every volume of the project: EVS pages by item offset (`offset` starts at 0). */
  async listVolumes(): Promise<EvsVolume[]> {
    await this.authenticate();
    const volumes: EvsVolume[] = [];
    for (;;) {
      const answer = await this.call<{ count?: number; volumes?: EvsVolume[] }>(
        'EVS ListVolumes',
        'evs',
        'GET',
        `/v2/${this.projectId}/cloudvolumes/detail?limit=${PAGE_SIZE}&offset=${volumes.length}`,
      );
      const got = answer.volumes ?? [];
      volumes.push(...got);
      if (got.length === 0 || volumes.length >= (answer.count ?? 0)) return volumes;
    }
  }

  async #send(
    operation: string,
    method: string,
    url: string,
    options: { body?: unknown; authenticated?: boolean; allow401?: boolean },
  ): Promise<Dispatcher.ResponseData> {
    const signal = this.#options.signal;
    if (signal?.aborted) throw abortError(signal, operation);
    const timeoutMs = (this.#options.httpTimeoutSec ?? 600) * 1000;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (options.body !== undefined) headers['content-type'] = 'application/json;charset=utf8';
    if (options.authenticated && this.#token) headers['x-auth-token'] = this.#token;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        method: method as Dispatcher.HttpMethod,
        headers,
        dispatcher: this.#options.dispatcher,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        ...(signal ? { signal } : {}),
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
      });
    } catch (error) {
      throw this.#redactor.error(toSyncproxyError(error, { operation, platform: PLATFORM }));
    }
    if (res.statusCode >= 400 && !(options.allow401 && res.statusCode === 401)) {
      const text = this.#redactor.text(await res.body.text().catch(() => ''));
      // HCS answers `{"error_code": "...", "error_msg": "..."}` (API gateway) or Keystone's `{"error": {...}}`.
      let platformCode: string | undefined;
      let detail: string | undefined;
      try {
        const json = JSON.parse(text) as {
          error_code?: string;
          error_msg?: string;
          error?: { code?: unknown; message?: string; title?: string };
        };
        platformCode = json.error_code ?? json.error?.title;
        detail = json.error_msg ?? json.error?.message;
      } catch {
        // Not JSON: kept as text in the error's body.
      }
      const status = res.statusCode;
      throw new PlatformApiError({
        operation,
        method,
        url,
        status,
        body: text,
        platform: PLATFORM,
        message: this.#redactor.text(
          `${operation} failed: HTTP ${status}${platformCode ? ` ${platformCode}` : ''} from ${method} ${url.split('?')[0]}${detail ? `: ${detail}` : ''}`,
        ),
        ...(platformCode ? { platformCode } : {}),
        ...(status === 401 ? { retryable: false } : {}),
      });
    }
    return res;
  }

  async #json(operation: string, res: Dispatcher.ResponseData): Promise<unknown> {
    const text = await res.body.text();
    try {
      return text === '' ? {} : JSON.parse(text);
    } catch {
      throw new SyncproxyError(`${operation} answered HTTP ${res.statusCode} with a body that is not JSON`, {
        code: 'protocol',
        retryable: false,
        platform: PLATFORM,
      });
    }
  }
}
