import {
  type Clock,
  type ConnectorContext,
  type Logger,
  PlatformApiError,
  type Redactor,
  type RetryOptions,
  raceAbort,
  resolveRetryPolicy,
  SyncproxyError,
  systemClock,
  withRetry,
} from '@syncproxy/core';
import * as common from 'oci-common';
import * as core from 'oci-core';
import * as identity from 'oci-identity';

import { endpointFor, type OracleConfig } from './config.js';

type Dispatcher = NonNullable<ConnectorContext['dispatcher']>;

export const PLATFORM = 'oracle';

/** The SDK's request and response models this connector uses, re-exported under domain names. */
export type OciInstance = core.models.Instance;
export type OciVolume = core.models.Volume;
export type OciBootVolume = core.models.BootVolume;
export type OciVolumeBackup = core.models.VolumeBackup;
export type OciBootVolumeBackup = core.models.BootVolumeBackup;
export type OciVolumeAttachment = core.models.VolumeAttachment & {
  iqn?: string;
  ipv4?: string;
  port?: number;
  chapUsername?: string;
  isAgentAutoIscsiLoginEnabled?: boolean;
};
export type OciBootVolumeAttachment = core.models.BootVolumeAttachment;
export type OciCompartment = identity.models.Compartment;

export interface OracleClientOptions {
  config: OracleConfig;
  /** The API key as PEM, read from `config.privateKey` or `config.privateKeyPath`. */
  privateKeyPem: string;
  /**
   * The proxy's HTTP settings; handed to the SDK's fetch (see {@link sdkHttpOptions}). Required:
   * without one the SDK's POSTs meet whatever global dispatcher the process has, and undici 7's
   * refuses their doubled Content-Length.
   */
  dispatcher: Dispatcher;
  logger: Logger;
  redactor: Redactor;
  retry?: RetryOptions;
  clock?: Clock;
  signal?: AbortSignal;
}

/** Whether an OCI 404 means "no such resource" or "you may not see it" (OCI says NotAuthorizedOrNotFound for both). */
export type NotFoundMeaning = 'not-found' | 'permission';

export interface CallSpec {
  /** The OCI operation name, as the API reference spells it. */
  operation: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** What a 404 means here: a get of a known id is `not-found`; a list in a compartment is `permission`. */
  notFound?: NotFoundMeaning;
}

/** What an OciError carries, read structurally: a second copy of oci-common makes `instanceof` unreliable. */
interface OciErrorShape {
  statusCode: number;
  serviceCode?: string;
  message?: string;
  opcRequestId?: string | null;
  requestEndpoint?: string;
}

function isOciError(value: unknown): value is OciErrorShape {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as OciErrorShape).statusCode === 'number' &&
    'serviceCode' in value
  );
}

/**
 * Maps whatever the OCI SDK threw to a typed error: 401 `auth`, 404
 * NotAuthorizedOrNotFound `not-found` or `permission` as the call says, 409
 * `conflict`, 429 `throttled` (retryable), 5xx retryable, and the SDK's
 * client-side failures (statusCode -1: no answer) `network`, retryable.
 */
