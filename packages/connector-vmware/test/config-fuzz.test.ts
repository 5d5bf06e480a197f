import { fuzzConfigSchema } from '@syncproxy/testkit';
import { describe, expect, it } from 'vitest';
import { vmware } from '../src/index.js';

// Issue 15 acceptance: random JSON, huge strings, URLs with userinfo and prototype keys are each
// a parsed config or a short `config` error naming a field, within 100 ms, never echoing a secret.
describe('vmware config schema', () => {
  it('survives fuzzing: parsed, or a config error naming a field, fast, with no secret echoed', async () => {
    const report = await fuzzConfigSchema(vmware, {
      validConfig: {
        url: 'https://vcenter.example.com:443',
        user: 'administrator@vsphere.local',
        password: 'Vc-Pa$$w0rd!&<x>',
      },
      secrets: ['Vc-Pa$$w0rd!&<x>'],
      runs: 400,
    });
    expect(report.runs).toBe(400);
    expect(report.refused).toBeGreaterThan(100);
  });
});
