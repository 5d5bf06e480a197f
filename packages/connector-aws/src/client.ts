import { createHash, type Hash } from 'node:crypto';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import {
  EBSClient,
  type GetSnapshotBlockCommandOutput,
  ListChangedBlocksCommand,
  ListSnapshotBlocksCommand,
} from '@aws-sdk/client-ebs';
import {
  CreateSnapshotsCommand,
  DeleteSnapshotCommand,
  DescribeInstancesCommand,
  DescribeRegionsCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  EC2Client,
  type EC2ClientConfig,
  type Filter,
  type Instance,
  type Snapshot,
  type SnapshotInfo,
  type Tag,
  type Volume,
} from '@aws-sdk/client-ec2';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import {
  ChunkHasher,
  type Clock,
  type ErrorCode,
  type Logger,
  overrideLookup,
  type RetryOptions,
  resolveRetryPolicy,
  SyncproxyError,
  systemClock,
  toSyncproxyError,
  withRetry,
} from '@syncproxy/core';
import { AwsApiError } from './aws-api-error.js';
import { type AwsConfig, endpointFor } from './config.js';

/** EBS direct APIs serve 512 KiB blocks (GetSnapshotBlock API reference). */

/**
 * AWS asks clients to back off longer than the engine's default (API_GetSnapshotBlock, "retry").
 * This client owns the retries of its calls: 6 attempts in all, after which the error is no longer
 * retryable, so the engine does not retry a block again. A block is requested at most 6 times,
 * or 12 while AWS only throttles it: a refusal did no work, and at 20% throttled a run of 6
 * refusals comes once in 16 000 blocks (8 GiB), which would fail a long transfer.
 */
const AWS_RETRY_DEFAULTS = { attempts: 6, throttledAttempts: 12, baseDelayMs: 200, maxDelayMs: 20_000 };

export const EBS_BLOCK_SIZE = 524_288;
const GIB = 1024 ** 3;
const PLATFORM = 'aws';

/** What the SDK clients accept as credentials: fixed keys, or a provider (`fromIni()`, ...). */
export type AwsCredentials = NonNullable<EC2ClientConfig['credentials']>;

export interface AwsClientOptions {
  config: AwsConfig;
  /**
   * Where credentials come from instead of the config's keys: an AWS SDK credential provider such
   * as `fromNodeProviderChain()`, `fromIni({ profile })` or `fromTemporaryCredentials({ params:
   * { RoleArn } })` (package `@aws-sdk/credential-providers`). Without it only the config's keys are
   * used: no credential files, environment or instance metadata service.
   */
  credentials?: AwsCredentials;
  logger?: Logger;
  /** Name -> IP records for endpoints the proxy cannot resolve (VPC endpoints by private names). */
  hostOverrides?: Record<string, string>;
  /** No answer (no byte) for this long fails a call. Product default 600. */
  httpTimeoutSec?: number;
  retry?: RetryOptions;
  clock?: Clock;
}

/** One page of ListSnapshotBlocks or ListChangedBlocks, in the reader's words. */
export interface BlockPage {
  blocks: Array<{ index: number; token: string | undefined }>;
  /** When the block tokens of this page stop working, ms since the epoch. */
  expiresAtMs: number;
  volumeSizeBytes: number;
  blockSize: number;
  nextToken: string | undefined;
}

export interface ListBlocksInput {
  snapshotId: string;
  /** For ListChangedBlocks: the older snapshot. */
  baseSnapshotId?: string;
  startingBlockIndex?: number;
  pageToken?: string;
  maxResults?: number;
  signal?: AbortSignal;
}

export interface GetBlockInput {
  snapshotId: string;
  blockIndex: number;
  blockToken: string;
  /**
   * Where the block's bytes go, as they arrive (no buffer of its own): at least
   * the block's length. After a failed read it holds whatever had arrived.
   */
  into?: Uint8Array;
  /** Told of each retry this client makes of the block (the caller adapts; it does not retry). */
  onRetry?: (error: SyncproxyError) => void;
  signal?: AbortSignal;
}

