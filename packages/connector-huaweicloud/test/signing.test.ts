import { inspect } from 'node:util';
import { AKSKSigner } from '@huaweicloud/huaweicloud-sdk-core/auth/AKSKSigner.js';
import { huaweicloud } from '@syncproxy/connector-huaweicloud';
import { type MockHuaweiCloud, startMockHuaweiCloud } from '@syncproxy/connector-huaweicloud/mock';
import { type Logger, SyncproxyError } from '@syncproxy/core';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fastConnector } from './connector.js';

let cloud: MockHuaweiCloud;
beforeAll(async () => {
  cloud = await startMockHuaweiCloud();
  cloud.addServer({ name: 'web-1', volumesGb: [1] });
});
afterAll(() => cloud.close());

/** A ListServersDetails request signed by the official SDK's signer, sent as the SDK would send it. */
async function officialSignedRequest(secretAccessKey: string) {
  const url = `${cloud.api.url}/v1/${cloud.state.projectId}/cloudservers/detail`;
  const headers = { 'Content-Type': 'application/json', 'X-Project-Id': cloud.state.projectId };
  const signed = AKSKSigner.sign(
    { endpoint: url, method: 'GET', headers, queryParams: { limit: 10, offset: 1 } } as never,
    { getAk: () => cloud.credentials.accessKeyId, getSk: () => secretAccessKey } as never,
  ) as Record<string, string>;
  const response = await request(`${url}?limit=10&offset=1`, { method: 'GET', headers: signed });
  return { status: response.statusCode, body: (await response.body.json()) as Record<string, unknown> };
}

describe('SDK-HMAC-SHA256', () => {
  it('a request signed by the official SDK signer passes the mock', async () => {
    const { status, body } = await officialSignedRequest(cloud.credentials.secretAccessKey);
    expect(status).toBe(200);
    expect(body.count).toBe(2);
  });

  it('the same request with a wrong SK fails with the API gateway error APIGW.0301', async () => {
    const { status, body } = await officialSignedRequest(`${cloud.credentials.secretAccessKey}x`);
    expect(status).toBe(401);
    expect(body).toMatchObject({
      error_code: 'APIGW.0301',
      error_msg: 'Incorrect IAM authentication information: verify aksk signature fail',
    });
  });

  it('an OBS request with a wrong SK fails with SignatureDoesNotMatch (403), mapped to code auth', async () => {
    const wrong = { ...cloud.config(), secretAccessKey: `${cloud.credentials.secretAccessKey}x` };
    const session = await fastConnector({ dataPath: 'export' }).connect(wrong);
    try {
      const sweep = session.sweep?.({ dryRun: true });
      await expect(sweep).rejects.toMatchObject({ code: 'auth', retryable: false });
    } finally {
      await session.close();
    }
  });
});

describe('config', () => {
  it('a project ID where the region name belongs is a config error naming the field', async () => {
    const error = await huaweicloud
      .connect({ ...cloud.config(), project: '0a1b2c3d4e5f60718293a4b5c6d7e8f9' })
      .catch((e: unknown) => e);
    expect(SyncproxyError.hasCode(error, 'config')).toBe(true);
    const e = error as SyncproxyError;
    expect(e.retryable).toBe(false);
    expect(e.message).toContain('project');
    expect(e.message).toContain('give the project as its region name (such as tr-west-1)');
    expect(e.details?.issues).toEqual([expect.objectContaining({ path: 'project' })]);
  });

  it('the region name is looked up in IAM and the project id used in every path', async () => {
    const session = await fastConnector().connect(cloud.config());
    try {
      const status = await session.verify();
      expect(status).toMatchObject({ status: 'normal', hostCount: 1 });
      const paths = cloud.calls.api.map((c) => `${c.method} ${c.path}${c.query}`);
      expect(paths).toContain('GET /v3/projects?name=tr-west-1');
      expect(paths).toContain(`GET /v1/${cloud.state.projectId}/cloudservers/detail?offset=1&limit=100`);
    } finally {
      await session.close();
    }
  });

  it('a proxy ECS that does not exist is a config error naming the proxy field', async () => {
    const session = await fastConnector().connect({ ...cloud.config(), proxy: 'no-such-ecs' });
    try {
      await expect(session.verify()).rejects.toMatchObject({
        code: 'config',
        retryable: false,
        message: 'proxy: ECS no-such-ecs (the sync proxy) was not found in tr-west-1',
      });
    } finally {
      await session.close();
    }
  });

  it('network requirements: IAM, ECS, EVS, CBR and the bucket on 443', () => {
    const config = huaweicloud.configSchema.parse({
      accessKeyId: 'HPUAMOCKSYNCPROXY0001',
      secretAccessKey: 's',
      project: 'tr-west-1',
      proxy: 'p',
      bucket: 'my-cache',
    });
    expect(huaweicloud.networkRequirements(config).map((r) => `${r.host}:${r.port}`)).toEqual([
      'iam.tr-west-1.myhuaweicloud.com:443',
      'ecs.tr-west-1.myhuaweicloud.com:443',
      'evs.tr-west-1.myhuaweicloud.com:443',
      'cbr.tr-west-1.myhuaweicloud.com:443',
      'my-cache.obs.tr-west-1.myhuaweicloud.com:443',
    ]);
  });
});

describe('secrets', () => {
  it('the SK never appears in logs or errors (util.inspect included)', async () => {
    const lines: string[] = [];
    const logger: Logger = {
      debug: (...args: unknown[]) => {
        lines.push(...args.map((a) => (typeof a === 'string' ? a : inspect(a, { depth: 8 }))));
      },
      info: (...args: unknown[]) => {
        lines.push(...args.map((a) => (typeof a === 'string' ? a : inspect(a, { depth: 8 }))));
      },
      warn: (...args: unknown[]) => {
        lines.push(...args.map((a) => (typeof a === 'string' ? a : inspect(a, { depth: 8 }))));
      },
      error: (...args: unknown[]) => {
        lines.push(...args.map((a) => (typeof a === 'string' ? a : inspect(a, { depth: 8 }))));
      },
    };
    const secret = `${cloud.credentials.secretAccessKey}x`;
    const session = await fastConnector().connect({ ...cloud.config(), secretAccessKey: secret }, { logger });
    const error = await session.verify().catch((e: unknown) => e);
    await session.close();
    expect(SyncproxyError.hasCode(error, 'auth')).toBe(true);
    expect((error as Error).message).toMatch(/APIGW\.0301/);
    const texts = [
      ...lines,
      inspect(error, { depth: 8 }),
      JSON.stringify(error),
      String((error as Error).stack),
    ];
    for (const text of texts) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(cloud.credentials.secretAccessKey);
    }
  });
});
