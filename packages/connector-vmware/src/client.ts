import {
  abortError,
  codeForHttpStatus,
  isRetryableHttpStatus,
  type Logger,
  SyncproxyError,
  toSyncproxyError,
} from '@syncproxy/core';
import { type Dispatcher, request } from 'undici';
import { classifyFault, VimApiError } from './soap/vim-api-error.js';
import {
  child,
  list,
  MoRef,
  parseXml,
  readMoRef,
  requestEnvelope,
  text,
  type XmlNode,
  type XmlValue,
  xsiType,
} from './soap/xml.js';

const PLATFORM = 'vmware';
/** govmomi `SessionCookieName`. */
export const SESSION_COOKIE = 'vmware_soap_session';
/** The vim25 version spoken before the server says its own (`about.apiVersion`). */
const DEFAULT_API_VERSION = '8.0.2.0';
const MAX_BODY_CHARS = 2048;

export interface VimClientOptions {
  /** `https://<vCenter or ESXi>[:port]`; `/sdk` is appended. */
  url: string;
  user: string;
  password: string;
  dispatcher: Dispatcher;
  logger?: Logger;
  /** Wait between task polls, ms. Default 1000. */
  taskPollMs?: number;
  /** Objects per RetrievePropertiesEx page (`maxObjects`). Default 100. */
  maxObjectsPerPage?: number;
}

export interface ServiceContent {
  rootFolder: MoRef;
  propertyCollector: MoRef;
  viewManager: MoRef;
  sessionManager: MoRef;
  about: { fullName: string; apiVersion: string; apiType: string };
}

/** One object of a RetrievePropertiesEx answer: its moref and its properties by path. */
export interface ObjectProperties {
  obj: MoRef;
  props: Map<string, XmlNode>;
}

/** One reply of QueryChangedDiskAreas (`DiskChangeInfo`), bytes. */
export interface DiskChangeInfo {
  startOffset: number;
  length: number;
  areas: Array<{ start: number; length: number }>;
}

interface InvokeOptions {
  signal?: AbortSignal | undefined;
  /** The call needs a logged-in session (all but RetrieveServiceContent and Login). */
  session?: boolean;
}

/**
 * A thin vim25 SOAP client on undici: one POST to `/sdk` per call, the
 * `vmware_soap_session` cookie replayed, SOAP faults mapped to
 * {@link VimApiError}s. A call refused with NotAuthenticated (the session
 * expired) logs in again once and is sent again.
 */
export class VimClient {
  readonly endpoint: string;
  readonly #user: string;
  readonly #password: string;
  readonly #dispatcher: Dispatcher;
  readonly #logger: Logger | undefined;
  readonly #taskPollMs: number;
  readonly #pageSize: number;
  #apiVersion = DEFAULT_API_VERSION;
  #cookie: string | undefined;
  #content: ServiceContent | undefined;
  #login: Promise<void> | undefined;
  #logins = 0;

  constructor(options: VimClientOptions) {
    this.endpoint = `${options.url.replace(/\/+$/, '').replace(/\/sdk$/, '')}/sdk`;
    this.#user = options.user;
    this.#password = options.password;
    this.#dispatcher = options.dispatcher;
    this.#logger = options.logger;
    this.#taskPollMs = options.taskPollMs ?? 1000;
    this.#pageSize = options.maxObjectsPerPage ?? 100;
  }

  /** The session cookie value (a secret: nbdkit's vddk plugin can take it as `cookie=`). */
  get sessionCookie(): string | undefined {
    return this.#cookie;
  }

  /** Logins so far (the first, and one per expired session). */
  get logins(): number {
    return this.#logins;
  }

  get content(): ServiceContent {
    if (this.#content === undefined) {
      throw new SyncproxyError('the vim25 client is not connected (call connect() first)', {
        code: 'internal',
        retryable: false,
      });
    }
    return this.#content;
  }