/**
 * The EC2 and EBS direct APIs, thin: one method per call, explicit
 * credentials (the config's keys, or the provider the embedding program passed; never the SDK's
 * default chain on its own, so no IMDS or credential files unless asked), our own retry policy, and
 * every SDK error mapped to a SyncproxyError here, so nothing above this file
 * sees a raw SDK error.
 */
export class AwsClient {
  readonly ec2Endpoint: string;
  readonly ebsEndpoint: string;
  readonly region: string;
  readonly #ec2: EC2Client;
  readonly #ebs: EBSClient;
  readonly #agents: Array<HttpAgent | HttpsAgent>;
  readonly #retry: ReturnType<typeof resolveRetryPolicy>;
  readonly #clock: Clock;
  readonly #logger: Logger | undefined;
  readonly #ebsEndpointUrl: URL;
  /**
   * SHA-256 of blocks read into shared memory (the engine's chunk buffers), on hashing threads: at
   * 64 blocks in flight the event loop is what limits a sync, and the checksum was a third of its
   * time per block.
   */
  #blockHasher: ChunkHasher | undefined;
  #ebsSigner: ReturnType<EBSClient['config']['signer']> | undefined;
  #retries = 0;

  constructor(options: AwsClientOptions) {
    const { config } = options;
    this.region = config.region;
    this.ec2Endpoint = endpointFor(config, 'ec2');
    this.ebsEndpoint = endpointFor(config, 'ebs');
    this.#ebsEndpointUrl = new URL(this.ebsEndpoint);
    this.#retry = resolveRetryPolicy(options.retry, AWS_RETRY_DEFAULTS);
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger;
    // The SDK's NodeHttpHandler cannot take an undici dispatcher: the proxy's
    // settings (timeout, name overrides, sockets for many reads in flight) go
    // into its agents instead.
    const agentOptions = {
      keepAlive: true,
      maxSockets: config.maxConnections,
      ...(options.hostOverrides ? { lookup: overrideLookup(options.hostOverrides) } : {}),
    };
    const httpAgent = new HttpAgent(agentOptions);
    const httpsAgent = new HttpsAgent(agentOptions);
    this.#agents = [httpAgent, httpsAgent];
    const requestHandler = new NodeHttpHandler({
      httpAgent,
      httpsAgent,
      connectionTimeout: 30_000,
      socketTimeout: (options.httpTimeoutSec ?? 600) * 1000,
    });
    const shared = {
      region: config.region,
      credentials: options.credentials ?? keysOf(config),
      // Retries are ours (one policy for every call, counted, abortable).
      maxAttempts: 1,
      requestHandler,
      useFipsEndpoint: false,
      useDualstackEndpoint: false,
      defaultsMode: 'standard' as const,
    };
    this.#ec2 = new EC2Client({ ...shared, endpoint: this.ec2Endpoint });
    this.#ebs = new EBSClient({ ...shared, endpoint: this.ebsEndpoint });
  }

  /** Retries made so far by this client (throttling, 5xx, network, bad checksums). */
  get retries(): number {
    return this.#retries;
  }

  // ---- EC2 -------------------------------------------------------------