export function mapOciError(error: unknown, spec: CallSpec, redactor?: Redactor): SyncproxyError {
  if (SyncproxyError.isInstance(error)) return error;
  const clean = (text: string) => (redactor ? redactor.text(text) : text);
  if (isOciError(error)) {
    const status = error.statusCode;
    const url = error.requestEndpoint ?? '';
    const platformCode = error.serviceCode || undefined;
    const body = error.message ? clean(error.message).slice(0, 2048) : undefined;
    if (status <= 0) {
      return new SyncproxyError(`${spec.operation} failed: no answer from OCI (${body ?? 'network error'})`, {
        code: 'network',
        retryable: true,
        platform: PLATFORM,
      });
    }
    const code =
      status === 401
        ? 'auth'
        : status === 403
          ? 'permission'
          : status === 404
            ? (spec.notFound ?? 'not-found')
            : status === 409
              ? 'conflict'
              : status === 429
                ? 'throttled'
                : status === 400 && platformCode === 'InvalidParameter'
                  ? 'platform'
                  : undefined;
    const hint =
      code === 'auth'
        ? ' (check the tenancy and user OCIDs, the key fingerprint and the private key, and the proxy clock)'
        : status === 404 && code === 'permission'
          ? ' (OCI says NotAuthorizedOrNotFound: check the IAM policies in the README)'
          : '';
    return new PlatformApiError({
      operation: spec.operation,
      method: spec.method,
      url,
      status,
      ...(error.opcRequestId ? { requestId: error.opcRequestId } : {}),
      ...(body !== undefined ? { body } : {}),
      ...(platformCode !== undefined ? { platformCode } : {}),
      ...(code !== undefined ? { code } : {}),
      retryable: status === 429 || status >= 500,
      platform: PLATFORM,
      message: `${spec.operation} failed: HTTP ${status}${platformCode ? ` ${platformCode}` : ''}${body ? `: ${body}` : ''}${error.opcRequestId ? ` (opc-request-id ${error.opcRequestId})` : ''}${hint}`,
    });
  }
  // Client-side failures (no answer) come from the SDK as plain `{ message, requestEndpoint }` objects.
  const message =
    error instanceof Error
      ? error.message
      : typeof error === 'object' &&
          error !== null &&
          typeof (error as { message?: unknown }).message === 'string'
        ? (error as { message: string }).message
        : String(error);
  // fetch() rejects with a TypeError ("fetch failed") when the connection fails.
  const isNetwork =
    error instanceof TypeError || /fetch failed|ECONN|ETIMEDOUT|EAI_AGAIN|socket/i.test(message);
  return new SyncproxyError(`${spec.operation} failed: ${clean(message)}`, {
    code: isNetwork ? 'network' : 'platform',
    retryable: isNetwork,
    platform: PLATFORM,
    cause: error,
  });
}

/**
 * The proxy's HTTP settings as the OCI SDK takes them. The SDK sends every
 * request with the global `fetch(request, clientConfiguration.httpOptions)`
 * (oci-common `lib/http.js`), so `httpOptions` is a fetch init: Node's fetch
 * honours an undici `dispatcher` there, which carries the proxy's HTTP timeout,
 * TLS settings (verification on, or a pinned thumbprint) and host overrides.
 *
 * The dispatcher cannot be handed over as is: the SDK's signer sets
 * `Content-Length` itself and Node's fetch adds its own, so a POST arrives with
 * `content-length: "7, 7"`, which undici 7's Agent refuses ("invalid
 * content-length header"; Node's bundled undici let it pass). An interceptor
 * folds the repeated value back into one.
 */
export function sdkHttpOptions(dispatcher: Dispatcher | undefined): Record<string, unknown> | undefined {
  if (dispatcher === undefined) return undefined;
  const folded = dispatcher.compose(
    (dispatch) => (options, handler) =>
      dispatch({ ...options, headers: foldContentLength(options.headers) }, handler),
  );
  return { dispatcher: folded };
}

type DispatchHeaders = Parameters<Dispatcher['dispatch']>[0]['headers'];

function foldContentLength(headers: DispatchHeaders): DispatchHeaders {
  if (headers === null || headers === undefined || Array.isArray(headers) || typeof headers !== 'object') {
    return headers;
  }
  if (Symbol.iterator in headers) return headers;
  const plain = headers as Record<string, string | string[] | undefined>;
  const name = Object.keys(plain).find((k) => k.toLowerCase() === 'content-length');
  const value = name === undefined ? undefined : plain[name];
  if (name === undefined || typeof value !== 'string') return headers;
  const parts = value.split(',').map((p) => p.trim());
  if (parts.length < 2 || parts.some((p) => p !== parts[0])) return headers;
  return { ...plain, [name]: parts[0]! };
}

/** Lists every page of an OCI list call (`page` in, `opc-next-page` out). */
async function allPages<T>(
  list: (page: string | undefined) => Promise<{ items: T[]; opcNextPage?: string }>,
) {
  const out: T[] = [];
  let page: string | undefined;
  do {
    const response = await list(page);
    out.push(...response.items);
    page = response.opcNextPage;
  } while (page);
  return out;
}

const PAGE_LIMIT = 100;

/**
 * The OCI APIs this connector calls, through the per-service SDK clients. The
 * SDK's own retries and circuit breaker are off: retries have one owner, this
 * client's `withRetry`, and the breaker's timers would outlive `close()`.
 */
