import {
  type Clock,
  createDispatcher,
  type Logger,
  type RetryOptions,
  type RetryPolicy,
  resolveRetryPolicy,
  SyncproxyError,
  systemClock,
  toSyncproxyError,
  withRetry,
} from '@syncproxy/core';
import { type Dispatcher, request } from 'undici';
import { endpointFor, type HuaweiCloudConfig, type HuaweiService, regionOf } from './config.js';
import { HuaweiApiError } from './huawei-api-error.js';
import { obsAuthorization } from './obs-signature.js';
import { signRequest } from './signer.js';

export interface HuaweiClientOptions {
  config: HuaweiCloudConfig;
  logger: Logger;
  /** The proxy's dispatcher (`ctx.dispatcher`); without one the client makes its own. */
  dispatcher?: Dispatcher;
  httpTimeoutSec?: number;
  /** Name -> IP records (`ctx.hostOverrides`), for a client that makes its own dispatcher. */
  hostOverrides?: Record<string, string>;
  retry?: RetryOptions;
  clock?: Clock;
}

export interface ApiCall {
  service: Exclude<HuaweiService, 'obs'>;
  /** The operation in the platform's words (`ListServersDetails`), for errors. */
  operation: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** The path; `{project_id}` is replaced by the resolved project id. */
  path: string;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  signal?: AbortSignal;
}

export interface ObsCall {
  operation: string;
  method: 'GET' | 'HEAD' | 'PUT' | 'DELETE';
  /** Object key, unencoded; absent for bucket operations. */
  key?: string;
  query?: Record<string, string | undefined>;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

/**
 * The Huawei Cloud APIs this connector calls, thin: every request signed
 * (SDK-HMAC-SHA256 for IAM/ECS/EVS/CBR, the OBS signature for the bucket),
 * retried by the one retry loop, and every failure mapped to a typed
 * {@link HuaweiApiError} here, so nothing above sees a raw answer.
 */
export class HuaweiClient {
  readonly #config: HuaweiCloudConfig;
  readonly #logger: Logger;
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;
  readonly #policy: RetryPolicy;
  readonly #clock: Clock;
  #projectId: Promise<string> | undefined;

  constructor(options: HuaweiClientOptions) {
    this.#config = options.config;
    this.#logger = options.logger;
    this.#clock = options.clock ?? systemClock;
    this.#policy = resolveRetryPolicy(options.retry);
    this.#ownsDispatcher = options.dispatcher === undefined;
    // Without the product's dispatcher: the proxy defaults (TLS verified, HTTP timeout, name -> IP records).
    this.#dispatcher =
      options.dispatcher ??
      createDispatcher({
        connections: options.config.maxConnections,
        ...(options.httpTimeoutSec !== undefined ? { httpTimeoutSec: options.httpTimeoutSec } : {}),
        ...(options.hostOverrides ? { hostOverrides: options.hostOverrides } : {}),
      });
  }

  get region(): string {
    return regionOf(this.#config);
  }

  get bucket(): string {
    return this.#config.bucket;
  }

  /**
   * The project id of the configured region, looked up once in IAM (`GET
   * /v3/projects?name=<region>`): the form takes the region name, the APIs
   * take the id.
   */
  projectId(signal?: AbortSignal): Promise<string> {
    this.#projectId ??= this.#lookupProject(signal);
    this.#projectId.catch(() => {
      this.#projectId = undefined;
    });
    return this.#projectId;
  }

