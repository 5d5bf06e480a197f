import { startMockAws } from '@syncproxy/connector-aws/mock';
import { afterEach, describe, expect, test } from 'vitest';
import { AwsClient } from '../src/client.js';
import { awsConfigSchema } from '../src/config.js';

let open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const thing of open.reverse()) await thing.close();
  open = [];
});

async function setup() {
  const aws = await startMockAws();
  open.push(aws);
  aws.addInstance({ name: 'db', volumes: [{ sizeBytes: 1024 ** 3 }] });
  const client = new AwsClient({
    config: awsConfigSchema.parse(aws.config()),
    retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
  });
  open.push({ close: async () => client.close() });
  return { aws, client };
}

const HTML_502 =
  '<html><head><title>502 Bad Gateway</title></head><body><center>502 Bad Gateway</center></body></html>';

describe('AWS error mapping', () => {
  test('a 5xx with an HTML body (a load balancer page) is retried, and succeeds when the platform recovers', async () => {
    const { aws, client } = await setup();
    const fault = aws.faults.add({
      kind: 'status',
      status: 502,
      body: HTML_502,
      headers: { 'content-type': 'text/html' },
      method: 'POST',
      times: 2,
    });
    const instances = await client.describeInstances();
    expect(instances.length).toBe(1);
    expect(fault.hits).toBe(2);
    expect(client.retries).toBe(2);
  });

  test('a 5xx with an HTML body that never ends is retried, then a platform error no longer retryable (the client owned the retries)', async () => {
    const { aws, client } = await setup();
    const fault = aws.faults.add({
      kind: 'status',
      status: 503,
      body: HTML_502,
      headers: { 'content-type': 'text/html' },
      method: 'POST',
    });
    const error = await client.describeInstances().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({
      code: 'platform',
      retryable: false,
      platform: 'aws',
      details: { attempts: 3 },
    });
    expect((error as Error).message).toContain('HTTP 503');
    expect(fault.hits).toBe(3);
  });

  test('an EBS direct 5xx with an HTML body is retried like any 5xx', async () => {
    const { aws, client } = await setup();
    const fault = aws.faults.add({
      kind: 'status',
      status: 502,
      body: HTML_502,
      headers: { 'content-type': 'text/html' },
      path: /^\/snapshots\//,
      times: 2,
    });
    const error = await client.listBlocks({ snapshotId: 'snap-0123456789abcdef0' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    // Retried past the two HTML pages, then the platform's real answer: no such snapshot.
    expect(fault.hits).toBe(2);
    expect(error).toMatchObject({ code: 'not-found' });
  });

  test('a TCP reset is a network error, not a timeout', async () => {
    const { aws, client } = await setup();
    aws.faults.add({ kind: 'reset', method: 'POST' });
    const error = await client.describeInstances().then(
      () => undefined,
      (e: unknown) => e,
    );
    // A network error, retried by the client; once its retries are spent it is no longer retryable.
    expect(error).toMatchObject({ code: 'network', retryable: false, details: { attempts: 3 } });
  });
});
