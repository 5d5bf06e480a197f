import { apiError, HuaweiApiError, obsError } from '@syncproxy/connector-huaweicloud';
import { type MockHuaweiCloud, startMockHuaweiCloud } from '@syncproxy/connector-huaweicloud/mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fastConnector } from './connector.js';

describe('error mapping', () => {
  const map = (status: number, body: unknown) =>
    apiError(
      'ListServersDetails',
      'GET',
      'https://ecs.example/v1/p/cloudservers/detail?x=1',
      status,
      { 'x-request-id': 'r1' },
      JSON.stringify(body),
    );

  it.each([
    [401, { error_code: 'APIGW.0301', error_msg: 'verify aksk signature fail' }, 'auth', false, 'APIGW.0301'],
    [403, { error_code: 'APIGW.0302', error_msg: 'not authorized' }, 'permission', false, 'APIGW.0302'],
    [
      404,
      { error: { code: 'Ecs.0114', message: 'Instance could not be found.' } },
      'not-found',
      false,
      'Ecs.0114',
    ],
    [409, { error: { code: 'EVS.2038', message: 'busy' } }, 'conflict', false, 'EVS.2038'],
    [429, { error_code: 'APIGW.0308', error_msg: 'throttling threshold' }, 'throttled', true, 'APIGW.0308'],
    [503, { error: { code: 'Common.0013', message: 'unavailable' } }, 'platform', true, 'Common.0013'],
    [
      404,
      { error: { code: 404, title: 'Not Found', message: 'Could not find project' } },
      'not-found',
      false,
      '404',
    ],
  ])('HTTP %i %j is code %s, retryable %s', (status, body, code, retryable, platformCode) => {
    const error = map(status, body);
    expect(HuaweiApiError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code, retryable, platformCode, requestId: 'r1', status });
    expect(error.message).toContain(`HTTP ${status} ${platformCode}`);
    expect(error.url).toBe('https://ecs.example/v1/p/cloudservers/detail?…');
  });

  it('OBS: SignatureDoesNotMatch is auth, SlowDown throttled, NoSuchKey not-found', () => {
    const xml = (c: string) => `<Error><Code>${c}</Code><Message>m</Message></Error>`;
    expect(obsError('GetObject', 'GET', 'u', 403, {}, xml('SignatureDoesNotMatch'))).toMatchObject({
      code: 'auth',
      retryable: false,
    });
    expect(obsError('GetObject', 'GET', 'u', 503, {}, xml('SlowDown'))).toMatchObject({
      code: 'throttled',
      retryable: true,
    });
    expect(obsError('GetObject', 'GET', 'u', 404, {}, xml('NoSuchKey'))).toMatchObject({
      code: 'not-found',
      platformCode: 'NoSuchKey',
    });
  });
});

describe('inventory', () => {
  let cloud: MockHuaweiCloud;
  beforeAll(async () => {
    cloud = await startMockHuaweiCloud();
    for (let i = 0; i < 130; i++) cloud.addServer({ name: `vm-${i}`, volumesGb: [1, 2] });
  });
  afterAll(() => cloud.close());

  it('lists every ECS and its EVS disks across pages (ECS offset is a page number, EVS an item offset)', async () => {
    const session = await fastConnector().connect(cloud.config());
    try {
      const hosts = await session.listHosts();
      expect(hosts).toHaveLength(130);
      expect(hosts[129]!.disks.map((d) => [d.sizeBytes, d.boot])).toEqual([
        [1024 ** 3, true],
        [2 * 1024 ** 3, false],
      ]);
      const pages = cloud.calls.api.map((c) => `${c.path.replace(cloud.state.projectId, 'P')}${c.query}`);
      expect(pages.filter((p) => p.startsWith('/v1/P/cloudservers/detail'))).toEqual([
        '/v1/P/cloudservers/detail?offset=1&limit=100',
        '/v1/P/cloudservers/detail?offset=2&limit=100',
      ]);
      expect(pages.filter((p) => p.startsWith('/v2/P/cloudvolumes/detail'))).toEqual([
        '/v2/P/cloudvolumes/detail?offset=0&limit=100',
        '/v2/P/cloudvolumes/detail?offset=100&limit=100',
        '/v2/P/cloudvolumes/detail?offset=200&limit=100',
      ]);
    } finally {
      await session.close();
    }
  });

  it("reaches endpoints named by host name through ctx.hostOverrides (the products' name -> IP records)", async () => {
    const rename = (url: string) => url.replace('127.0.0.1', 'api.huaweicloud.internal');
    const config = cloud.config();
    const endpoints = Object.fromEntries(Object.entries(config.endpoints).map(([k, v]) => [k, rename(v)]));
    const session = await fastConnector().connect(
      { ...config, endpoints },
      { hostOverrides: { 'api.huaweicloud.internal': '127.0.0.1' } },
    );
    try {
      await expect(session.verify()).resolves.toMatchObject({ status: 'normal', hostCount: 130 });
    } finally {
      await session.close();
    }
  });
});
