import { createHash } from 'node:crypto';
import type { MockRequest, MockResponse, RouteTable } from '@syncproxy/testkit/mock';
import { type MockCredentials, verifySignature } from './sigv4.js';
import type { MockAwsState, MockSnapshot } from './state.js';
import { BLOCK_SIZE } from './volume-disk.js';

const GIB = 1024 ** 3;
const SNAPSHOT_ID = /^snap-[0-9a-f]+$/;

/**
 * A restJson1 error as EBS sends it: the name in `x-amzn-ErrorType`, the
 * body `{ Message, Reason }` (aws-models/ebs.json).
 */
export function ebsError(status: number, type: string, message: string, reason?: string): MockResponse {
  return {
    status,
    headers: {
      'content-type': 'application/json',
      'x-amzn-errortype': type,
      'x-amzn-requestid': requestId(),
    },
    body: reason === undefined ? { Message: message } : { Message: message, Reason: reason },
  };
}

/** The three EBS direct read APIs. */
export function ebsRoutes(options: { credentials: MockCredentials }): RouteTable<MockAwsState> {
  const guarded =
    (operation: string, handler: (request: MockRequest, state: MockAwsState) => MockResponse) =>
    async (request: MockRequest, state: MockAwsState): Promise<MockResponse> => {
      state.count(operation);
      const problem = await verifySignature(request, {
        credentials: options.credentials,
        region: state.region,
        service: 'ebs',
      });
      if (problem !== undefined) {
        state.stats.authFailures++;
        // API Gateway-style answers, as the EBS endpoint gives them.
        const type =
          problem.kind === 'unknown-key'
            ? 'UnrecognizedClientException'
            : problem.kind === 'missing'
              ? 'MissingAuthenticationTokenException'
              : 'InvalidSignatureException';
        return {
          status: 403,
          headers: {
            'content-type': 'application/json',
            'x-amzn-errortype': type,
            'x-amzn-requestid': requestId(),
          },
          body: { message: problem.message },
        };
      }
      return handler(request, state);
    };
  return {
    'GET /snapshots/:snapshotId/blocks': guarded('ListSnapshotBlocks', (request, state) =>
      listBlocks(request, state, undefined),
    ),
    'GET /snapshots/:snapshotId/changedblocks': guarded('ListChangedBlocks', (request, state) => {
      const first = request.query.get('firstSnapshotId');
      if (first === null) {
        return ebsError(
          400,
          'ValidationException',
          'firstSnapshotId and secondSnapshotId must be given together',
          'INVALID_PARAMETER_VALUE',
        );
      }
      return listBlocks(request, state, first);
    }),
    'GET /snapshots/:snapshotId/blocks/:blockIndex': guarded('GetSnapshotBlock', getBlock),
  };
}

function readable(state: MockAwsState, id: string | undefined): MockSnapshot | MockResponse {
  if (id === undefined || !SNAPSHOT_ID.test(id)) {
    return ebsError(
      400,
      'ValidationException',
      `The snapshot ID ${String(id)} is not valid.`,
      'INVALID_SNAPSHOT_ID',
    );
  }
  const snapshot = state.snapshots.get(id);
  if (snapshot === undefined) {
    return ebsError(
      404,
      'ResourceNotFoundException',
      `The snapshot '${id}' does not exist.`,
      'SNAPSHOT_NOT_FOUND',
    );
  }
  // UNCONFIRMED: the exact error AWS gives for a pending or archived snapshot
  // is not documented; the FAQ only says such snapshots are refused.
  if (snapshot.state !== 'completed') {
    return ebsError(
      400,
      'ValidationException',
      `The snapshot '${id}' is not in a completed state (${snapshot.state}).`,
      'INVALID_SNAPSHOT_ID',
    );
  }
  if (snapshot.storageTier === 'archive') {
    return ebsError(
      400,
      'ValidationException',
      `The snapshot '${id}' is archived and cannot be read with the EBS direct APIs.`,
      'INVALID_SNAPSHOT_ID',
    );
  }
  return snapshot;
}

function isResponse(value: MockSnapshot | MockResponse): value is MockResponse {
  return !('view' in value);
}