  async describeRegions(signal?: AbortSignal): Promise<string[]> {
    const out = await this.#call(
      'DescribeRegions',
      'ec2',
      () => this.#ec2.send(new DescribeRegionsCommand({}), { abortSignal: signal }),
      signal,
    );
    return (out.Regions ?? []).flatMap((r) => (r.RegionName ? [r.RegionName] : []));
  }

  async describeInstances(
    input: { instanceIds?: string[]; filters?: Filter[]; signal?: AbortSignal } = {},
  ): Promise<Instance[]> {
    const instances: Instance[] = [];
    let nextToken: string | undefined;
    do {
      const out = await this.#call(
        'DescribeInstances',
        'ec2',
        () =>
          this.#ec2.send(
            new DescribeInstancesCommand({
              ...(input.instanceIds ? { InstanceIds: input.instanceIds } : { MaxResults: 1000 }),
              ...(input.filters ? { Filters: input.filters } : {}),
              ...(nextToken ? { NextToken: nextToken } : {}),
            }),
            { abortSignal: input.signal },
          ),
        input.signal,
      );
      for (const reservation of out.Reservations ?? []) instances.push(...(reservation.Instances ?? []));
      nextToken = out.NextToken || undefined;
    } while (nextToken);
    return instances;
  }

  async describeVolumes(input: {
    volumeIds?: string[];
    filters?: Filter[];
    signal?: AbortSignal;
  }): Promise<Volume[]> {
    const volumes: Volume[] = [];
    let nextToken: string | undefined;
    do {
      const out = await this.#call(
        'DescribeVolumes',
        'ec2',
        () =>
          this.#ec2.send(
            new DescribeVolumesCommand({
              ...(input.volumeIds ? { VolumeIds: input.volumeIds } : { MaxResults: 500 }),
              ...(input.filters ? { Filters: input.filters } : {}),
              ...(nextToken ? { NextToken: nextToken } : {}),
            }),
            { abortSignal: input.signal },
          ),
        input.signal,
      );
      volumes.push(...(out.Volumes ?? []));
      nextToken = out.NextToken || undefined;
    } while (nextToken);
    return volumes;
  }

  /** Crash-consistent snapshots of the instance's volumes, taken at one point in time. */
  async createSnapshots(input: {
    instanceId: string;
    excludeBootVolume: boolean;
    excludeDataVolumeIds: string[];
    description: string;
    tags: Tag[];
    signal?: AbortSignal;
  }): Promise<SnapshotInfo[]> {
    // Not retried on an ambiguous failure: a retry could leave a second set of
    // snapshots behind. The tags let a sweep find such leftovers anyway.
    const out = await this.#call(
      'CreateSnapshots',
      'ec2',
      () =>
        this.#ec2.send(
          new CreateSnapshotsCommand({
            InstanceSpecification: {
              InstanceId: input.instanceId,
              ExcludeBootVolume: input.excludeBootVolume,
              ...(input.excludeDataVolumeIds.length > 0
                ? { ExcludeDataVolumeIds: input.excludeDataVolumeIds }
                : {}),
            },
            Description: input.description,
            TagSpecifications: [{ ResourceType: 'snapshot', Tags: input.tags }],
          }),
          { abortSignal: input.signal },
        ),
      input.signal,
      { retryOnlyWhenRefused: true },
    );
    return out.Snapshots ?? [];
  }

  async describeSnapshots(input: {
    snapshotIds?: string[];
    filters?: Filter[];
    signal?: AbortSignal;
  }): Promise<Snapshot[]> {
    const snapshots: Snapshot[] = [];
    let nextToken: string | undefined;
    do {
      const out = await this.#call(
        'DescribeSnapshots',
        'ec2',
        () =>
          this.#ec2.send(
            new DescribeSnapshotsCommand({
              OwnerIds: ['self'],
              ...(input.snapshotIds ? { SnapshotIds: input.snapshotIds } : { MaxResults: 1000 }),
              ...(input.filters ? { Filters: input.filters } : {}),
              ...(nextToken ? { NextToken: nextToken } : {}),
            }),
            { abortSignal: input.signal },
          ),
        input.signal,
      );
      snapshots.push(...(out.Snapshots ?? []));
      nextToken = out.NextToken || undefined;
    } while (nextToken);
    return snapshots;
  }

  /** Deletes a snapshot; one that no longer exists counts as deleted. */
  async deleteSnapshot(snapshotId: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.#call(
        'DeleteSnapshot',
        'ec2',
        () => this.#ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }), { abortSignal: signal }),
        signal,
      );
    } catch (error) {
      if (AwsApiError.isInstance(error) && error.platformCode === 'InvalidSnapshot.NotFound') return;
      throw error;
    }
  }

  // ---- EBS direct --------------------------------------------------------

  /** One page of written blocks (full read), or of blocks changed since `baseSnapshotId`. */
  async listBlocks(input: ListBlocksInput): Promise<BlockPage> {
    const paging = {
      ...(input.maxResults !== undefined ? { MaxResults: input.maxResults } : {}),
      ...(input.pageToken !== undefined
        ? { NextToken: input.pageToken }
        : input.startingBlockIndex !== undefined
          ? { StartingBlockIndex: input.startingBlockIndex }
          : {}),
    };
    if (input.baseSnapshotId === undefined) {
      const out = await this.#call(
        'ListSnapshotBlocks',
        'ebs',
        () =>
          this.#ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: input.snapshotId, ...paging }), {
            abortSignal: input.signal,
          }),
        input.signal,
        { path: `/snapshots/${input.snapshotId}/blocks` },
      );
      return this.#page(
        'ListSnapshotBlocks',
        (out.Blocks ?? []).map((b) => ({ index: b.BlockIndex, token: b.BlockToken })),
        out,
      );
    }
    const baseSnapshotId = input.baseSnapshotId;
    const out = await this.#call(
      'ListChangedBlocks',
      'ebs',
      () =>
        this.#ebs.send(
          new ListChangedBlocksCommand({
            FirstSnapshotId: baseSnapshotId,
            SecondSnapshotId: input.snapshotId,
            ...paging,
          }),
          { abortSignal: input.signal },
        ),
      input.signal,
      { path: `/snapshots/${input.snapshotId}/changedblocks` },
    );
    return this.#page(
      'ListChangedBlocks',
      (out.ChangedBlocks ?? []).map((b) => ({ index: b.BlockIndex, token: b.SecondBlockToken })),
      out,
    );
  }

  /**
   * One block's bytes, checked against `x-amz-Data-Length` and the Base64
   * SHA-256 `x-amz-Checksum`. A block that fails the check is fetched again
   * (as a retryable `integrity` error); one that keeps failing is an
   * `integrity` error that is not retried further.
   */
  async getSnapshotBlock(input: GetBlockInput): Promise<Uint8Array> {
    const path = `/snapshots/${input.snapshotId}/blocks/${input.blockIndex}`;
    try {
      return await this.#call(
        'GetSnapshotBlock',
        'ebs',
        async () => {
          const answer = await this.#sendBlockRequest(path, input);
          if (input.into?.buffer instanceof SharedArrayBuffer) {
            const data = await readBodyInto(answer.body, input.into, input);
            this.#blockHasher ??= new ChunkHasher({ algorithm: 'sha256' });
            const digest = await this.#blockHasher.hash(data);
            verifyBlock(input, data, answer, Buffer.from(digest).toString('base64'));
            return data;
          }
          const hash = createHash('sha256');
          const data =
            input.into !== undefined
              ? await readBodyInto(answer.body, input.into, input, hash)
              : await readBody(answer.body, hash);
          verifyBlock(input, data, answer, hash.digest('base64'));
          return data;
        },
        input.signal,
        { path, ...(input.onRetry !== undefined ? { onRetry: input.onRetry } : {}) },
      );
    } catch (error) {
      // The retry loop gave up on a block that kept failing its checksum: say so.
      if (SyncproxyError.hasCode(error, 'integrity') && typeof error.details?.attempts === 'number') {
        throw new SyncproxyError(`${error.message}; still wrong after ${this.#retry.attempts} attempts`, {
          code: 'integrity',
          retryable: false,
          platform: PLATFORM,
          details: error.details,
          cause: error,
        });
      }
      throw error;
    }
  }

  /**
   * GetSnapshotBlock straight onto the SDK's own signer and request handler (same
   * credentials, agents and timeouts), past its middleware stack: at 64 reads in flight that
   * stack (endpoint rules, schema serde, retry and user-agent middleware) cost more CPU per
   * 512 KiB block than the socket and the checksum together. The answer's shapes are
   * EBS's restJson1 ones (aws-models/ebs.json); an error answer is thrown the way the SDK
   * throws it, so {@link mapAwsError} maps it alike.
   */
  async #sendBlockRequest(path: string, input: GetBlockInput): Promise<BlockAnswer> {
    const endpoint = this.#ebsEndpointUrl;
    this.#ebsSigner ??= this.#ebs.config.signer();
    const signer = await this.#ebsSigner;
    const request = {
      method: 'GET',
      protocol: endpoint.protocol,
      hostname: endpoint.hostname,
      ...(endpoint.port !== '' ? { port: Number(endpoint.port) } : {}),
      path: `${endpoint.pathname.replace(/\/$/, '')}${path}`,
      query: { blockToken: input.blockToken },
      headers: { host: endpoint.host },
    };
    // Wall time, as the SDK signs (an injected clock only paces retries), with the SDK's
    // clock-skew correction learnt from earlier answers.
    const signingDate = new Date(Date.now() + (this.#ebs.config.systemClockOffset ?? 0));
    const signed = (await signer.sign(request, { signingDate })) as BlockRequest;
    const { response } = await this.#ebs.config.requestHandler.handle(signed, {
      ...(input.signal !== undefined ? { abortSignal: input.signal } : {}),
    });
    const body = response.body as NodeJS.ReadableStream & AsyncIterable<Uint8Array>;
    const headers = response.headers;
    const requestId = headers['x-amzn-requestid'];
    if (response.statusCode === 200) {
      const dataLength = headers['x-amz-data-length'];
      return {
        body,
        DataLength: dataLength === undefined ? undefined : Number(dataLength),
        Checksum: headers['x-amz-checksum'],
        ChecksumAlgorithm: headers['x-amz-checksum-algorithm'],
      };
    }
    throw await errorAnswer(response.statusCode, headers, body, requestId);
  }

  /** Releases sockets. */
  close(): void {
    void this.#blockHasher?.close();
    this.#ec2.destroy();
    this.#ebs.destroy();
    for (const agent of this.#agents) agent.destroy();
  }

  #page(
    operation: string,
    blocks: Array<{ index: number | undefined; token: string | undefined }>,
    out: { ExpiryTime?: Date; VolumeSize?: number; BlockSize?: number; NextToken?: string },
  ): BlockPage {
    const checked = blocks.map((b) => {
      if (b.index === undefined || !Number.isSafeInteger(b.index) || b.index < 0) {
        throw protocolError(`${operation} returned a block without a valid BlockIndex (${String(b.index)})`);
      }
      return { index: b.index, token: b.token };
    });
    if (checked.length > 0 && out.ExpiryTime === undefined) {
      throw protocolError(`${operation} returned block tokens without an ExpiryTime`);
    }
    return {
      blocks: checked,
      expiresAtMs: out.ExpiryTime?.getTime() ?? Number.POSITIVE_INFINITY,
      volumeSizeBytes: (out.VolumeSize ?? 0) * GIB,
      blockSize: out.BlockSize ?? EBS_BLOCK_SIZE,
      nextToken: out.NextToken || undefined,
    };
  }

  async #call<T>(
    operation: string,
    service: 'ec2' | 'ebs',
    run: () => Promise<T>,
    signal: AbortSignal | undefined,
    options: {
      path?: string;
      retryOnlyWhenRefused?: boolean;
      onRetry?: (error: SyncproxyError) => void;
    } = {},
  ): Promise<T> {
    const endpoint = service === 'ec2' ? this.ec2Endpoint : this.ebsEndpoint;
    const call = {
      operation,
      method: service === 'ec2' ? 'POST' : 'GET',
      url: `${endpoint}${options.path ?? '/'}`,
    };
    return withRetry(operation, run, {
      policy: this.#retry,
      clock: this.#clock,
      signal,
      mapError: (error) => {
        const mapped = mapAwsError(error, call);
        // A create that may have happened (network error, 5xx) must not be
        // repeated; one AWS refused by throttling may.
        if (options.retryOnlyWhenRefused && mapped.retryable && mapped.code !== 'throttled') {
          return new SyncproxyError(mapped.message, {
            code: mapped.code,
            retryable: false,
            platform: PLATFORM,
            cause: mapped,
          });
        }
        return mapped;
      },
      onRetry: (error, retry) => {
        this.#retries++;
        this.#logger?.debug({ code: error.code, message: error.message }, `${operation} retry ${retry}`);
        options.onRetry?.(error);
      },
    });
  }
}