  /** RetrieveServiceContent, then Login. */
  async connect(signal?: AbortSignal): Promise<ServiceContent> {
    const node = await this.#invoke(
      'RetrieveServiceContent',
      new MoRef('ServiceInstance', 'ServiceInstance'),
      {},
      {
        signal,
        session: false,
      },
    );
    const about = child(node, 'about');
    const content: ServiceContent = {
      rootFolder: requireMoRef(child(node, 'rootFolder'), 'rootFolder'),
      propertyCollector: requireMoRef(child(node, 'propertyCollector'), 'propertyCollector'),
      viewManager: requireMoRef(child(node, 'viewManager'), 'viewManager'),
      sessionManager: requireMoRef(child(node, 'sessionManager'), 'sessionManager'),
      about: {
        fullName: text(child(about, 'fullName')) ?? 'VMware vSphere',
        apiVersion: text(child(about, 'apiVersion')) ?? DEFAULT_API_VERSION,
        apiType: text(child(about, 'apiType')) ?? 'VirtualCenter',
      },
    };
    this.#content = content;
    this.#apiVersion = content.about.apiVersion;
    await this.#relogin(signal);
    return content;
  }

  async logout(): Promise<void> {
    if (this.#cookie === undefined || this.#content === undefined) return;
    try {
      await this.#invoke('Logout', this.#content.sessionManager, {}, { session: false });
    } finally {
      this.#cookie = undefined;
    }
  }

  /** Every object and property a RetrievePropertiesEx spec selects, following `token` pages. */
  async retrieveProperties(specSet: XmlValue, signal?: AbortSignal): Promise<ObjectProperties[]> {
    try {
      return await this.#retrieveAll(specSet, signal);
    } catch (error) {
      // NotAuthenticated inside missingSet: the session lapsed during the retrieval (the call itself
      // was accepted). Log in again once and start over; a second refusal is the caller's auth error.
      if (!VimApiError.isInstance(error) || error.faultType !== 'NotAuthenticated') throw error;
      if (error.details?.property === undefined) throw error;
      this.#logger?.info(
        {
          property: error.details.property,
        },
        'vSphere session refused a property; logging in again',
      );
      await this.#relogin(signal);
      return this.#retrieveAll(specSet, signal);
    }
  }

  async #retrieveAll(specSet: XmlValue, signal?: AbortSignal): Promise<ObjectProperties[]> {
    const collector = this.content.propertyCollector;
    const out: ObjectProperties[] = [];
    let result = await this.#invoke(
      'RetrievePropertiesEx',
      collector,
      { specSet, options: { maxObjects: this.#pageSize } },
      { signal },
    );
    while (true) {
      for (const content of list(child(result, 'objects')))
        out.push(readObjectContent(content, this.endpoint));
      const token = text(child(result, 'token'));
      if (token === undefined || token === '') return out;
      result = await this.#invoke('ContinueRetrievePropertiesEx', collector, { token }, { signal });
    }
  }

  /** The properties `paths` of one object. A deleted object rejects with `not-found`. */
  async properties(obj: MoRef, paths: string[], signal?: AbortSignal): Promise<Map<string, XmlNode>> {
    const objects = await this.retrieveProperties(
      { propSet: { type: obj.type, pathSet: paths }, objectSet: { obj, skip: false } },
      signal,
    );
    return objects[0]?.props ?? new Map();
  }

  /** The properties `paths` of every object of `type` under the root folder, through a ContainerView. */
  async objectsOfType(type: string, paths: string[], signal?: AbortSignal): Promise<ObjectProperties[]> {
    const view = requireMoRef(
      await this.#invoke(
        'CreateContainerView',
        this.content.viewManager,
        { container: this.content.rootFolder, type: [type], recursive: true },
        { signal },
      ),
      'CreateContainerView returnval',
    );
    try {
      return await this.retrieveProperties(
        {
          propSet: { type, pathSet: paths },
          objectSet: {
            obj: view,
            skip: true,
            selectSet: {
              $type: 'TraversalSpec',
              name: 'view',
              type: 'ContainerView',
              path: 'view',
              skip: false,
            },
          },
        },
        signal,
      );
    } finally {
      await this.#invoke('DestroyView', view, {}, {}).catch((error: unknown) =>
        this.#logger?.debug({ error: (error as Error)?.message }, 'DestroyView failed'),
      );
    }
  }

  async enableChangeTracking(vm: MoRef, signal?: AbortSignal): Promise<void> {
    const task = await this.#invoke(
      'ReconfigVM_Task',
      vm,
      { spec: { $type: 'VirtualMachineConfigSpec', changeTrackingEnabled: true } },
      { signal },
    );
    await this.waitForTask(requireMoRef(task, 'ReconfigVM_Task returnval'), 'ReconfigVM_Task', signal);
  }

  /** CreateSnapshot_Task, waited for: the new snapshot's moref. */
  async createSnapshot(
    vm: MoRef,
    input: { name: string; description: string; quiesce: boolean },
    signal?: AbortSignal,
  ): Promise<MoRef> {
    const task = await this.#invoke(
      'CreateSnapshot_Task',
      vm,
      { name: input.name, description: input.description, memory: false, quiesce: input.quiesce },
      { signal },
    );
    const result = await this.waitForTask(
      requireMoRef(task, 'CreateSnapshot_Task returnval'),
      'CreateSnapshot_Task',
      signal,
    );
    return requireMoRef(result, 'CreateSnapshot_Task result');
  }

  async removeSnapshot(snapshot: MoRef, signal?: AbortSignal): Promise<void> {
    const task = await this.#invoke(
      'RemoveSnapshot_Task',
      snapshot,
      { removeChildren: false, consolidate: true },
      { signal },
    );
    await this.waitForTask(
      requireMoRef(task, 'RemoveSnapshot_Task returnval'),
      'RemoveSnapshot_Task',
      signal,
    );
  }

  /** Polls `info` of a task until success (its `result`) or error (its fault, mapped). */
  async waitForTask(task: MoRef, operation: string, signal?: AbortSignal): Promise<XmlNode | undefined> {
    while (true) {
      const info = (await this.properties(task, ['info'], signal)).get('info');
      const state = text(child(info, 'state'));
      if (state === 'success') return child(info, 'result') as XmlNode | undefined;
      if (state === 'error') {
        const fault = child(info, 'error');
        const faultType = xsiType(child(fault, 'fault')) ?? 'SystemError';
        const message = text(child(fault, 'localizedMessage')) ?? faultType;
        throw this.#faultError(operation, 500, faultType, message);
      }
      if (state !== 'queued' && state !== 'running') {
        throw protocolError(`${operation}: task ${task.value} is in unknown state ${JSON.stringify(state)}`);
      }
      await delay(this.#taskPollMs, signal);
    }
  }

  /** One QueryChangedDiskAreas call: the changed areas in the window starting at `startOffset`. */
  async queryChangedDiskAreas(
    input: { vm: MoRef; snapshot: MoRef; deviceKey: number; startOffset: number; changeId: string },
    signal?: AbortSignal,
  ): Promise<DiskChangeInfo> {
    const node = await this.#invoke(
      'QueryChangedDiskAreas',
      input.vm,
      {
        snapshot: input.snapshot,
        deviceKey: input.deviceKey,
        startOffset: input.startOffset,
        changeId: input.changeId,
      },
      { signal },
    );
    return {
      startOffset: readCount(child(node, 'startOffset'), 'DiskChangeInfo.startOffset'),
      length: readCount(child(node, 'length'), 'DiskChangeInfo.length'),
      areas: list(child(node, 'changedArea')).map((area) => ({
        start: readCount(child(area, 'start'), 'DiskChangeExtent.start'),
        length: readCount(child(area, 'length'), 'DiskChangeExtent.length'),
      })),
    };
  }

  async #relogin(signal?: AbortSignal): Promise<void> {
    this.#login ??= (async () => {
      this.#cookie = undefined;
      await this.#invoke(
        'Login',
        this.content.sessionManager,
        { userName: this.#user, password: this.#password },
        { signal, session: false },
      );
      if (this.#cookie === undefined) {
        throw protocolError(`Login succeeded but set no ${SESSION_COOKIE} cookie`);
      }
      this.#logins++;
    })().finally(() => {
      this.#login = undefined;
    });
    return this.#login;
  }

  async #invoke(
    operation: string,
    self: MoRef,
    args: Record<string, XmlValue>,
    options: InvokeOptions,
  ): Promise<XmlNode | undefined> {
    const needsSession = options.session ?? true;
    try {
      return await this.#send(operation, self, args, options.signal);
    } catch (error) {
      if (!needsSession || !VimApiError.isInstance(error) || error.faultType !== 'NotAuthenticated')
        throw error;
      // The session expired (vCenter drops idle sessions after 30 min by default): log in again, once.
      this.#logger?.info({ operation }, 'vSphere session expired; logging in again');
      await this.#relogin(options.signal);
      return this.#send(operation, self, args, options.signal);
    }
  }

  async #send(
    operation: string,
    self: MoRef,
    args: Record<string, XmlValue>,
    signal: AbortSignal | undefined,
  ): Promise<XmlNode | undefined> {
    if (signal?.aborted) throw abortError(signal, operation);
    const headers: Record<string, string> = {
      'content-type': 'text/xml; charset="utf-8"',
      soapaction: `urn:vim25/${this.#apiVersion}`,
    };
    if (this.#cookie !== undefined) headers.cookie = this.#cookie;
    let status: number;
    let body: string;
    let setCookie: string | string[] | undefined;
    try {
      const response = await request(this.endpoint, {
        method: 'POST',
        headers,
        body: requestEnvelope(operation, self, args),
        dispatcher: this.#dispatcher,
        ...(signal ? { signal } : {}),
      });
      status = response.statusCode;
      setCookie = response.headers['set-cookie'];
      body = await response.body.text();
    } catch (error) {
      if (signal?.aborted) throw abortError(signal, operation);
      throw toSyncproxyError(error, { operation, platform: PLATFORM });
    }
    const cookie = sessionCookieOf(setCookie);
    if (cookie !== undefined) this.#cookie = cookie;
    const envelope = status === 200 || status === 500 ? safeParse(body) : undefined;
    const soapBody = child(envelope?.Envelope, 'Body');
    const fault = child(soapBody, 'Fault');
    if (fault !== undefined) {
      const detail = child(fault, 'detail');
      const first =
        detail !== undefined && typeof detail === 'object' && !Array.isArray(detail)
          ? Object.entries(detail).find(([key]) => !key.startsWith('@_') && key !== '#text')
          : undefined;
      const faultType = xsiType(first?.[1]) ?? first?.[0].replace(/Fault$/, '') ?? 'SystemError';
      throw this.#faultError(operation, status, faultType, text(child(fault, 'faultstring')) ?? faultType);
    }
    if (status !== 200 || soapBody === undefined) {
      const code = status === 200 ? 'protocol' : codeForHttpStatus(status);
      throw new VimApiError({
        operation,
        method: 'POST',
        url: this.endpoint,
        status,
        body: body.slice(0, MAX_BODY_CHARS),
        code,
        retryable: status !== 200 && isRetryableHttpStatus(status),
        platform: PLATFORM,
        message:
          status === 200
            ? `${operation} failed: the answer from ${this.endpoint} is not a SOAP envelope`
            : `${operation} failed: HTTP ${status} from POST ${this.endpoint}${status === 429 || status === 503 ? ' (vCenter is throttling or overloaded; retry later)' : ''}`,
      });
    }
    return child(child(soapBody, `${operation}Response`), 'returnval') as XmlNode | undefined;
  }

  #faultError(operation: string, status: number, faultType: string, message: string): VimApiError {
    const kind = classifyFault(faultType, operation);
    return new VimApiError({
      operation,
      method: 'POST',
      url: this.endpoint,
      status,
      platformCode: faultType,
      faultType,
      code: kind.code,
      retryable: kind.retryable,
      platform: PLATFORM,
      message: `${operation} failed: ${faultType}: ${message}${kind.hint ? ` (${kind.hint})` : ''}`,
    });
  }
}

