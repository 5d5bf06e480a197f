import { fuzzConfigSchema } from '@syncproxy/testkit';
import { describe, expect, it } from 'vitest';
import { openstackCeph } from '../src/index.js';

// Issue 15 acceptance: random JSON, huge strings, URLs with userinfo and prototype keys are each
// a parsed config or a short `config` error naming a field, within 100 ms, never echoing a secret.
describe('openstackCeph config schema', () => {
  it('survives fuzzing: parsed, or a config error naming a field, fast, with no secret echoed', async () => {
    const report = await fuzzConfigSchema(openstackCeph, {
      validConfig: {
        authUrl: 'https://keystone.example.com:5000/v3',
        user: 'admin',
        password: 'Ks-Pa$$w0rd!&<x>',
        projectName: 'admin',
        cephClusters: [
          {
            monitors: '10.0.0.1,10.0.0.2:6789',
            keyring: 'AQAMAAVrioBPFBAAdbXCHUNTFD5tJ9KlAiZUaQ==',
            pool: 'volumes',
            volumeTypes: ['ceph-ssd'],
          },
        ],
      },
      secrets: ['Ks-Pa$$w0rd!&<x>', 'AQAMAAVrioBPFBAAdbXCHUNTFD5tJ9KlAiZUaQ=='],
      runs: 400,
    });
    expect(report.runs).toBe(400);
    expect(report.refused).toBeGreaterThan(100);
  });
});