function listBlocks(request: MockRequest, state: MockAwsState, firstId: string | undefined): MockResponse {
  const operation = firstId === undefined ? 'ListSnapshotBlocks' : 'ListChangedBlocks';
  const second = readable(state, request.params.snapshotId);
  if (isResponse(second)) return second;
  let first: MockSnapshot | undefined;
  if (firstId !== undefined) {
    const found = readable(state, firstId);
    if (isResponse(found)) return found;
    if (found.volumeId !== second.volumeId) {
      return ebsError(
        400,
        'ValidationException',
        `The snapshots ${firstId} and ${second.id} are not related.`,
        'UNRELATED_SNAPSHOTS',
      );
    }
    first = found;
  }
  const maxParam = request.query.get('maxResults');
  const maxRaw = maxParam === null ? 10_000 : Number(maxParam);
  if (!Number.isInteger(maxRaw) || maxRaw < 1) {
    return ebsError(
      400,
      'ValidationException',
      `maxResults ${maxParam} is not valid.`,
      'INVALID_PARAMETER_VALUE',
    );
  }
  // Values under 100 are treated as 100 (EBS direct FAQ); the model's upper bound is 10 000.
  const maxResults = Math.min(10_000, Math.max(100, maxRaw));
  const now = state.now();
  let start = 0;
  const pageToken = request.query.get('pageToken');
  if (pageToken !== null) {
    // A page token wins over startingBlockIndex (EBS direct FAQ).
    const fields = state.openToken(pageToken);
    if (
      fields === undefined ||
      fields[0] !== 'p' ||
      fields[1] !== operation ||
      fields[2] !== second.id ||
      fields[3] !== (firstId ?? '') ||
      Number(fields[5]) <= now
    ) {
      return ebsError(
        400,
        'ValidationException',
        'The pagination token is not valid or has expired.',
        'INVALID_PAGE_TOKEN',
      );
    }
    start = Number(fields[4]);
  } else {
    const startParam = request.query.get('startingBlockIndex');
    if (startParam !== null) {
      start = Number(startParam);
      if (!Number.isSafeInteger(start) || start < 0) {
        return ebsError(
          400,
          'ValidationException',
          `startingBlockIndex ${startParam} is not valid.`,
          'INVALID_PARAMETER_VALUE',
        );
      }
    }
  }
  const volumeBlocks = Math.ceil(second.volumeSizeGiB * (GIB / BLOCK_SIZE));
  const scanEnd = Math.min(volumeBlocks, start + state.maxBlocksScannedPerPage);
  const expiresMs = now + state.blockTokenLifetimeSec * 1000;
  const items: Array<{ index: number; firstToken?: string; secondToken?: string }> = [];
  const written = second.view.writtenBlocks();
  const changed = first === undefined ? undefined : second.view.changedBlocks(first.view);
  const count = changed === undefined ? written.length : changed.length;
  const at = (i: number): { index: number; inTarget: boolean } =>
    changed === undefined ? { index: written[i]!, inTarget: true } : changed[i]!;
  const held = first?.view.writtenBlocks();
  let position = lowerBound(count, (i) => at(i).index, start);
  let next: number | undefined;
  for (; position < count; position++) {
    const block = at(position);
    if (block.index >= scanEnd) break;
    if (items.length === maxResults) {
      next = block.index;
      break;
    }
    const inFirst = held !== undefined && binaryHas(held, block.index);
    items.push({
      index: block.index,
      ...(inFirst
        ? { firstToken: state.sealToken(['b', first!.id, String(block.index), String(expiresMs)]) }
        : {}),
      ...(block.inTarget
        ? { secondToken: state.sealToken(['b', second.id, String(block.index), String(expiresMs)]) }
        : {}),
    });
  }
  if (next === undefined && position < count && scanEnd < volumeBlocks) next = scanEnd;
  const body: Record<string, unknown> =
    first === undefined
      ? { Blocks: items.map((b) => ({ BlockIndex: b.index, BlockToken: b.secondToken })) }
      : {
          ChangedBlocks: items.map((b) => ({
            BlockIndex: b.index,
            ...(b.firstToken !== undefined ? { FirstBlockToken: b.firstToken } : {}),
            ...(b.secondToken !== undefined ? { SecondBlockToken: b.secondToken } : {}),
          })),
        };
  body.ExpiryTime = expiresMs / 1000;
  body.VolumeSize = second.volumeSizeGiB;
  body.BlockSize = BLOCK_SIZE;
  if (next !== undefined) {
    if (items.length === 0) state.stats.emptyPages++;
    body.NextToken = state.sealToken([
      'p',
      operation,
      second.id,
      firstId ?? '',
      String(next),
      String(now + state.pageTokenLifetimeSec * 1000),
    ]);
  }
  return { status: 200, headers: { 'x-amzn-requestid': requestId() }, body };
}

function getBlock(request: MockRequest, state: MockAwsState): MockResponse {
  const snapshot = readable(state, request.params.snapshotId);
  if (isResponse(snapshot)) return snapshot;
  const index = Number(request.params.blockIndex);
  const volumeBlocks = Math.ceil(snapshot.volumeSizeGiB * (GIB / BLOCK_SIZE));
  if (!Number.isSafeInteger(index) || index < 0 || index >= volumeBlocks) {
    return ebsError(
      400,
      'ValidationException',
      `The block index ${request.params.blockIndex} is not valid.`,
      'INVALID_BLOCK',
    );
  }
  const token = request.query.get('blockToken');
  const fields = token === null ? undefined : state.openToken(token);
  if (
    fields === undefined ||
    fields[0] !== 'b' ||
    fields[1] !== snapshot.id ||
    fields[2] !== String(index) ||
    Number(fields[3]) <= state.now()
  ) {
    state.stats.refusedBlockTokens++;
    return ebsError(
      400,
      'ValidationException',
      'The block token is not valid or has expired.',
      'INVALID_BLOCK_TOKEN',
    );
  }
  const data = snapshot.view.read(index * BLOCK_SIZE, BLOCK_SIZE);
  let checksum = snapshot.checksums.get(index);
  if (checksum === undefined) {
    checksum = createHash('sha256').update(data).digest('base64');
    snapshot.checksums.set(index, checksum);
  }
  if (state.corruptChecksums > 0) {
    state.corruptChecksums--;
    state.stats.corruptedBlocks++;
    checksum = createHash('sha256').update(data).update('corrupted').digest('base64');
  }
  state.stats.blocksServed++;
  state.stats.bytesServed += data.length;
  return {
    status: 200,
    headers: {
      'x-amz-data-length': String(data.length),
      'x-amz-checksum': checksum,
      'x-amz-checksum-algorithm': 'SHA256',
      'x-amzn-requestid': requestId(),
    },
    body: data,
  };
}

function lowerBound(length: number, indexAt: (i: number) => number, index: number): number {
  let lo = 0;
  let hi = length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (indexAt(mid) < index) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function binaryHas(list: readonly number[], value: number): boolean {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return list[lo] === value;
}

let requests = 0;
function requestId(): string {
  requests++;
  return `00000000-0000-4000-8000-${requests.toString(16).padStart(12, '0')}`;
}
