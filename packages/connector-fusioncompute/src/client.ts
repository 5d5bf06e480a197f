import { createHash } from 'node:crypto';
import {
  abortError,
  type Clock,
  codeForHttpStatus,
  isRetryableHttpStatus,
  type Logger,
  SyncproxyError,
  sleep,
  systemClock,
  toSyncproxyError,
} from '@syncproxy/core';
import { type Dispatcher, request } from 'undici';
import type { FusionComputeAdvanced } from './config.js';
import { classifyErrorCode, DEFAULT_ERROR_CODES, FcApiError, type FcErrorCodes } from './fc-api-error.js';

export const PLATFORM = 'fusioncompute';
const MAX_BODY_CHARS = 2048;

export interface FcSite {
  uri: string;
  urn: string;
  name: string;
  status?: string;
}

export interface FcHost {
  uri: string;
  urn: string;
  name: string;
  ip: string;
  status?: string;
}

/** One disk of `vmConfig.disks[]`. */
export interface FcVmDisk {
  volumeUrn: string;
  volumeUri: string;
  sequenceNum?: number;
  quantityGB: number;
  /** `true` for an independent disk (not in snapshots). */
  indepDisk?: boolean;
  persistentDisk?: boolean;
  /** `share` for a shared disk, `normal` otherwise. */
  volType?: string;
  storageType?: string;
  datastoreUrn?: string;
  isThin?: boolean;
}

export interface FcVm {
  uri: string;
  urn: string;
  name: string;
  /** `running`, `stopped`, `hibernated`, `starting`, `shutting-down`, `migrating`, `unknown`... */
  status: string;
  isTemplate?: boolean;
  isLinkClone?: boolean;
  hostUrn?: string;
  pvDriverStatus?: string;
  toolInstallStatus?: string;
  vmConfig?: { disks?: FcVmDisk[] };
}

/** One volume's part of a VM snapshot (eSDK `Volsnapshots`). */
export interface FcVolSnapshot {
  volumeUrn: string;
  volumeUri: string;
  snapUuid: string;
  chgID?: string;
  volCBTCreateTime?: string;
}

export interface FcSnapshot {
  urn: string;
  uri: string;
  name: string;
  description?: string;
  createTime?: string;
  type?: string;
  status?: string;
  volsnapshots?: FcVolSnapshot[];
  childSnapshots?: FcSnapshot[];
}

/** An asynchronous operation's answer (eSDK `VRMTask`). */
export interface FcTaskRef {
  urn?: string;
  uri?: string;
  taskUrn: string;
  taskUri: string;
}

/** eSDK `TaskInfo`. */
export interface FcTask {
  urn?: string;
  uri?: string;
  status: 'waiting' | 'running' | 'success' | 'failed' | 'cancelling' | string;
  progress?: number;
  reason?: string;
  reasonDes?: string;
}

export interface FcCbtPage {
  sectorOfBlock: number;
  bitNum: number;
  bit1Num: number;
  bitMap: string;
}

export interface FcBackupResource {
  urn?: string;
  uri?: string;
  resourceUrl: string;
  hostIP: string;
  hostPort: number;
  targetFile?: string;
  token: string;
  status: string;
  reason?: string;
  reasonDes?: string;
  runningTime?: number;
  caCert?: string;
  taskUri?: string;
  taskUrn?: string;
  /** Seconds the resource lives (the `delay` asked for, possibly extended). */
  delay?: number;
}

export interface FcClientOptions {
  /** `https://<VRM>:7443`. */
  baseUrl: string;
  user: string;
  password: string;
  userType: string;
  advanced: FusionComputeAdvanced;
  dispatcher: Dispatcher;
  logger?: Logger;
  clock?: Clock;
  /** Wait between task polls, ms. Default 1000. */
  taskPollMs?: number;
  /** Items per page of VM and volume lists (`limit`). Default 100. */
  pageSize?: number;
  errorCodes?: FcErrorCodes;
}

interface SendOptions {
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  signal?: AbortSignal | undefined;
  /** Needs the session token (all but login and version discovery). Default true. */
  session?: boolean;
  /** Send the versioned Accept header. Default true. */
  versioned?: boolean;
  headers?: Record<string, string>;
}