interface ErrorClass {
  code: ErrorCode;
  retryable: boolean;
  hint?: string;
}

const AUTH_CODES = new Set([
  'AuthFailure',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
  'IncompleteSignature',
  'InvalidClientTokenId',
  'MissingAuthenticationToken',
  'ExpiredToken',
  'ExpiredTokenException',
]);
const PERMISSION_CODES = new Set([
  'UnauthorizedOperation',
  'AccessDeniedException',
  'AccessDenied',
  'OptInRequired',
]);
const THROTTLE_CODES = new Set([
  'RequestLimitExceeded',
  'Throttling',
  'ThrottlingException',
  'RequestThrottledException',
  'TooManyRequestsException',
  'ConcurrentLimitExceededException',
  'SnapshotCreationPerVolumeRateExceeded',
]);
const SERVER_CODES = new Set([
  'InternalError',
  'InternalFailure',
  'InternalServerException',
  'ServiceUnavailable',
  'Unavailable',
]);

function classify(name: string, reason: string | undefined, status: number): ErrorClass {
  if (AUTH_CODES.has(name)) {
    return { code: 'auth', retryable: false, hint: 'check the access key id and the secret access key' };
  }
  if (PERMISSION_CODES.has(name)) {
    return {
      code: 'permission',
      retryable: false,
      hint: 'grant the IAM actions listed in the connector README',
    };
  }
  if (THROTTLE_CODES.has(name) || status === 429) return { code: 'throttled', retryable: true };
  if (SERVER_CODES.has(name) || status >= 500) return { code: 'platform', retryable: true };
  if (name === 'ValidationException' && reason === 'UNRELATED_SNAPSHOTS') {
    return {
      code: 'cbt-reset',
      retryable: false,
      hint: 'the base snapshot is not of this volume’s lineage: run a full sync',
    };
  }
  if (
    name === 'ValidationException' &&
    (reason === 'INVALID_BLOCK_TOKEN' || reason === 'INVALID_PAGE_TOKEN')
  ) {
    return { code: 'protocol', retryable: false };
  }
  if (name === 'ResourceNotFoundException' || name.endsWith('.NotFound') || status === 404) {
    return { code: 'not-found', retryable: false };
  }
  if (name === 'InvalidSnapshot.InUse' || name === 'IncorrectState')
    return { code: 'conflict', retryable: false };
  if (name === 'ServiceQuotaExceededException' || name.endsWith('LimitExceeded')) {
    return { code: 'no-capacity', retryable: false };
  }
  if (status === 401) return { code: 'auth', retryable: false };
  if (status === 403) return { code: 'permission', retryable: false };
  return { code: 'platform', retryable: false };
}