export class OracleClient {
  readonly #compute: core.ComputeClient;
  readonly #blockstorage: core.BlockstorageClient;
  readonly #identity: identity.IdentityClient;
  readonly #retry: ReturnType<typeof resolveRetryPolicy>;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #redactor: Redactor;
  readonly #signal: AbortSignal | undefined;

  constructor(options: OracleClientOptions) {
    const { config } = options;
    const provider = new common.SimpleAuthenticationDetailsProvider(
      config.tenancyId,
      config.userId,
      config.fingerprint,
      options.privateKeyPem,
      config.passphrase ?? null,
      common.Region.fromRegionId(config.region),
    );
    const httpOptions = sdkHttpOptions(options.dispatcher);
    const clientConfiguration: common.ClientConfiguration = {
      retryConfiguration: common.NoRetryConfigurationDetails,
      circuitBreaker: { noCircuit: true } as unknown as common.CircuitBreaker,
      ...(httpOptions ? { httpOptions } : {}),
    };
    const auth = { authenticationDetailsProvider: provider };
    this.#compute = new core.ComputeClient(auth, clientConfiguration);
    this.#blockstorage = new core.BlockstorageClient(auth, clientConfiguration);
    this.#identity = new identity.IdentityClient(auth, clientConfiguration);
    this.#compute.endpoint = endpointFor(config, 'core');
    this.#blockstorage.endpoint = endpointFor(config, 'core');
    this.#identity.endpoint = endpointFor(config, 'identity');
    this.#retry = resolveRetryPolicy(options.retry);
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger;
    this.#redactor = options.redactor;
    this.#signal = options.signal;
  }

  async #call<T>(spec: CallSpec, run: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const effective = signal ?? this.#signal;
    return withRetry(spec.operation, () => raceAbort(run(), effective, spec.operation), {
      policy: this.#retry,
      clock: this.#clock,
      ...(effective ? { signal: effective } : {}),
      mapError: (error) => mapOciError(error, spec, this.#redactor),
      onRetry: (error, retry) =>
        this.#logger.debug({ operation: spec.operation, retry, code: error.code }, 'oracle: retrying'),
    });
  }

  // Identity

