import { fuzzConfigSchema } from '@syncproxy/testkit';
import { describe, expect, it } from 'vitest';
import { aws } from '../src/index.js';

// Issue 15 acceptance: random JSON, huge strings, URLs with userinfo and prototype keys are each
// a parsed config or a short `config` error naming a field, within 100 ms, never echoing a secret.
describe('aws config schema', () => {
  it('survives fuzzing: parsed, or a config error naming a field, fast, with no secret echoed', async () => {
    const report = await fuzzConfigSchema(aws, {
      validConfig: {
        accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
        secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
        region: 'us-east-1',
        endpoints: { ec2: 'https://ec2.example.com', ebs: 'https://ebs.example.com' },
      },
      secrets: ['wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'],
      runs: 400,
    });
    expect(report.runs).toBe(400);
    expect(report.refused).toBeGreaterThan(100);
  });
});