/**
 * A SyncproxyError for anything an AWS call threw: AWS error answers become
 * {@link AwsApiError}s; network failures, timeouts and aborts the core's
 * mapping.
 */
export function mapAwsError(
  error: unknown,
  call: { operation: string; method: string; url: string },
): SyncproxyError {
  if (SyncproxyError.isInstance(error)) return error;
  const e = error as {
    name?: string;
    message?: string;
    Reason?: unknown;
    $fault?: unknown;
    $metadata?: { httpStatusCode?: number; requestId?: string };
  };
  const status = e?.$metadata?.httpStatusCode;
  if (typeof status === 'number' && status >= 500 && e.$fault !== 'client' && e.$fault !== 'server') {
    // A 5xx whose body the SDK could not parse (a load balancer's or a proxy's HTML page): the SDK
    // gives a bare SyntaxError with the status in $metadata. Every 5xx may heal, whatever its body.
    // The parse error's message quotes the body, so it is not repeated here.
    const requestId = e.$metadata?.requestId;
    return new AwsApiError({
      ...call,
      status,
      ...(requestId !== undefined ? { requestId } : {}),
      code: 'platform',
      retryable: true,
      platform: PLATFORM,
      message: `${call.operation} failed: HTTP ${status} with a body that is not an AWS error (a proxy or load balancer answered?)${requestId ? ` [request id ${requestId}]` : ''}`,
    });
  }
  if (typeof status !== 'number' || (e.$fault !== 'client' && e.$fault !== 'server')) {
    return toSyncproxyError(error, { operation: call.operation, platform: PLATFORM });
  }
  const name = e.name ?? 'UnknownError';
  const reason = typeof e.Reason === 'string' ? e.Reason : undefined;
  const kind = classify(name, reason, status);
  const requestId = e.$metadata?.requestId;
  const detail = e.message && e.message !== name && e.message !== 'UnknownError' ? `: ${e.message}` : '';
  return new AwsApiError({
    ...call,
    status,
    platformCode: name,
    ...(reason !== undefined ? { reason } : {}),
    ...(requestId !== undefined ? { requestId } : {}),
    code: kind.code,
    retryable: kind.retryable,
    platform: PLATFORM,
    cause: error,
    message: `${call.operation} failed: HTTP ${status} ${name}${reason ? ` (${reason})` : ''}${detail}${kind.hint ? ` (${kind.hint})` : ''}${requestId ? ` [request id ${requestId}]` : ''}`,
  });
}