function readObjectContent(node: XmlNode, endpoint: string): ObjectProperties {
  const obj = requireMoRef(child(node, 'obj'), 'ObjectContent.obj');
  const props = new Map<string, XmlNode>();
  for (const prop of list(child(node, 'propSet'))) {
    const name = text(child(prop, 'name'));
    const val = child(prop, 'val');
    if (name !== undefined && val !== undefined && !Array.isArray(val)) props.set(name, val);
  }
  for (const missing of list(child(node, 'missingSet'))) {
    // MissingProperty.fault is a LocalizedMethodFault; the fault's own type is on its inner `fault`.
    const localized = child(missing, 'fault');
    const inner = child(localized, 'fault');
    const faultType = xsiType(inner) ?? xsiType(localized);
    if (faultType === 'ManagedObjectNotFound') {
      throw new SyncproxyError(`${obj.type} ${obj.value} no longer exists`, {
        code: 'not-found',
        retryable: false,
        platform: PLATFORM,
      });
    }
    if (faultType !== undefined && SECURITY_FAULTS.has(faultType)) {
      throw missingPropertyError(
        endpoint,
        obj,
        text(child(missing, 'path')) ?? '(unnamed)',
        faultType,
        inner,
      );
    }
  }
  return { obj, props };
}

/**
 * The SecurityError family (vim.fault.SecurityError and its subtypes). A
 * property refused with one of these must not read as "no value": a VM would
 * show without a name or disks.
 */
