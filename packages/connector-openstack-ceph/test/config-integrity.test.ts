import { inspect } from 'node:util';
import { SyncproxyError } from '@syncproxy/core';
import { describe, expect, it } from 'vitest';
import { openstackCeph } from '../src/index.js';

const SECRET = 'K3ystoneS3cret';

function config(overrides: Record<string, unknown>): Record<string, unknown> {
  return {
    authUrl: 'https://127.0.0.1:1/v3',
    user: 'admin',
    password: 'pw-of-admin',
    projectName: 'admin',
    cephClusters: [
      { monitors: '127.0.0.1:6789', keyring: 'AQAMAAVrioBPFBAAdbXCHUNTFD5tJ9KlAiZUaQ==', pool: 'volumes' },
    ],
    ...overrides,
  };
}

async function connectError(input: unknown): Promise<SyncproxyError> {
  const error = await openstackCeph.connect(input).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!SyncproxyError.isInstance(error)) throw new Error(`expected a SyncproxyError, got ${String(error)}`);
  return error;
}

describe('openstack-ceph config integrity', () => {
  it('refuses credentials inside authUrl with a config error naming the field, without echoing them', async () => {
    const error = await connectError(config({ authUrl: `https://admin:${SECRET}@127.0.0.1:1/v3` }));
    expect(error.code).toBe('config');
    expect(error.message).toMatch(/\bauthUrl: /);
    const all = [error.message, error.stack, JSON.stringify(error), inspect(error, { depth: 10 })].join('\n');
    expect(all).not.toContain(SECRET);
  });

  it('refuses a 2 MiB project name with a short config error', async () => {
    const error = await connectError(config({ projectName: 'p'.repeat(2 * 1024 * 1024) }));
    expect(error.code).toBe('config');
    expect(error.message).toMatch(/\bprojectName: /);
    expect(error.message.length).toBeLessThan(300);
  });
});