/**
 * The body as it arrives, copied into `target` and hashed piece by piece while
 * each piece is in cache: on this thread, the SHA-256 costs less than handing the
 * block to a worker (the wake-up and the copy across), and nothing waits for it
 * after the last byte. A body longer than the target is refused (the checksum
 * could not be taken over what was dropped).
 */
async function readBodyInto(
  body: AsyncIterable<Uint8Array>,
  target: Uint8Array,
  input: GetBlockInput,
  hash?: Hash,
): Promise<Uint8Array> {
  let at = 0;
  for await (const chunk of body) {
    if (at + chunk.length > target.length) {
      throw integrityError(input, `the body has more than the ${target.length} bytes asked for`);
    }
    target.set(chunk, at);
    hash?.update(chunk);
    at += chunk.length;
  }
  return target.subarray(0, at);
}

async function readBody(body: AsyncIterable<Uint8Array>, hash?: Hash): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) {
    hash?.update(chunk);
    chunks.push(chunk);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/** The request {@link AwsClient} signs and sends for GetSnapshotBlock, as the SDK's handler takes it. */
type BlockRequest = Parameters<NodeHttpHandler['handle']>[0];

/** A 200 answer of GetSnapshotBlock: the body stream and the headers the SDK would parse. */
interface BlockAnswer
  extends Pick<GetSnapshotBlockCommandOutput, 'DataLength' | 'Checksum' | 'ChecksumAlgorithm'> {
  body: AsyncIterable<Uint8Array>;
}

/**
 * An EBS error answer as the SDK would throw it (name from `x-amzn-ErrorType`, `Message` and
 * `Reason` from the body, `$fault` and `$metadata`); a body that is not JSON gives only the
 * status, as the SDK's own parse failure does (a proxy's or a load balancer's page).
 */
async function errorAnswer(
  status: number,
  headers: Record<string, string | undefined>,
  body: AsyncIterable<Uint8Array>,
  requestId: string | undefined,
): Promise<Error> {
  const text = Buffer.from(await readBody(body)).toString('utf8');
  const $metadata = { httpStatusCode: status, ...(requestId !== undefined ? { requestId } : {}) };
  let parsed: Record<string, unknown>;
  try {
    parsed = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
    if (parsed === null || typeof parsed !== 'object') throw new SyntaxError('not a JSON object');
  } catch {
    return Object.assign(new SyntaxError(`${status} answer whose body is not JSON: ${text.slice(0, 200)}`), {
      $metadata,
    });
  }
  // restJson1 error names: the header first, then the body's `__type` or `code`, without a
  // namespace (`aws.ebs#X`) or a trailing URI (`X:http://...`).
  const raw = headers['x-amzn-errortype'] ?? parsed.__type ?? parsed.code ?? 'UnknownError';
  const name = String(raw).split(':')[0]!.split('#').pop()!;
  const message = parsed.Message ?? parsed.message;
  return Object.assign(new Error(typeof message === 'string' ? message : name), {
    name,
    ...(parsed.Reason !== undefined ? { Reason: parsed.Reason } : {}),
    $fault: status >= 500 ? 'server' : 'client',
    $metadata,
  });
}

function verifyBlock(
  input: GetBlockInput,
  data: Uint8Array,
  out: Pick<GetSnapshotBlockCommandOutput, 'DataLength' | 'Checksum' | 'ChecksumAlgorithm'>,
  actual: string,
): void {
  const { DataLength: dataLength, Checksum: checksum, ChecksumAlgorithm: algorithm } = out;
  if (algorithm !== undefined && algorithm !== 'SHA256') {
    throw new SyncproxyError(
      `GetSnapshotBlock ${input.snapshotId} block ${input.blockIndex}: checksum algorithm ${algorithm} is not supported (expected SHA256)`,
      { code: 'protocol', retryable: false, platform: PLATFORM },
    );
  }
  if (dataLength === undefined || dataLength !== data.length) {
    throw integrityError(
      input,
      `x-amz-Data-Length says ${String(dataLength)} bytes, the body has ${data.length}`,
    );
  }
  if (checksum === undefined) throw integrityError(input, 'the answer has no x-amz-Checksum');
  if (actual !== checksum) {
    throw integrityError(input, `SHA-256 of the body is ${actual}, x-amz-Checksum says ${checksum}`);
  }
}

function integrityError(input: GetBlockInput, what: string): SyncproxyError {
  return new SyncproxyError(
    `GetSnapshotBlock ${input.snapshotId} block ${input.blockIndex} failed verification: ${what}`,
    {
      code: 'integrity',
      retryable: true,
      platform: PLATFORM,
      details: { snapshotId: input.snapshotId, blockIndex: input.blockIndex },
    },
  );
}

function protocolError(message: string): SyncproxyError {
  return new SyncproxyError(message, { code: 'protocol', retryable: false, platform: PLATFORM });
}

/** The config's own keys, as the SDK takes them. */
function keysOf(config: AwsConfig): AwsCredentials {
  if (config.accessKeyId === undefined || config.secretAccessKey === undefined) {
    throw new SyncproxyError('accessKeyId and secretAccessKey are required without a credential provider', {
      code: 'config',
      platform: PLATFORM,
      details: { field: config.accessKeyId === undefined ? 'accessKeyId' : 'secretAccessKey' },
    });
  }
  return {
    accessKeyId: config.accessKeyId,
    secretAccessKey: config.secretAccessKey,
    ...(config.sessionToken ? { sessionToken: config.sessionToken } : {}),
  };
}
