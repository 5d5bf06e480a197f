import { inspect } from 'node:util';
import { SyncproxyError } from '@syncproxy/core';
import { describe, expect, it } from 'vitest';
import { vmware } from '../src/index.js';

const SECRET = 'Adm1nS3cretPw';

async function connectError(config: unknown): Promise<SyncproxyError> {
  const error = await vmware.connect(config).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!SyncproxyError.isInstance(error)) throw new Error(`expected a SyncproxyError, got ${String(error)}`);
  return error;
}

function everyForm(error: SyncproxyError): string {
  return [error.message, error.stack, JSON.stringify(error), inspect(error, { depth: 10 })].join('\n');
}

describe('vmware config integrity', () => {
  it('refuses credentials inside url with a config error naming the field, without echoing them', async () => {
    const error = await connectError({
      url: `https://admin:${SECRET}@127.0.0.1:1/sdk`,
      user: 'administrator@vsphere.local',
      password: 'another-password',
    });
    expect(error.code).toBe('config');
    expect(error.message).toMatch(/\burl: /);
    expect(everyForm(error)).not.toContain(SECRET);
    expect(everyForm(error)).not.toContain('admin:');
  });

  it('refuses a 2 MiB url with a short config error', async () => {
    const error = await connectError({
      url: `https://vc.example.com/${'a'.repeat(2 * 1024 * 1024)}`,
      user: 'administrator@vsphere.local',
      password: 'pw',
    });
    expect(error.code).toBe('config');
    expect(error.message).toMatch(/\burl: /);
    expect(error.message.length).toBeLessThan(300);
  });
});