const SECURITY_FAULTS = new Set([
  'SecurityError',
  'NoPermission',
  'NotAuthenticated',
  'NoPermissionOnAD',
  'NoPermissionOnHost',
  'RestrictedVersion',
  'InvalidLogin',
  'PasswordExpired',
  'AuthMinimumAdminPermission',
]);

function missingPropertyError(
  endpoint: string,
  obj: MoRef,
  property: string,
  faultType: string,
  fault: XmlNode | XmlNode[] | undefined,
): VimApiError {
  const privilege = text(child(fault, 'privilegeId'));
  const details = { property, ...(privilege !== undefined ? { privilegeId: privilege } : {}) };
  const base = {
    operation: 'RetrievePropertiesEx',
    method: 'POST',
    url: endpoint,
    status: 200,
    platformCode: faultType,
    faultType,
    retryable: false,
    platform: PLATFORM,
  };
  if (faultType === 'NotAuthenticated') {
    const error = new VimApiError({
      ...base,
      code: 'auth',
      message: `${obj.type} ${obj.value}: the session is not authenticated to read ${property} (NotAuthenticated; the session was refused even after logging in again)`,
    });
    Object.assign(error.details!, details);
    return error;
  }
  const error = new VimApiError({
    ...base,
    code: 'permission',
    message:
      privilege !== undefined
        ? `${obj.type} ${obj.value}: no permission to read ${property} (privilege ${privilege}; grant it to the user's role)`
        : `${obj.type} ${obj.value}: cannot read ${property}: ${faultType} (grant the privileges listed in the connector README)`,
  });
  Object.assign(error.details!, details);
  return error;
}