  async #lookupProject(signal?: AbortSignal): Promise<string> {
    const answer = await this.call<{ projects?: Array<{ id: string; name: string }> }>(
      {
        service: 'iam',
        operation: 'KeystoneListProjects',
        method: 'GET',
        path: '/v3/projects',
        query: { name: this.region },
        ...(signal ? { signal } : {}),
      },
      { projectScoped: false },
    );
    const project = answer.projects?.find((p) => p.name === this.region);
    if (project === undefined) {
      throw new SyncproxyError(
        `project: region ${this.region} has no project for this account (check the region name, e.g. tr-west-1, and that the region is enabled)`,
        { code: 'config', retryable: false, details: { region: this.region } },
      );
    }
    return project.id;
  }

  /** One signed JSON API call, retried; the parsed answer, or `{}` for an empty body. */
  async call<T>(call: ApiCall, options: { projectScoped?: boolean } = {}): Promise<T> {
    const projectScoped = options.projectScoped ?? true;
    const projectId = projectScoped ? await this.projectId(call.signal) : undefined;
    const path = projectId === undefined ? call.path : call.path.replaceAll('{project_id}', projectId);
    const base = endpointFor(this.#config, call.service);
    const url = `${base}${path}`;
    const query: Record<string, string> = {};
    for (const [name, value] of Object.entries(call.query ?? {})) {
      if (value !== undefined) query[name] = String(value);
    }
    const search = new URLSearchParams(query).toString();
    return this.#retry(call.operation, call.signal, async () => {
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        ...(projectId === undefined ? {} : { 'x-project-id': projectId }),
      };
      const signed = signRequest(
        { method: call.method, url, query, headers, ...(call.body === undefined ? {} : { body: call.body }) },
        this.#config,
      );
      const response = await request(search ? `${url}?${search}` : url, {
        method: call.method,
        headers: signed,
        ...(call.body === undefined ? {} : { body: JSON.stringify(call.body) }),
        dispatcher: this.#dispatcher,
        ...(call.signal ? { signal: call.signal } : {}),
      });
      const text = await response.body.text();
      if (response.statusCode >= 400) {
        throw apiError(call.operation, call.method, url, response.statusCode, response.headers, text);
      }
      if (text === '') return {} as T;
      try {
        return JSON.parse(text) as T;
      } catch (cause) {
        throw new SyncproxyError(`${call.operation}: the answer is not JSON (HTTP ${response.statusCode})`, {
          code: 'protocol',
          retryable: false,
          cause,
        });
      }
    });
  }

  /** The URL of an object (or the bucket): path-style under an override, virtual-hosted otherwise. */
  obsUrl(key?: string): string {
    const override = this.#config.endpoints?.obs;
    const encoded = key === undefined ? '' : key.split('/').map(encodeURIComponent).join('/');
    if (override !== undefined) {
      return `${override.replace(/\/+$/, '')}/${this.bucket}${key === undefined ? '' : `/${encoded}`}`;
    }
    return `https://${this.bucket}.obs.${this.region}.myhuaweicloud.com/${encoded}`;
  }

  /** One signed OBS request, retried; the raw answer for the caller to read (its body must be consumed). */
  async obs(call: ObsCall): Promise<Dispatcher.ResponseData> {
    const url = this.obsUrl(call.key);
    const search = new URLSearchParams(
      Object.entries(call.query ?? {}).filter((e): e is [string, string] => e[1] !== undefined),
    ).toString();
    return this.#retry(call.operation, call.signal, async () => {
      const date = new Date(this.#clock.now()).toUTCString();
      const headers: Record<string, string> = { ...call.headers, date };
      headers.authorization = obsAuthorization(
        {
          method: call.method,
          bucket: this.bucket,
          ...(call.key === undefined ? {} : { key: call.key }),
          date,
          ...(headers['content-type'] ? { contentType: headers['content-type'] } : {}),
          obsHeaders: headers,
        },
        this.#config.accessKeyId,
        this.#config.secretAccessKey,
      );
      const response = await request(search ? `${url}?${search}` : url, {
        method: call.method,
        headers,
        ...(call.body === undefined ? {} : { body: call.body }),
        dispatcher: this.#dispatcher,
        ...(call.signal ? { signal: call.signal } : {}),
      });
      if (response.statusCode >= 400) {
        const text = call.method === 'HEAD' ? '' : await response.body.text();
        if (call.method === 'HEAD') await response.body.dump();
        throw obsError(call.operation, call.method, url, response.statusCode, response.headers, text);
      }
      return response;
    });
  }

  async #retry<T>(operation: string, signal: AbortSignal | undefined, run: () => Promise<T>): Promise<T> {
    return withRetry(operation, run, {
      policy: this.#policy,
      clock: this.#clock,
      ...(signal ? { signal } : {}),
      mapError: (thrown) => toSyncproxyError(thrown, { operation }),
      onRetry: (error, retry) =>
        this.#logger.debug({ operation, retry, code: error.code }, 'retrying a Huawei Cloud call'),
    });
  }

  async close(): Promise<void> {
    if (this.#ownsDispatcher) await this.#dispatcher.close();
  }
}

export type Headers = Record<string, string | string[] | undefined>;

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Maps an API gateway or service answer. Shapes: `{error_code, error_msg}`
 * (API gateway `APIGW.*`, CBR), `{error: {code, message}}` (ECS, EVS) and IAM's
 * `{error: {code: 404, title, message}}`.
 */
export function apiError(
  operation: string,
  method: string,
  url: string,
  status: number,
  headers: Headers,
  text: string,
): HuaweiApiError {
  let platformCode: string | undefined;
  let platformMessage: string | undefined;
  try {
    const body = JSON.parse(text) as {
      error_code?: string;
      error_msg?: string;
      error?: { code?: string | number; message?: string; title?: string };
    };
    platformCode = body.error_code ?? (body.error?.code === undefined ? undefined : String(body.error.code));
    platformMessage = body.error_msg ?? body.error?.message;
  } catch {
    // Not JSON (a proxy's HTML page): the status says enough.
  }
  const requestId = header(headers, 'x-request-id');
  return new HuaweiApiError({
    operation,
    method,
    url,
    status,
    body: text,
    ...(platformCode ? { platformCode } : {}),
    ...(platformMessage ? { platformMessage: platformMessage.slice(0, 300) } : {}),
    ...(requestId ? { requestId } : {}),
    ...(status === 400 && platformCode === 'APIGW.0308' ? { code: 'throttled', retryable: true } : {}),
  });
}

/** Maps an OBS answer: XML `<Error><Code>…</Code><Message>…</Message></Error>`, request id in `x-obs-request-id`. */
export function obsError(
  operation: string,
  method: string,
  url: string,
  status: number,
  headers: Headers,
  text: string,
): HuaweiApiError {
  const platformCode = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
  const platformMessage = /<Message>([^<]*)<\/Message>/.exec(text)?.[1];
  const requestId = header(headers, 'x-obs-request-id');
  return new HuaweiApiError({
    operation,
    method,
    url,
    status,
    body: text,
    ...(platformCode ? { platformCode } : {}),
    ...(platformMessage ? { platformMessage: platformMessage.slice(0, 300) } : {}),
    ...(requestId ? { requestId } : {}),
    // OBS says SignatureDoesNotMatch / InvalidAccessKeyId with 403: that is bad credentials, not a missing permission.
    ...(platformCode === 'SignatureDoesNotMatch' || platformCode === 'InvalidAccessKeyId'
      ? { code: 'auth' as const, retryable: false }
      : {}),
    ...(platformCode === 'SlowDown' || status === 503 ? { code: 'throttled' as const, retryable: true } : {}),
  });
}
