import {
  abortError,
  type ErrorCode,
  type Logger,
  type Redactor,
  SyncproxyError,
  toSyncproxyError,
} from '@syncproxy/core';
import { type Dispatcher, request } from 'undici';
import { loginScopeOf, type StorageConfig } from './config.js';
import { PLATFORM } from './hcs-client.js';

/** Dorado's `error.code` values the connector acts on (Huawei's CSI `storage/constants.go`). */
export const DORADO_ERROR = {
  UNAUTHORIZED: -401,
  OBJECT_NOT_EXIST: 1077948996,
  LUN_NOT_EXIST: 1077936859,
  HOST_NOT_EXIST: 1077937498,
  MAPPING_NOT_EXIST: 1077951819,
  SNAPSHOT_NOT_EXIST: 1077937880,
  LUNGROUP_NOT_EXIST: 1077948997,
  NAME_EXISTS: 1077948993,
  OBJECT_ALREADY_ASSOCIATED: 1077937882,
  SYSTEM_BUSY: 1077949006,
  LOGIN_FAILED: 1077987870,
} as const;

/** Object types of `ASSOCIATEOBJTYPE` and `PARENTTYPE`. */
export const DORADO_TYPE = {
  LUN: 11,
  HOSTGROUP: 14,
  HOST: 21,
  SNAPSHOT: 27,
  MAPPINGVIEW: 245,
  LUNGROUP: 256,
  /** UNCONFIRMED: the snapshot consistency group's object type as an association key. */
  SNAPSHOT_CONSISTENCY_GROUP: 57956,
} as const;

const NOT_FOUND = new Set<number>([
  DORADO_ERROR.OBJECT_NOT_EXIST,
  DORADO_ERROR.LUN_NOT_EXIST,
  DORADO_ERROR.HOST_NOT_EXIST,
  DORADO_ERROR.MAPPING_NOT_EXIST,
  DORADO_ERROR.SNAPSHOT_NOT_EXIST,
  DORADO_ERROR.LUNGROUP_NOT_EXIST,
]);

/** A Dorado answer whose `error.code` is not 0, as a typed error naming the call and the code. */
export class DoradoError extends SyncproxyError {
  readonly doradoCode: number;
  constructor(operation: string, doradoCode: number, description: string, storage: string) {
    const code: ErrorCode =
      doradoCode === DORADO_ERROR.UNAUTHORIZED || doradoCode === DORADO_ERROR.LOGIN_FAILED
        ? 'auth'
        : NOT_FOUND.has(doradoCode)
          ? 'not-found'
          : doradoCode === DORADO_ERROR.NAME_EXISTS || doradoCode === DORADO_ERROR.OBJECT_ALREADY_ASSOCIATED
            ? 'conflict'
            : doradoCode === DORADO_ERROR.SYSTEM_BUSY
              ? 'throttled'
              : 'platform';
    super(`Dorado ${storage}: ${operation} failed with error ${doradoCode}: ${description}`, {
      code,
      retryable: code === 'throttled',
      platform: PLATFORM,
      details: { operation, doradoCode, storage },
    });
    this.name = 'DoradoError';
    this.doradoCode = doradoCode;
  }
}

export interface DoradoLun {
  ID: string;
  NAME: string;
  WWN: string;
  /** Sectors of 512 bytes. */
  CAPACITY: string;
}
export interface DoradoSnapshot {
  ID: string;
  NAME: string;
  DESCRIPTION?: string;
  PARENTID: string;
  WWN: string;
  /** 43 active, 45 inactive (Dorado's running status). */
  RUNNINGSTATUS?: string;
  USERCAPACITY?: string;
  TIMESTAMP?: string;
}
export interface DoradoNamed {
  ID: string;
  NAME: string;
  DESCRIPTION?: string;
}
export interface DoradoSystem {
  ID: string;
  NAME?: string;
  PRODUCTMODE?: string;
  productModeString?: string;
  PRODUCTVERSION?: string;
}

export interface DoradoClientOptions {
  storage: StorageConfig;
  dispatcher: Dispatcher;
  redactor: Redactor;
  logger: Logger;
  httpTimeoutSec?: number;
  signal?: AbortSignal;
}

/** Objects listed per page (`range=[a-b]`, at most 100 a page). */
const PAGE = 100;

/**
 * One Dorado's DeviceManager REST API: a session (device id, iBaseToken,
 * cookie) taken at the first call and again when a call answers -401;
 * every answer is HTTP 200 with `{data, error: {code, description}}`, and a
 * non-zero code is a {@link DoradoError}.
 */
