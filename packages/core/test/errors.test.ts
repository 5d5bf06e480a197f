import { diskSnapshotOf, PlatformApiError, SyncproxyError, toSyncproxyError } from '@syncproxy/core';
import { describe, expect, it } from 'vitest';

describe('SyncproxyError', () => {
  it('is recognised by its marker, and is retryable by default only for throttled, network and timeout', () => {
    const codes = ['throttled', 'network', 'timeout', 'auth', 'integrity', 'config'] as const;
    expect(codes.map((code) => new SyncproxyError('x', { code }).retryable)).toEqual([
      true,
      true,
      true,
      false,
      false,
      false,
    ]);
    expect(SyncproxyError.isInstance(new SyncproxyError('x', { code: 'io' }))).toBe(true);
    expect(SyncproxyError.isInstance(new Error('x'))).toBe(false);
    expect(SyncproxyError.isInstance({ code: 'io', retryable: true })).toBe(false);
  });

  it('serialises its cause chain to JSON, also when the cause is a plain error-like object', () => {
    const error = new SyncproxyError('read failed', {
      code: 'io',
      platform: 'aws',
      cause: Object.assign(Object.create(null), { name: 'Error', message: 'inner', code: 'EIO' }),
    });
    expect(JSON.parse(JSON.stringify(error))).toEqual({
      name: 'SyncproxyError',
      code: 'io',
      message: 'read failed',
      retryable: false,
      platform: 'aws',
      cause: { name: 'Error', message: 'inner', code: 'EIO' },
    });
  });

  it('comes back from its JSON with code, retryable, platform, details and cause, through structuredClone', () => {
    const error = new SyncproxyError('NBD read failed', {
      code: 'network',
      retryable: false,
      platform: 'vmware',
      details: { offset: 4096 },
      cause: new Error('socket closed'),
    });
    const back = SyncproxyError.fromJSON(structuredClone(error.toJSON()));
    expect(SyncproxyError.isInstance(back)).toBe(true);
    expect(back.toJSON()).toEqual(error.toJSON());
    expect([back.code, back.retryable, back.platform, back.details]).toEqual([
      'network',
      false,
      'vmware',
      { offset: 4096 },
    ]);
    const unknown = SyncproxyError.fromJSON({ oops: 1 });
    expect([unknown.code, unknown.message, unknown.cause]).toEqual([
      'internal',
      'an error came back in an unknown form',
      { oops: 1 },
    ]);
  });
});

describe('PlatformApiError', () => {
  it('maps HTTP statuses to codes, is retryable for 408/429/5xx, and keeps query strings out of the URL', () => {
    const error = new PlatformApiError({
      operation: 'GetSnapshotBlock',
      method: 'GET',
      url: 'https://ebs.eu-west-1.amazonaws.com/snapshots/snap-1/blocks/3?blockToken=SECRETTOKEN',
      status: 503,
      requestId: 'req-1',
      platformCode: 'InternalServerException',
      platform: 'aws',
    });
    expect(error).toMatchObject({ code: 'platform', retryable: true, status: 503, platform: 'aws' });
    expect(error.message).toBe(
      'GetSnapshotBlock failed: HTTP 503 InternalServerException from GET https://ebs.eu-west-1.amazonaws.com/snapshots/snap-1/blocks/3?… (request id req-1)',
    );
    expect(JSON.stringify(error)).not.toContain('SECRETTOKEN');
    const statuses = [401, 403, 404, 409, 408, 429, 400];
    expect(
      statuses.map(
        (status) => new PlatformApiError({ operation: 'op', method: 'GET', url: 'u', status }).code,
      ),
    ).toEqual(['auth', 'permission', 'not-found', 'conflict', 'timeout', 'throttled', 'platform']);
    expect(new PlatformApiError({ operation: 'op', method: 'GET', url: 'u', status: 400 }).retryable).toBe(
      false,
    );
  });
});

describe('toSyncproxyError', () => {
  it('maps Node system errors along the cause chain to codes', () => {
    const sys = (code: string) => Object.assign(new Error(code), { code });
    expect(toSyncproxyError(new TypeError('fetch failed', { cause: sys('ECONNRESET') })).code).toBe(
      'network',
    );
    expect(toSyncproxyError(sys('ETIMEDOUT')).code).toBe('timeout');
    expect(toSyncproxyError(sys('ENOSPC')).code).toBe('io');
    expect(toSyncproxyError(sys('EACCES')).code).toBe('permission');
    expect(toSyncproxyError(sys('CERT_HAS_EXPIRED')).code).toBe('tls');
    expect(toSyncproxyError(Object.assign(new Error('a'), { name: 'AbortError' })).code).toBe('aborted');
    const plain = toSyncproxyError(new RangeError('bad offset'), { operation: 'read' });
    expect(plain).toMatchObject({ code: 'internal', retryable: false, message: 'read failed: bad offset' });
  });
});

describe('diskSnapshotOf', () => {
  const snapshot = {
    id: 'snap-set-1',
    platform: 'aws',
    hostId: 'i-1',
    createdAt: '2026-11-24T00:00:00.000Z',
    disks: [{ diskId: 'vol-1', sizeBytes: 1024, data: { snapshotId: 'snap-1' } }],
  };

  it('finds the disk part of a snapshot, or says which disk and snapshot with a not-found error', () => {
    expect(diskSnapshotOf(snapshot, 'vol-1').data).toEqual({ snapshotId: 'snap-1' });
    expect(() => diskSnapshotOf(snapshot, 'vol-2', { role: 'base snapshot', noun: 'volume' })).toThrow(
      expect.objectContaining({
        code: 'not-found',
        platform: 'aws',
        message: 'volume vol-2 is not part of base snapshot snap-set-1',
      }),
    );
  });
});
