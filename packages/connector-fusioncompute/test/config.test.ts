import {
  fusionCompute,
  fusionComputeConfigSchema,
  platformHostOf,
  vrmBaseUrl,
} from '@syncproxy/connector-fusioncompute';
import { parseConfig, SyncproxyError } from '@syncproxy/core';
import { describe, expect, it } from 'vitest';

const valid = { url: 'https://192.168.10.20:7443', user: 'syncproxy', password: 'P@ss-word' };

function configError(input: unknown): SyncproxyError {
  try {
    parseConfig(fusionComputeConfigSchema, input, 'fusioncompute config');
  } catch (error) {
    if (SyncproxyError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected the config to be refused');
}

describe('config', () => {
  it('fills the defaults of the UNCONFIRMED points', () => {
    expect(fusionComputeConfigSchema.parse(valid)).toEqual({
      ...valid,
      userType: '2',
      advanced: {
        keyEncoding: 'sha256-hex',
        algorithmHeader: 'none',
        authType: '0',
        bitmapEncoding: 'hex',
        cbtPageBlocks: 32_768,
        transMode: 'lanssl',
        backupDelaySec: 600,
        cnaDataPort: 21064,
      },
    });
  });

  it('a URL without a port means the VRM port 7443; networkRequirements names it', () => {
    expect(vrmBaseUrl({ url: 'https://vrm.example' })).toBe('https://vrm.example:7443');
    expect(fusionCompute.networkRequirements(fusionComputeConfigSchema.parse(valid))).toEqual([
      {
        host: '192.168.10.20',
        port: 7443,
        purpose: 'FusionCompute VRM REST API (login, inventory, snapshots, CBT, backup resources)',
      },
    ]);
  });

  it.each([
    ['https://admin:secret@vrm.example:7443', 'url'],
    ['https://admin@vrm.example:7443', 'url'],
    ['http://vrm.example:7443', 'url'],
    [`https://${'a'.repeat(5000)}.example:7443`, 'url'],
  ])('refuses the URL %s, naming the field and never echoing a password', (url, path) => {
    const error = configError({ ...valid, url });
    expect(error.code).toBe('config');
    expect(error.message).toContain(path);
    expect(error.message).not.toContain('secret');
    expect(JSON.stringify(error)).not.toContain('secret');
  });

  it.each([
    ['user', 'u'.repeat(100_000)],
    ['password', 'p'.repeat(100_000)],
    ['proxy', 'x'.repeat(100_000)],
    ['ca', 'c'.repeat(1_000_000)],
    ['thumbprint', 'AB'.repeat(50_000)],
  ])('refuses a huge %s with a short message that does not repeat it', (field, value) => {
    const error = configError({ ...valid, [field]: value });
    expect(error.code).toBe('config');
    expect(error.message).toContain(field);
    expect(error.message.length).toBeLessThan(1000);
    expect(error.message).not.toContain(value.slice(0, 200));
  });

  it('refuses a cbtPageBlocks that is not a multiple of 8, as getcbt requires', () => {
    expect(configError({ ...valid, advanced: { cbtPageBlocks: 100 } }).message).toContain(
      'advanced.cbtPageBlocks',
    );
  });

  it('declares 8 connections per host for the scheduler; platformHostOf names the CNA and caps at 8', () => {
    expect(fusionCompute.capabilities.perHostLimits).toEqual({ maxConnections: 8 });
    const host = { id: 'urn:vm', attributes: { hostUrn: 'urn:sites:s:hosts:h1' } };
    expect(platformHostOf(host)).toEqual({ id: 'urn:sites:s:hosts:h1', connections: 8 });
    expect(platformHostOf(host, 32)).toEqual({ id: 'urn:sites:s:hosts:h1', connections: 8 });
    expect(platformHostOf(host, 2)).toEqual({ id: 'urn:sites:s:hosts:h1', connections: 2 });
  });
});