export class DoradoClient {
  readonly #options: DoradoClientOptions;
  #redactor: Redactor;
  #session: { deviceId: string; token: string; cookie: string | undefined } | undefined;
  #loggingIn: Promise<void> | undefined;
  #consistencyGroups: Promise<boolean> | undefined;

  constructor(options: DoradoClientOptions) {
    this.#options = options;
    this.#redactor = options.redactor;
  }

  get url(): string {
    return this.#options.storage.url.replace(/\/+$/, '');
  }

  get isLoggedIn(): boolean {
    return this.#session !== undefined;
  }

  async login(force = false): Promise<void> {
    if (!force && this.#session) return;
    this.#loggingIn ??= this.#login().finally(() => {
      this.#loggingIn = undefined;
    });
    await this.#loggingIn;
  }

  async #login(): Promise<void> {
    const { storage } = this.#options;
    let answer: { data: unknown; headers: Record<string, string | string[] | undefined> };
    try {
      answer = await this.#raw('Login', 'POST', `${this.url}/deviceManager/rest/xxxxx/sessions`, {
        username: storage.user,
        password: storage.password,
        scope: loginScopeOf(storage.userType),
        ...(storage.vstoreName ? { vstorename: storage.vstoreName } : {}),
      });
    } catch (error) {
      // Every refused login is a credentials problem (password, user type, a locked user): code auth.
      if (error instanceof DoradoError) {
        throw new SyncproxyError(
          `storages: Dorado ${this.url} refused the login of ${storage.user}: ${error.message}`,
          {
            code: 'auth',
            retryable: false,
            platform: PLATFORM,
            details: { field: 'storages', doradoCode: error.doradoCode },
          },
        );
      }
      throw error;
    }
    const { data, headers } = answer;
    const d = data as { deviceid?: string; iBaseToken?: string };
    if (!d?.deviceid || !d.iBaseToken) {
      throw new SyncproxyError(`Dorado ${this.url}: the login answered without deviceid or iBaseToken`, {
        code: 'protocol',
        platform: PLATFORM,
      });
    }
    const setCookie = headers['set-cookie'];
    const cookie = (Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : [])
      .map((c) => c.split(';')[0])
      .join('; ');
    this.#redactor = this.#redactor.with([d.iBaseToken, ...(cookie ? [cookie] : [])]);
    this.#session = { deviceId: d.deviceid, token: d.iBaseToken, cookie: cookie || undefined };
    this.#options.logger.debug({ storage: this.url }, 'hcs: Dorado session opened');
  }

  /** Ends the session (`DELETE /sessions`); nothing to do when none is open. */
  async logout(): Promise<void> {
    const session = this.#session;
    if (!session) return;
    this.#session = undefined;
    try {
      await this.#raw(
        'Logout',
        'DELETE',
        `${this.url}/deviceManager/rest/${session.deviceId}/sessions`,
        undefined,
        session,
      );
      this.#options.logger.debug({ storage: this.url }, 'hcs: Dorado session closed');
    } catch (error) {
      // An expired session is already gone; anything else is worth a line, not a failed close.
      if (!SyncproxyError.hasCode(error, 'auth'))
        this.#options.logger.warn(
          {
            storage: this.url,
            error: (error as Error).message,
          },
          'hcs: Dorado logout failed',
        );
    }
  }

  /** A call on the session; logs in first, and again once when the session expired (-401). */
  async call<T>(operation: string, method: string, path: string, body?: unknown): Promise<T> {
    await this.login();
    try {
      return (await this.#raw(operation, method, this.#resource(path), body, this.#session)).data as T;
    } catch (error) {
      if (!(error instanceof DoradoError) || error.doradoCode !== DORADO_ERROR.UNAUTHORIZED) throw error;
      this.#options.logger.debug({ operation }, 'hcs: Dorado session expired, logging in again');
      await this.login(true);
      return (await this.#raw(operation, method, this.#resource(path), body, this.#session)).data as T;
    }
  }

  #resource(path: string): string {
    return `${this.url}/deviceManager/rest/${this.#session!.deviceId}${path}`;
  }

  /** Every object of a list call, page by page. */
  async list<T>(operation: string, path: string): Promise<T[]> {
    const all: T[] = [];
    const sep = path.includes('?') ? '&' : '?';
    for (let from = 0; ; from += PAGE) {
      const page =
        (await this.call<T[] | undefined>(operation, 'GET', `${path}${sep}range=[${from}-${from + PAGE}]`)) ??
        [];
      all.push(...page);
      if (page.length < PAGE) return all;
    }
  }

  system(): Promise<DoradoSystem> {
    return this.call('GetSystem', 'GET', '/system/');
  }

  /**
   * The LUN with this WWN, else with this name. The answer is checked, not
   * trusted: an array that ignored the filter (or does not filter on WWN)
   * must not hand back another LUN, whose data would then be synced.
   */
  async findLun(by: { wwn?: string; name?: string }): Promise<DoradoLun | undefined> {
    if (by.wwn) {
      const wwn = by.wwn.toLowerCase().replace(/^(0x|naa\.)/, '');
      try {
        const luns = await this.list<DoradoLun>('QueryLun', `/lun?filter=WWN::${encodeURIComponent(by.wwn)}`);
        const hit = luns.find((l) => l.WWN?.toLowerCase() === wwn);
        if (hit) return hit;
      } catch (error) {
        // An array that refuses the WWN filter still finds the LUN by name below.
        if (!(error instanceof DoradoError) || error.code !== 'platform') throw error;
      }
    }
    if (by.name) {
      const luns = await this.list<DoradoLun>('QueryLun', `/lun?filter=NAME::${encodeURIComponent(by.name)}`);
      const hit = luns.find((l) => l.NAME === by.name);
      if (hit) return hit;
    }
    return undefined;
  }

  createSnapshot(input: { name: string; description: string; lunId: string }): Promise<DoradoSnapshot> {
    return this.call('CreateSnapshot', 'POST', '/snapshot', {
      NAME: input.name,
      DESCRIPTION: input.description,
      PARENTID: input.lunId,
      PARENTTYPE: DORADO_TYPE.LUN,
    });
  }

  /** Activates the snapshots in one call: their point in time is the same. */
  async activateSnapshots(ids: string[]): Promise<void> {
    await this.call('ActivateSnapshot', 'POST', '/snapshot/activate', { SNAPSHOTLIST: ids });
  }

  getSnapshot(id: string): Promise<DoradoSnapshot> {
    return this.call('GetSnapshot', 'GET', `/snapshot/${encodeURIComponent(id)}`);
  }

  listSnapshots(): Promise<DoradoSnapshot[]> {
    return this.list('QuerySnapshot', '/snapshot');
  }

  /** Stops (deactivates) then deletes a snapshot; one already gone counts as deleted. */
  async deleteSnapshot(id: string): Promise<void> {
    try {
      await this.call('StopSnapshot', 'PUT', '/snapshot/stop', { ID: id });
    } catch (error) {
      if (SyncproxyError.hasCode(error, 'not-found')) return;
      throw error;
    }
    await this.call('DeleteSnapshot', 'DELETE', `/snapshot/${encodeURIComponent(id)}`);
  }

  /**
   * Whether the array has snapshot consistency groups (`GET /SNAPSHOT_CONSISTENCY_GROUP`
   * answers code 0). Asked once per client.
   */
  hasConsistencyGroups(): Promise<boolean> {
    this.#consistencyGroups ??= this.call(
      'QuerySnapshotConsistencyGroup',
      'GET',
      '/SNAPSHOT_CONSISTENCY_GROUP?range=[0-1]',
    ).then(
      () => true,
      (error: unknown) => {
        if (error instanceof DoradoError && error.code === 'platform') return false;
        this.#consistencyGroups = undefined;
        throw error;
      },
    );
    return this.#consistencyGroups;
  }

  /**
   * A snapshot consistency group of these LUNs: a protection group holding
   * them, and the group made from it, whose member snapshots are created
   * with it. Returns the ids and each LUN's member snapshot. The caller
   * activates it, and removes both with {@link DoradoClient.deleteConsistencyGroup}.
   */
  async createConsistencyGroup(input: {
    name: string;
    description: string;
    lunIds: string[];
    created: { protectGroupId?: string; consistencyGroupId?: string };
  }): Promise<Map<string, DoradoSnapshot>> {
    const pg = await this.call<DoradoNamed>('CreateProtectGroup', 'POST', '/protectgroup', {
      NAME: `${input.name}-pg`.slice(0, 31),
      DESCRIPTION: input.description,
    });
    input.created.protectGroupId = pg.ID;
    for (const lunId of input.lunIds) {
      await this.call('AddLunToProtectGroup', 'POST', '/protectgroup/associate', {
        ID: pg.ID,
        ASSOCIATEOBJTYPE: DORADO_TYPE.LUN,
        ASSOCIATEOBJID: lunId,
      });
    }
    const cg = await this.call<DoradoNamed>(
      'CreateSnapshotConsistencyGroup',
      'POST',
      '/SNAPSHOT_CONSISTENCY_GROUP',
      {
        NAME: input.name,
        PARENTID: pg.ID,
        DESCRIPTION: input.description,
      },
    );
    input.created.consistencyGroupId = cg.ID;
    const members = await this.membersOfConsistencyGroup(cg.ID);
    return new Map(members.map((m) => [m.PARENTID, m]));
  }

  membersOfConsistencyGroup(id: string): Promise<DoradoSnapshot[]> {
    return this.list(
      'QuerySnapshotsOfConsistencyGroup',
      `/snapshot/associate?ASSOCIATEOBJTYPE=${DORADO_TYPE.SNAPSHOT_CONSISTENCY_GROUP}&ASSOCIATEOBJID=${id}`,
    );
  }

  async activateConsistencyGroup(id: string): Promise<void> {
    await this.call('ActivateSnapshotConsistencyGroup', 'POST', '/snapshot_consistency_group/activate', {
      ID: id,
    });
  }

  listConsistencyGroups(): Promise<Array<DoradoNamed & { PARENTID?: string }>> {
    return this.list('QuerySnapshotConsistencyGroup', '/SNAPSHOT_CONSISTENCY_GROUP');
  }

  /** Stops and deletes a consistency group (its member snapshots go with it), then empties and deletes its protection group. */
  async deleteConsistencyGroup(ids: {
    consistencyGroupId?: string;
    protectGroupId?: string;
    lunIds?: string[];
  }): Promise<void> {
    const tolerate = async (run: () => Promise<unknown>) => {
      try {
        await run();
      } catch (error) {
        if (!SyncproxyError.hasCode(error, 'not-found')) throw error;
      }
    };
    const cg = ids.consistencyGroupId;
    if (cg) {
      await tolerate(() =>
        this.call('StopSnapshotConsistencyGroup', 'PUT', '/snapshot_consistency_group/stop', { ID: cg }),
      );
      await tolerate(() =>
        this.call('DeleteSnapshotConsistencyGroup', 'DELETE', `/SNAPSHOT_CONSISTENCY_GROUP/${cg}`),
      );
    }
    const pg = ids.protectGroupId;
    if (pg) {
      for (const lunId of ids.lunIds ?? []) {
        await tolerate(() =>
          this.call(
            'RemoveLunFromProtectGroup',
            'DELETE',
            `/protectgroup/associate?ID=${pg}&ASSOCIATEOBJTYPE=${DORADO_TYPE.LUN}&ASSOCIATEOBJID=${lunId}`,
          ),
        );
      }
      await tolerate(() => this.call('DeleteProtectGroup', 'DELETE', `/protectgroup/${pg}`));
    }
  }

  async findByName(
    kind: 'host' | 'hostgroup' | 'lungroup' | 'mappingview',
    name: string,
  ): Promise<DoradoNamed | undefined> {
    const found = await this.list<DoradoNamed>(
      `Query ${kind}`,
      `/${kind}?filter=NAME::${encodeURIComponent(name)}`,
    );
    // Checked like a LUN: another host or group must never be taken for the proxy's.
    return found.find((o) => o.NAME === name);
  }

  listNamed(kind: 'lungroup' | 'mappingview'): Promise<DoradoNamed[]> {
    return this.list(`Query ${kind}`, `/${kind}`);
  }

  create(
    kind: 'host' | 'hostgroup' | 'lungroup' | 'mappingview',
    body: Record<string, unknown>,
  ): Promise<DoradoNamed> {
    return this.call(`Create ${kind}`, 'POST', `/${kind}`, body);
  }

  async remove(kind: 'lungroup' | 'mappingview', id: string): Promise<void> {
    await this.call(`Delete ${kind}`, 'DELETE', `/${kind}/${encodeURIComponent(id)}`);
  }

  /** Adds an initiator (iSCSI IQN) to the host, creating it first when the array does not know it. */
  async addInitiator(hostId: string, iqn: string): Promise<void> {
    const known = (
      await this.list<{ ID: string; PARENTID?: string }>(
        'QueryIscsiInitiator',
        `/iscsi_initiator?filter=ID::${encodeURIComponent(iqn)}`,
      )
    ).find((i) => i.ID === iqn);
    if (!known) await this.call('CreateIscsiInitiator', 'POST', '/iscsi_initiator', { ID: iqn });
    if (known?.PARENTID === hostId) return;
    await this.call('AddIscsiInitiatorToHost', 'PUT', `/iscsi_initiator/${encodeURIComponent(iqn)}`, {
      PARENTTYPE: DORADO_TYPE.HOST,
      PARENTID: hostId,
    });
  }

  async associateHost(hostGroupId: string, hostId: string): Promise<void> {
    await this.call('AddHostToHostGroup', 'POST', '/hostgroup/associate', {
      ID: hostGroupId,
      ASSOCIATEOBJTYPE: DORADO_TYPE.HOST,
      ASSOCIATEOBJID: hostId,
    });
  }

  async hostsOfGroup(hostGroupId: string): Promise<DoradoNamed[]> {
    return this.list(
      'QueryHostsOfHostGroup',
      `/host/associate?ASSOCIATEOBJTYPE=${DORADO_TYPE.HOSTGROUP}&ASSOCIATEOBJID=${hostGroupId}`,
    );
  }

  async addSnapshotToLunGroup(lunGroupId: string, snapshotId: string): Promise<void> {
    await this.call('AddSnapshotToLunGroup', 'POST', '/lungroup/associate', {
      ID: lunGroupId,
      ASSOCIATEOBJTYPE: DORADO_TYPE.SNAPSHOT,
      ASSOCIATEOBJID: snapshotId,
    });
  }

  async removeSnapshotFromLunGroup(lunGroupId: string, snapshotId: string): Promise<void> {
    await this.call(
      'RemoveSnapshotFromLunGroup',
      'DELETE',
      `/lungroup/associate?ID=${lunGroupId}&ASSOCIATEOBJTYPE=${DORADO_TYPE.SNAPSHOT}&ASSOCIATEOBJID=${snapshotId}`,
    );
  }

  snapshotsOfLunGroup(lunGroupId: string): Promise<DoradoSnapshot[]> {
    return this.list(
      'QuerySnapshotsOfLunGroup',
      `/snapshot/associate?ASSOCIATEOBJTYPE=${DORADO_TYPE.LUNGROUP}&ASSOCIATEOBJID=${lunGroupId}`,
    );
  }

  async associateMappingView(viewId: string, type: 14 | 256, objectId: string): Promise<void> {
    await this.call('CreateMappingViewAssociation', 'PUT', '/mappingview/create_associate', {
      ID: viewId,
      ASSOCIATEOBJTYPE: type,
      ASSOCIATEOBJID: objectId,
    });
  }

  async dissociateMappingView(viewId: string, type: 14 | 256, objectId: string): Promise<void> {
    await this.call('RemoveMappingViewAssociation', 'PUT', '/mappingview/remove_associate', {
      ID: viewId,
      ASSOCIATEOBJTYPE: type,
      ASSOCIATEOBJID: objectId,
    });
  }

  async #raw(
    operation: string,
    method: string,
    url: string,
    body: unknown,
    session?: { token: string; cookie: string | undefined },
  ): Promise<{ data: unknown; headers: Record<string, string | string[] | undefined> }> {
    const signal = this.#options.signal;
    if (signal?.aborted) throw abortError(signal, operation);
    const timeoutMs = (this.#options.httpTimeoutSec ?? 600) * 1000;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (session) {
      headers.iBaseToken = session.token;
      if (session.cookie) headers.cookie = session.cookie;
    }
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        method: method as Dispatcher.HttpMethod,
        headers,
        dispatcher: this.#options.dispatcher,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        ...(signal ? { signal } : {}),
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (error) {
      throw this.#redactor.error(
        toSyncproxyError(error, { operation: `Dorado ${operation}`, platform: PLATFORM }),
      );
    }
    const text = this.#redactor.text(await res.body.text().catch(() => ''));
    if (res.statusCode !== 200) {
      throw new SyncproxyError(
        `Dorado ${this.url}: ${operation} answered HTTP ${res.statusCode}${text ? `: ${text.slice(0, 200)}` : ''}`,
        {
          code: res.statusCode === 429 || res.statusCode === 503 ? 'throttled' : 'platform',
          retryable: res.statusCode >= 500 || res.statusCode === 429,
          platform: PLATFORM,
        },
      );
    }
    let json: { data?: unknown; error?: { code?: number | string; description?: string } };
    try {
      json = JSON.parse(text);
    } catch {
      throw new SyncproxyError(`Dorado ${this.url}: ${operation} answered a body that is not JSON`, {
        code: 'protocol',
        platform: PLATFORM,
      });
    }
    const code = Number(json.error?.code ?? Number.NaN);
    if (!Number.isFinite(code)) {
      throw new SyncproxyError(`Dorado ${this.url}: ${operation} answered without error.code`, {
        code: 'protocol',
        platform: PLATFORM,
      });
    }
    if (code !== 0)
      throw new DoradoError(operation, code, this.#redactor.text(json.error?.description ?? ''), this.url);
    return { data: json.data, headers: res.headers };
  }
}
