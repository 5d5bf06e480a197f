import { fuzzConfigSchema } from '@syncproxy/testkit';
import { describe, expect, it } from 'vitest';
import { huaweicloud } from '../src/index.js';

// Issue 15 acceptance: random JSON, huge strings, URLs with userinfo and prototype keys are each
// a parsed config or a short `config` error naming a field, within 100 ms, never echoing a secret.
describe('huaweicloud config schema', () => {
  it('survives fuzzing: parsed, or a config error naming a field, fast, with no secret echoed', async () => {
    const report = await fuzzConfigSchema(huaweicloud, {
      validConfig: {
        accessKeyId: 'HPUAMOCKSYNCPROXY0001',
        secretAccessKey: 'mockSecretKey0Syncproxy&<Huawei>Cloud01',
        project: 'tr-west-1',
        proxy: '6d0c8e5a-0d1f-4c8a-9c6e-3f2b1a0e9d7c',
        name: 'istanbul',
        bucket: 'syncproxy-cache',
        endpoints: {
          iam: 'https://iam.example.com',
          ecs: 'https://ecs.example.com',
          evs: 'https://evs.example.com',
          cbr: 'https://cbr.example.com',
          obs: 'https://obs.example.com',
        },
      },
      secrets: ['mockSecretKey0Syncproxy&<Huawei>Cloud01'],
      runs: 400,
    });
    expect(report.runs).toBe(400);
    expect(report.refused).toBeGreaterThan(100);
  });
});
