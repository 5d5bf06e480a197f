import { fusionCompute } from '@syncproxy/connector-fusioncompute';
import { fuzzConfigSchema } from '@syncproxy/testkit';
import { describe, expect, it } from 'vitest';

// Random JSON, huge strings, URLs with userinfo and prototype keys are each a parsed config or a
// short `config` error naming a field, within 100 ms, never echoing a secret.
describe('fusioncompute config schema', () => {
  it('survives fuzzing: parsed, or a config error naming a field, fast, with no secret echoed', async () => {
    const report = await fuzzConfigSchema(fusionCompute, {
      validConfig: {
        url: 'https://192.168.10.20:7443',
        user: 'syncproxy',
        password: 'Fc#Pa$$w0rd!&<x>',
        userType: '2',
        proxy: 'proxy-01',
        thumbprint: 'AB'.repeat(32),
        hostOverrides: { 'vrm.example.com': '192.168.10.20' },
        advanced: { keyEncoding: 'sha256-hex', apiVersion: '8.1', authType: '0' },
      },
      secrets: ['Fc#Pa$$w0rd!&<x>'],
      runs: 400,
    });
    expect(report.runs).toBe(400);
    expect(report.refused).toBeGreaterThan(100);
  });
});
