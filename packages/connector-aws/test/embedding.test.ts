import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromIni } from '@aws-sdk/credential-provider-ini';
import { createAwsConnector } from '@syncproxy/connector-aws';
import { type MockAws, startMockAws } from '@syncproxy/connector-aws/mock';
import { SyncproxyError } from '@syncproxy/core';
import { pino } from 'pino';
import { afterEach, describe, expect, test } from 'vitest';

const FAST = { snapshotWait: { initialDelayMs: 0 }, retry: { baseDelayMs: 1, maxDelayMs: 5 } };

let open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const thing of open.reverse()) await thing.close();
  open = [];
});

async function mockAws(): Promise<MockAws> {
  const aws = await startMockAws({ snapshotPollsUntilCompleted: 2 });
  open.push(aws);
  aws.addInstance({ name: 'web', volumes: [{ sizeBytes: 1024 ** 3 }] });
  return aws;
}

/** The form without its keys: what a connector made with a credential provider takes. */
function withoutKeys(aws: MockAws): Record<string, unknown> {
  const { accessKeyId: _id, secretAccessKey: _secret, ...rest } = aws.config();
  return rest;
}

describe('credential providers', () => {
  test('a provider function supplies the credentials, and the form has no keys', async () => {
    const aws = await mockAws();
    let calls = 0;
    const connector = createAwsConnector({
      ...FAST,
      credentials: async () => {
        calls++;
        return aws.credentials;
      },
    });
    const session = await connector.connect(withoutKeys(aws));
    open.push(session);
    expect(await session.verify()).toMatchObject({ status: 'normal', hostCount: 1 });
    expect(calls).toBeGreaterThan(0);
  });

  test('blocks are read with the credentials a temporary-credentials provider supplies (session token signed)', async () => {
    const aws = await mockAws();
    const volume = [...aws.state.volumes.values()][0]!;
    const data = new Uint8Array(524_288).fill(7);
    volume.disk.write!(524_288, data);
    let calls = 0;
    const connector = createAwsConnector({
      ...FAST,
      credentials: async () => {
        calls++;
        return { ...aws.credentials, sessionToken: 'FQoGZXIvYXdzEXAMPLETOKEN' };
      },
    });
    const session = await connector.connect(withoutKeys(aws));
    open.push(session);
    const [host] = await session.listHosts();
    const reader = await session.openReader(host!.disks[0]!, {
      snapshot: await session.createSnapshot(host!),
    });
    const bytes = await reader.read(524_288, 524_288);
    await reader.close();
    expect(Buffer.compare(bytes, data)).toBe(0);
    expect(calls).toBeGreaterThan(0);
    const block = aws.calls.find((c) => /\/blocks\/1$/.test(c.path));
    expect(block?.headers['x-amz-security-token']).toBe('FQoGZXIvYXdzEXAMPLETOKEN');
    expect(block?.status).toBe(200);
  });

  test('keys in the form besides a provider are a config error naming the field', async () => {
    const aws = await mockAws();
    const connector = createAwsConnector({ credentials: async () => aws.credentials });
    const error = await connector.connect(aws.config()).catch((e: unknown) => e);
    expect(SyncproxyError.isInstance(error)).toBe(true);
    expect((error as SyncproxyError).code).toBe('config');
    expect((error as SyncproxyError).message).toContain('accessKeyId');
    expect((error as SyncproxyError).message).toContain('a credential provider is in use');
  });

  test("the SDK's fromIni reads a profile of a credentials file", async () => {
    const aws = await mockAws();
    const dir = await mkdtemp(join(tmpdir(), 'syncproxy-credentials-'));
    open.push({ close: () => rm(dir, { recursive: true, force: true }) });
    const file = join(dir, 'credentials');
    await writeFile(
      file,
      `[backup]\naws_access_key_id = ${aws.credentials.accessKeyId}\naws_secret_access_key = ${aws.credentials.secretAccessKey}\n`,
    );
    const connector = createAwsConnector({
      ...FAST,
      credentials: fromIni({ profile: 'backup', filepath: file, configFilepath: `${file}.none` }),
    });
    const session = await connector.connect(withoutKeys(aws));
    open.push(session);
    expect((await session.listHosts()).map((h) => h.name)).toEqual(['web']);
  });

  test('with the keys of the form, no call reaches the instance metadata service', async () => {
    const aws = await mockAws();
    const imdsCalls: string[] = [];
    const imds: Server = createServer((req, res) => {
      imdsCalls.push(`${req.method} ${req.url}`);
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((resolve) => imds.listen(0, '127.0.0.1', resolve));
    open.push({ close: () => new Promise<void>((resolve) => imds.close(() => resolve())) });
    const before = process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
    process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = `http://127.0.0.1:${(imds.address() as AddressInfo).port}`;
    try {
      const session = await createAwsConnector(FAST).connect(aws.config());
      open.push(session);
      const [host] = await session.listHosts();
      const snapshot = await session.createSnapshot(host!);
      await session.deleteSnapshot(snapshot);
    } finally {
      if (before === undefined) delete process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
      else process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = before;
    }
    expect(imdsCalls).toEqual([]);
  });
});

describe('structured logs', () => {
  test("a pino logger gets the fields as keys of the record, in pino's (fields, message) order", async () => {
    const aws = await mockAws();
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(line) });
    const session = await createAwsConnector(FAST).connect(aws.config(), { logger });
    open.push(session);
    const [host] = await session.listHosts();
    const snapshot = await session.createSnapshot(host!);
    const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const waits = records.filter((r) => r.msg === 'waiting for snapshots');
    expect(waits.length).toBeGreaterThan(0);
    expect(waits[0]).toMatchObject({
      level: 20,
      snapshotIds: snapshot.disks.map((d) => d.data.snapshotId),
      delayMs: 0,
    });
    // No secret reaches the log, structured or not.
    expect(lines.join('\n')).not.toContain(aws.credentials.secretAccessKey);
  });
});