function sessionCookieOf(header: string | string[] | undefined): string | undefined {
  for (const line of list(header as XmlNode | XmlNode[] | undefined)) {
    if (typeof line !== 'string') continue;
    const pair = line.split(';', 1)[0]?.trim();
    if (pair?.startsWith(`${SESSION_COOKIE}=`)) return pair;
  }
  return undefined;
}

function safeParse(body: string): Record<string, XmlNode> | undefined {
  try {
    return parseXml(body);
  } catch {
    return undefined;
  }
}

export function requireMoRef(node: XmlNode | XmlNode[] | undefined, what: string): MoRef {
  const ref = readMoRef(node);
  if (ref === undefined) throw protocolError(`${what} is not a managed object reference`);
  return ref;
}

/** A non-negative xsd:long/int that fits a safe integer. */
export function readCount(node: XmlNode | XmlNode[] | undefined, what: string): number {
  const raw = text(node);
  const value = raw === undefined || raw.trim() === '' ? Number.NaN : Number(raw);
  if (!Number.isSafeInteger(value) || value < 0)
    throw protocolError(`${what} is ${JSON.stringify(raw)}, not a byte count`);
  return value;
}

function protocolError(message: string): SyncproxyError {
  return new SyncproxyError(message, { code: 'protocol', retryable: false, platform: PLATFORM });
}

function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal, 'task wait'));
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError(signal, 'task wait'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
