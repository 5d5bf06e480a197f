import { fuzzConfigSchema } from '@syncproxy/testkit';
import { describe, expect, it } from 'vitest';
import { localdisk } from '../src/index.js';

// Issue 15 acceptance: random JSON, huge strings, URLs with userinfo and prototype keys are each
// a parsed config or a short `config` error naming a field, within 100 ms, never echoing a secret.
describe('localdisk config schema', () => {
  it('survives fuzzing: parsed, or a config error naming a field, fast, with no secret echoed', async () => {
    const report = await fuzzConfigSchema(localdisk, {
      validConfig: {
        hostName: 'agent-1',
        disks: [{ path: '/var/lib/images/vm.img', id: 'vm-disk' }],
        stateDir: '/var/lib/syncproxy',
      },
      secrets: ['not-a-secret-here'],
      runs: 400,
    });
    expect(report.runs).toBe(400);
    expect(report.refused).toBeGreaterThan(100);
  });
});