interface Answer<T> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
}

/**
 * A thin FusionCompute REST client on undici: header login
 * (`X-Auth-User`, `X-Auth-Key`, `X-Auth-UserType`, `X-Auth-AuthType`), the
 * token replayed in `X-Auth-Token`, the versioned `Accept`, and
 * `{errorCode, errorDes}` answers mapped to {@link FcApiError}s with the code
 * kept. A call refused with 401 (the token expired) logs in again once.
 */
export class FusionComputeClient {
  readonly baseUrl: string;
  readonly #user: string;
  readonly #password: string;
  readonly #userType: string;
  readonly #advanced: FusionComputeAdvanced;
  readonly #dispatcher: Dispatcher;
  readonly #logger: Logger | undefined;
  readonly #clock: Clock;
  readonly #taskPollMs: number;
  readonly #pageSize: number;
  readonly errorCodes: FcErrorCodes;
  #token: string | undefined;
  #version: string | undefined;
  #login: Promise<void> | undefined;
  #logins = 0;

  constructor(options: FcClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#user = options.user;
    this.#password = options.password;
    this.#userType = options.userType;
    this.#advanced = options.advanced;
    this.#dispatcher = options.dispatcher;
    this.#logger = options.logger;
    this.#clock = options.clock ?? systemClock;
    this.#taskPollMs = options.taskPollMs ?? 1000;
    this.#pageSize = options.pageSize ?? 100;
    this.errorCodes = options.errorCodes ?? DEFAULT_ERROR_CODES;
    this.#version = options.advanced.apiVersion;
  }

  /** The REST version in use (`8.1`...). */
  get apiVersion(): string | undefined {
    return this.#version;
  }

  /** Logins so far: the first, and one per expired token. */
  get logins(): number {
    return this.#logins;
  }

  /** `GET /service/versions` (no version in Accept), then the header login. */
  async connect(signal?: AbortSignal): Promise<void> {
    if (this.#version === undefined) this.#version = await this.discoverVersion(signal);
    await this.#relogin(signal);
  }

  /** The newest version `/service/versions` lists. */
  async discoverVersion(signal?: AbortSignal): Promise<string> {
    const { body } = await this.#send<{ versions?: Array<{ version?: string }> }>(
      'GET',
      '/service/versions',
      'GetVersions',
      { signal, session: false, versioned: false },
    );
    const versions = (body.versions ?? [])
      .map((v) => v.version)
      .filter((v): v is string => typeof v === 'string' && /^\d+(\.\d+)*$/.test(v));
    if (versions.length === 0) throw protocolError('GET /service/versions listed no version');
    return versions.sort(compareVersions).at(-1)!;
  }

