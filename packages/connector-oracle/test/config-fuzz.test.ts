import { fuzzConfigSchema } from '@syncproxy/testkit';
import { describe, expect, it } from 'vitest';
import { oracle } from '../src/index.js';

// A PEM-shaped secret: the schema only checks its armour line; the fuzzer must never see it echoed.
const PRIVATE_KEY =
  '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC&<fuzz>\n-----END PRIVATE KEY-----\n';

// Issue 15 acceptance: random JSON, huge strings, URLs with userinfo and prototype keys are each
// a parsed config or a short `config` error naming a field, within 100 ms, never echoing a secret.
describe('oracle config schema', () => {
  it('survives fuzzing: parsed, or a config error naming a field, fast, with no secret echoed', async () => {
    const report = await fuzzConfigSchema(oracle, {
      validConfig: {
        tenancyId: 'ocid1.tenancy.oc1..aaaaaaaatenancy',
        userId: 'ocid1.user.oc1..aaaaaaaauser',
        fingerprint: '12:34:56:78:90:ab:cd:ef:12:34:56:78:90:ab:cd:ef',
        region: 'us-ashburn-1',
        privateKey: PRIVATE_KEY,
        passphrase: 'Pa$$phrase!&<x>',
        proxyInstanceId: 'ocid1.instance.oc1.iad.aaaaaaaaproxy',
        proxyAvailabilityDomain: 'Uocm:PHX-AD-1',
        name: 'ashburn',
        endpoints: { core: 'https://iaas.example.com', identity: 'https://identity.example.com' },
      },
      secrets: [PRIVATE_KEY, 'Pa$$phrase!&<x>'],
      runs: 400,
    });
    expect(report.runs).toBe(400);
    expect(report.refused).toBeGreaterThan(100);
  });
});