  /** The direct children of a compartment (or of the tenancy, the root compartment). */
  listCompartments(parentId: string): Promise<OciCompartment[]> {
    const spec: CallSpec = { operation: 'ListCompartments', method: 'GET', notFound: 'permission' };
    return allPages((page) =>
      this.#call(spec, () =>
        this.#identity.listCompartments({
          compartmentId: parentId,
          limit: PAGE_LIMIT,
          lifecycleState: identity.models.Compartment.LifecycleState.Active,
          ...(page ? { page } : {}),
        }),
      ),
    );
  }

  // Compute

  listInstances(compartmentId: string): Promise<OciInstance[]> {
    const spec: CallSpec = { operation: 'ListInstances', method: 'GET', notFound: 'permission' };
    return allPages((page) =>
      this.#call(spec, () =>
        this.#compute.listInstances({ compartmentId, limit: PAGE_LIMIT, ...(page ? { page } : {}) }),
      ),
    );
  }

  async getInstance(instanceId: string): Promise<OciInstance> {
    const spec: CallSpec = { operation: 'GetInstance', method: 'GET' };
    return (await this.#call(spec, () => this.#compute.getInstance({ instanceId }))).instance;
  }

  listBootVolumeAttachments(
    availabilityDomain: string,
    compartmentId: string,
    instanceId: string,
  ): Promise<OciBootVolumeAttachment[]> {
    const spec: CallSpec = { operation: 'ListBootVolumeAttachments', method: 'GET', notFound: 'permission' };
    return allPages((page) =>
      this.#call(spec, () =>
        this.#compute.listBootVolumeAttachments({
          availabilityDomain,
          compartmentId,
          instanceId,
          limit: PAGE_LIMIT,
          ...(page ? { page } : {}),
        }),
      ),
    );
  }

  listVolumeAttachments(compartmentId: string, filter: { instanceId?: string; volumeId?: string }) {
    const spec: CallSpec = { operation: 'ListVolumeAttachments', method: 'GET', notFound: 'permission' };
    return allPages<OciVolumeAttachment>((page) =>
      this.#call(spec, () =>
        this.#compute.listVolumeAttachments({
          compartmentId,
          ...filter,
          limit: PAGE_LIMIT,
          ...(page ? { page } : {}),
        }),
      ),
    );
  }

  /** Device paths (`/dev/oracleoci/oraclevdb`...) free on an instance, for consistent-device-path attachments. */
  async listFreeDevices(instanceId: string, signal?: AbortSignal): Promise<string[]> {
    const spec: CallSpec = { operation: 'ListInstanceDevices', method: 'GET' };
    const devices = await allPages((page) =>
      this.#call(
        spec,
        () =>
          this.#compute.listInstanceDevices({
            instanceId,
            isAvailable: true,
            limit: PAGE_LIMIT,
            ...(page ? { page } : {}),
          }),
        signal,
      ),
    );
    return devices.map((d) => d.name);
  }

  async attachVolume(
    details: {
      instanceId: string;
      volumeId: string;
      type: 'paravirtualized' | 'iscsi';
      displayName: string;
      device?: string;
    },
    signal?: AbortSignal,
  ): Promise<OciVolumeAttachment> {
    const spec: CallSpec = { operation: 'AttachVolume', method: 'POST' };
    const attachDetails = {
      type: details.type,
      instanceId: details.instanceId,
      volumeId: details.volumeId,
      displayName: details.displayName,
      isReadOnly: true,
      ...(details.device ? { device: details.device } : {}),
    } as core.models.AttachVolumeDetails;
    return (
      await this.#call(spec, () => this.#compute.attachVolume({ attachVolumeDetails: attachDetails }), signal)
    ).volumeAttachment;
  }

  async getVolumeAttachment(volumeAttachmentId: string, signal?: AbortSignal): Promise<OciVolumeAttachment> {
    const spec: CallSpec = { operation: 'GetVolumeAttachment', method: 'GET' };
    return (await this.#call(spec, () => this.#compute.getVolumeAttachment({ volumeAttachmentId }), signal))
      .volumeAttachment;
  }

  async detachVolume(volumeAttachmentId: string, signal?: AbortSignal): Promise<void> {
    const spec: CallSpec = { operation: 'DetachVolume', method: 'DELETE' };
    await this.#call(spec, () => this.#compute.detachVolume({ volumeAttachmentId }), signal);
  }

  // Block Volume

  async getVolume(volumeId: string, signal?: AbortSignal): Promise<OciVolume> {
    const spec: CallSpec = { operation: 'GetVolume', method: 'GET' };
    return (await this.#call(spec, () => this.#blockstorage.getVolume({ volumeId }), signal)).volume;
  }

  async getBootVolume(bootVolumeId: string, signal?: AbortSignal): Promise<OciBootVolume> {
    const spec: CallSpec = { operation: 'GetBootVolume', method: 'GET' };
    return (await this.#call(spec, () => this.#blockstorage.getBootVolume({ bootVolumeId }), signal))
      .bootVolume;
  }

  async createVolume(details: core.models.CreateVolumeDetails, signal?: AbortSignal): Promise<OciVolume> {
    const spec: CallSpec = { operation: 'CreateVolume', method: 'POST' };
    return (
      await this.#call(spec, () => this.#blockstorage.createVolume({ createVolumeDetails: details }), signal)
    ).volume;
  }

  async createBootVolume(
    details: core.models.CreateBootVolumeDetails,
    signal?: AbortSignal,
  ): Promise<OciBootVolume> {
    const spec: CallSpec = { operation: 'CreateBootVolume', method: 'POST' };
    return (
      await this.#call(
        spec,
        () => this.#blockstorage.createBootVolume({ createBootVolumeDetails: details }),
        signal,
      )
    ).bootVolume;
  }

  async deleteVolume(volumeId: string, signal?: AbortSignal): Promise<void> {
    const spec: CallSpec = { operation: 'DeleteVolume', method: 'DELETE' };
    await this.#call(spec, () => this.#blockstorage.deleteVolume({ volumeId }), signal);
  }

  async deleteBootVolume(bootVolumeId: string, signal?: AbortSignal): Promise<void> {
    const spec: CallSpec = { operation: 'DeleteBootVolume', method: 'DELETE' };
    await this.#call(spec, () => this.#blockstorage.deleteBootVolume({ bootVolumeId }), signal);
  }

  listVolumes(compartmentId: string): Promise<OciVolume[]> {
    const spec: CallSpec = { operation: 'ListVolumes', method: 'GET', notFound: 'permission' };
    return allPages((page) =>
      this.#call(spec, () =>
        this.#blockstorage.listVolumes({ compartmentId, limit: PAGE_LIMIT, ...(page ? { page } : {}) }),
      ),
    );
  }

  listBootVolumes(availabilityDomain: string, compartmentId: string): Promise<OciBootVolume[]> {
    const spec: CallSpec = { operation: 'ListBootVolumes', method: 'GET', notFound: 'permission' };
    return allPages((page) =>
      this.#call(spec, () =>
        this.#blockstorage.listBootVolumes({
          availabilityDomain,
          compartmentId,
          limit: PAGE_LIMIT,
          ...(page ? { page } : {}),
        }),
      ),
    );
  }

  async createVolumeBackup(
    details: core.models.CreateVolumeBackupDetails,
    signal?: AbortSignal,
  ): Promise<OciVolumeBackup> {
    const spec: CallSpec = { operation: 'CreateVolumeBackup', method: 'POST' };
    return (
      await this.#call(
        spec,
        () => this.#blockstorage.createVolumeBackup({ createVolumeBackupDetails: details }),
        signal,
      )
    ).volumeBackup;
  }

  async createBootVolumeBackup(
    details: core.models.CreateBootVolumeBackupDetails,
    signal?: AbortSignal,
  ): Promise<OciBootVolumeBackup> {
    const spec: CallSpec = { operation: 'CreateBootVolumeBackup', method: 'POST' };
    return (
      await this.#call(
        spec,
        () => this.#blockstorage.createBootVolumeBackup({ createBootVolumeBackupDetails: details }),
        signal,
      )
    ).bootVolumeBackup;
  }

  async getVolumeBackup(volumeBackupId: string, signal?: AbortSignal): Promise<OciVolumeBackup> {
    const spec: CallSpec = { operation: 'GetVolumeBackup', method: 'GET' };
    return (await this.#call(spec, () => this.#blockstorage.getVolumeBackup({ volumeBackupId }), signal))
      .volumeBackup;
  }

  async getBootVolumeBackup(bootVolumeBackupId: string, signal?: AbortSignal): Promise<OciBootVolumeBackup> {
    const spec: CallSpec = { operation: 'GetBootVolumeBackup', method: 'GET' };
    return (
      await this.#call(spec, () => this.#blockstorage.getBootVolumeBackup({ bootVolumeBackupId }), signal)
    ).bootVolumeBackup;
  }

  async deleteVolumeBackup(volumeBackupId: string, signal?: AbortSignal): Promise<void> {
    const spec: CallSpec = { operation: 'DeleteVolumeBackup', method: 'DELETE' };
    await this.#call(spec, () => this.#blockstorage.deleteVolumeBackup({ volumeBackupId }), signal);
  }

  async deleteBootVolumeBackup(bootVolumeBackupId: string, signal?: AbortSignal): Promise<void> {
    const spec: CallSpec = { operation: 'DeleteBootVolumeBackup', method: 'DELETE' };
    await this.#call(spec, () => this.#blockstorage.deleteBootVolumeBackup({ bootVolumeBackupId }), signal);
  }

  listVolumeBackups(compartmentId: string, volumeId?: string): Promise<OciVolumeBackup[]> {
    const spec: CallSpec = { operation: 'ListVolumeBackups', method: 'GET', notFound: 'permission' };
    return allPages((page) =>
      this.#call(spec, () =>
        this.#blockstorage.listVolumeBackups({
          compartmentId,
          ...(volumeId ? { volumeId } : {}),
          limit: PAGE_LIMIT,
          ...(page ? { page } : {}),
        }),
      ),
    );
  }

  listBootVolumeBackups(compartmentId: string, bootVolumeId?: string): Promise<OciBootVolumeBackup[]> {
    const spec: CallSpec = { operation: 'ListBootVolumeBackups', method: 'GET', notFound: 'permission' };
    return allPages((page) =>
      this.#call(spec, () =>
        this.#blockstorage.listBootVolumeBackups({
          compartmentId,
          ...(bootVolumeId ? { bootVolumeId } : {}),
          limit: PAGE_LIMIT,
          ...(page ? { page } : {}),
        }),
      ),
    );
  }

  /** The SDK clients hold no sockets of their own (fetch's dispatcher does) and no timers with the breaker off. */
  close(): void {
    this.#compute.close();
    this.#blockstorage.close();
    this.#identity.close();
  }
}