  /** `DELETE /service/session`; the token is forgotten even when the VRM does not answer. */
  async logout(): Promise<void> {
    if (this.#token === undefined) return;
    try {
      await this.#send('DELETE', '/service/session', 'Logout', { session: true });
    } finally {
      this.#token = undefined;
    }
  }

  async sites(signal?: AbortSignal): Promise<FcSite[]> {
    const { body } = await this.#call<{ sites?: FcSite[] }>('GET', '/service/sites', 'ListSites', { signal });
    return body.sites ?? [];
  }

  async hosts(siteUri: string, signal?: AbortSignal): Promise<FcHost[]> {
    return this.#paged<FcHost>(`${siteUri}/hosts`, 'hosts', 'ListHosts', {}, signal);
  }

  /** Every VM of a site (templates included: the caller decides), paged with `limit`/`offset`. */
  async vms(siteUri: string, signal?: AbortSignal): Promise<FcVm[]> {
    return this.#paged<FcVm>(`${siteUri}/vms`, 'vms', 'ListVms', { detail: 2 }, signal);
  }

  async vm(vmUri: string, signal?: AbortSignal): Promise<FcVm> {
    return (await this.#call<FcVm>('GET', vmUri, 'GetVm', { signal })).body;
  }

  async snapshots(vmUri: string, signal?: AbortSignal): Promise<FcSnapshot[]> {
    const { body } = await this.#call<{ rootSnapshots?: FcSnapshot[] }>(
      'GET',
      `${vmUri}/snapshots`,
      'ListSnapshots',
      { signal },
    );
    const out: FcSnapshot[] = [];
    const walk = (list: FcSnapshot[] | undefined): void => {
      for (const s of list ?? []) {
        out.push(s);
        walk(s.childSnapshots);
      }
    };
    walk(body.rootSnapshots);
    return out;
  }

  async snapshot(snapshotUri: string, signal?: AbortSignal): Promise<FcSnapshot> {
    return (
      await this.#call<FcSnapshot>('GET', snapshotUri, 'GetSnapshot', {
        signal,
        query: { refreshflag: 'true' },
      })
    ).body;
  }

  /**
   * `POST <vmUri>/snapshots`, type `CBTbackup`: the task, and the new
   * snapshot's uri before the task ends (so a failed task's snapshot can be removed).
   */
  async createSnapshot(
    vmUri: string,
    input: { name: string; description: string },
    signal?: AbortSignal,
  ): Promise<FcTaskRef & { uri: string }> {
    const { body } = await this.#call<FcTaskRef>('POST', `${vmUri}/snapshots`, 'CreateSnapshot', {
      signal,
      body: {
        name: input.name,
        description: input.description,
        type: 'CBTbackup',
        needMemoryShot: false,
        isConsistent: false,
      },
    });
    if (body.uri === undefined || body.taskUri === undefined)
      throw protocolError('CreateSnapshot answered without the snapshot uri and its task');
    return body as FcTaskRef & { uri: string };
  }

  async deleteSnapshot(snapshotUri: string, signal?: AbortSignal): Promise<void> {
    const { body } = await this.#call<FcTaskRef | undefined>('DELETE', snapshotUri, 'DeleteSnapshot', {
      signal,
    });
    if (body?.taskUri) await this.waitForTask(body, 'DeleteSnapshot', undefined, signal);
  }

  /** One `getcbt` page. */
  async getCbt(
    volumeUri: string,
    input: {
      snapUuid: string;
      volCBTCreateTime?: string;
      chgID?: string;
      startBlock: number;
      blockNum: number;
    },
    signal?: AbortSignal,
  ): Promise<FcCbtPage> {
    const { body } = await this.#call<FcCbtPage>('POST', `${volumeUri}/getcbt`, 'GetCbt', {
      signal,
      body: {
        type: 'DiffBitmapAndBit1Num',
        snapUuid: input.snapUuid,
        ...(input.volCBTCreateTime ? { volCBTCreateTime: input.volCBTCreateTime } : {}),
        ...(input.chgID ? { chgID: input.chgID } : {}),
        startBlock: input.startBlock,
        blockNum: input.blockNum,
      },
    });
    for (const key of ['sectorOfBlock', 'bitNum', 'bit1Num'] as const) {
      if (!Number.isSafeInteger(body[key]) || body[key] < 0)
        throw protocolError(`getcbt answered ${key}=${JSON.stringify(body[key])}, not a count`);
    }
    if (typeof body.bitMap !== 'string') throw protocolError('getcbt answered without a bitMap string');
    return body;
  }

  /** `POST <volumeUri>/backupresources`, waited for, then the resource it made. */
  async createBackupResource(
    volumeUri: string,
    input: { ip: string; snapUrn2: string; snapUrn1?: string; delaySec: number; description?: string },
    signal?: AbortSignal,
  ): Promise<{ id: string; resource: FcBackupResource }> {
    const { body } = await this.#call<FcTaskRef>(
      'POST',
      `${volumeUri}/backupresources`,
      'CreateBackupResource',
      {
        signal,
        body: {
          taskType: 'CBTBackup',
          ip: input.ip,
          ...(input.snapUrn1 ? { snapUrn1: input.snapUrn1 } : {}),
          snapUrn2: input.snapUrn2,
          transMode: this.#advanced.transMode,
          delay: input.delaySec,
          ...(input.description ? { description: input.description } : {}),
        },
      },
    );
    const id = body.taskUrn.split(':').at(-1)!;
    try {
      await this.waitForTask(body, 'CreateBackupResource', undefined, signal);
      return { id, resource: await this.backupResource(volumeUri, id, signal) };
    } catch (error) {
      // A resource whose task failed half-way still holds a slot on the host: give it back.
      await this.deleteBackupResource(volumeUri, id).catch(() => {});
      throw error;
    }
  }

  async backupResource(volumeUri: string, id: string, signal?: AbortSignal): Promise<FcBackupResource> {
    return (
      await this.#call<FcBackupResource>('GET', `${volumeUri}/backupresources/${id}`, 'GetBackupResource', {
        signal,
      })
    ).body;
  }

  /** Every backup resource of a volume (for `sweep`). */
  async backupResources(
    volumeUri: string,
    signal?: AbortSignal,
  ): Promise<Array<FcBackupResource & { id: string; description?: string; createTime?: string }>> {
    const { body } = await this.#call<{
      backupResources?: Array<FcBackupResource & { id: string; description?: string; createTime?: string }>;
    }>('GET', `${volumeUri}/backupresources`, 'ListBackupResources', { signal });
    return body.backupResources ?? [];
  }

  /** `PUT` a new `delay`: the resource lives `delaySec` more seconds (7200 s in all at most). */
  async extendBackupResource(
    volumeUri: string,
    id: string,
    delaySec: number,
    signal?: AbortSignal,
  ): Promise<void> {
    await this.#call('PUT', `${volumeUri}/backupresources/${id}`, 'ExtendBackupResource', {
      signal,
      body: { delay: delaySec },
    });
  }

  async deleteBackupResource(volumeUri: string, id: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.#call('DELETE', `${volumeUri}/backupresources/${id}`, 'DeleteBackupResource', { signal });
    } catch (error) {
      if (SyncproxyError.hasCode(error, 'not-found')) return;
      throw error;
    }
  }

  /** Polls `GET <taskUri>` until success, reporting progress; a failed task becomes its error. */
  async waitForTask(
    task: FcTaskRef,
    operation: string,
    onProgress?: (percent: number) => void,
    signal?: AbortSignal,
  ): Promise<FcTask> {
    while (true) {
      const { body } = await this.#call<FcTask>('GET', task.taskUri, `${operation} task`, { signal });
      if (typeof body.progress === 'number') onProgress?.(body.progress);
      if (body.status === 'success') return body;
      if (body.status === 'failed' || body.status === 'cancelling' || body.status === 'cancelled') {
        const kind = classifyErrorCode(this.errorCodes, body.reason);
        throw new FcApiError({
          operation,
          method: 'GET',
          url: this.baseUrl + task.taskUri,
          status: 200,
          ...(body.reason ? { errorCode: body.reason } : {}),
          ...(body.reasonDes ? { errorDes: body.reasonDes } : {}),
          code: kind?.code ?? 'platform',
          retryable: kind?.retryable ?? false,
          platform: PLATFORM,
          message: `${operation} failed: task ${task.taskUrn} ended ${body.status}${body.reason ? ` with ${body.reason}` : ''}${body.reasonDes ? `: ${body.reasonDes}` : ''}${kind?.hint ? ` (${kind.hint})` : ''}`,
        });
      }
      if (body.status !== 'waiting' && body.status !== 'running')
        throw protocolError(
          `${operation}: task ${task.taskUrn} is in unknown state ${JSON.stringify(body.status)}`,
        );
      await sleep(this.#clock, this.#taskPollMs, signal, `${operation} task wait`);
    }
  }

  async #paged<T>(
    path: string,
    key: string,
    operation: string,
    query: Record<string, string | number>,
    signal?: AbortSignal,
  ): Promise<T[]> {
    const out: T[] = [];
    for (let offset = 0; ; ) {
      const { body } = await this.#call<Record<string, unknown>>('GET', path, operation, {
        signal,
        query: { ...query, limit: this.#pageSize, offset },
      });
      const items = (body[key] as T[] | undefined) ?? [];
      out.push(...items);
      offset += items.length;
      const total = typeof body.total === 'number' ? body.total : undefined;
      if (items.length === 0 || (total !== undefined ? offset >= total : items.length < this.#pageSize))
        return out;
    }
  }

  async #relogin(signal?: AbortSignal): Promise<void> {
    this.#login ??= (async () => {
      this.#token = undefined;
      const headers: Record<string, string> = {
        'X-Auth-User': this.#user,
        'X-Auth-Key':
          this.#advanced.keyEncoding === 'sha256-hex'
            ? createHash('sha256').update(this.#password, 'utf8').digest('hex')
            : this.#password,
        'X-Auth-UserType': this.#userType,
        'X-Auth-AuthType': this.#advanced.authType,
      };
      if (this.#advanced.algorithmHeader !== 'none')
        headers[this.#advanced.algorithmHeader] = this.#advanced.keyEncoding === 'plain' ? '1' : '0';
      const answer = await this.#send('POST', '/service/session', 'Login', {
        signal,
        session: false,
        headers,
      });
      const token = answer.headers['x-auth-token'];
      if (typeof token !== 'string' || token === '')
        throw protocolError('Login succeeded but the VRM sent no X-Auth-Token header');
      this.#token = token;
      this.#logins++;
    })().finally(() => {
      this.#login = undefined;
    });
    return this.#login;
  }

  async #call<T>(method: string, path: string, operation: string, options: SendOptions): Promise<Answer<T>> {
    if (this.#token === undefined) await this.#relogin(options.signal);
    try {
      return await this.#send<T>(method, path, operation, options);
    } catch (error) {
      if (!FcApiError.isInstance(error) || error.status !== 401) throw error;
      // The token expired (the VRM drops idle sessions): log in again, once.
      this.#logger?.info({ operation }, 'FusionCompute token expired; logging in again');
      await this.#relogin(options.signal);
      return this.#send<T>(method, path, operation, options);
    }
  }

  async #send<T>(method: string, path: string, operation: string, options: SendOptions): Promise<Answer<T>> {
    const { signal } = options;
    if (signal?.aborted) throw abortError(signal, operation);
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(options.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = {
      accept:
        options.versioned === false || this.#version === undefined
          ? 'application/json;charset=UTF-8'
          : `application/json;version=${this.#version};charset=UTF-8`,
      ...options.headers,
    };
    if (options.session !== false && this.#token !== undefined) headers['X-Auth-Token'] = this.#token;
    if (options.body !== undefined) headers['content-type'] = 'application/json;charset=UTF-8';
    let status: number;
    let text: string;
    let responseHeaders: Record<string, string | string[] | undefined>;
    try {
      const response = await request(url, {
        method: method as Dispatcher.HttpMethod,
        headers,
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
        dispatcher: this.#dispatcher,
        ...(signal ? { signal } : {}),
      });
      status = response.statusCode;
      responseHeaders = response.headers;
      text = await response.body.text();
    } catch (error) {
      if (signal?.aborted) throw abortError(signal, operation);
      throw toSyncproxyError(error, { operation, platform: PLATFORM });
    }
    const body = parseJson(text);
    if (status >= 200 && status < 300) return { status, headers: responseHeaders, body: body as T };
    const errorCode = typeof body?.errorCode === 'string' ? body.errorCode : undefined;
    const errorDes = typeof body?.errorDes === 'string' ? body.errorDes : undefined;
    const kind = classifyErrorCode(this.errorCodes, errorCode);
    const code = kind?.code ?? codeForHttpStatus(status);
    throw new FcApiError({
      operation,
      method,
      url: url.toString(),
      status,
      body: text.slice(0, MAX_BODY_CHARS),
      ...(errorCode ? { errorCode } : {}),
      ...(errorDes ? { errorDes } : {}),
      code,
      retryable: kind?.retryable ?? isRetryableHttpStatus(status),
      platform: PLATFORM,
      message: `${operation} failed: HTTP ${status}${errorCode ? ` ${errorCode}` : ''}${errorDes ? `: ${errorDes}` : ''} from ${method} ${url.pathname}${kind?.hint ? ` (${kind.hint})` : ''}`,
    });
  }
}

function parseJson(text: string): Record<string, unknown> | undefined {
  if (text === '') return undefined;
  try {
    const value = JSON.parse(text) as unknown;
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function protocolError(message: string): SyncproxyError {
  return new SyncproxyError(message, { code: 'protocol', retryable: false, platform: PLATFORM });
}
