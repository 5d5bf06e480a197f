import { hcs } from '@syncproxy/connector-hcs';
import { fuzzConfigSchema } from '@syncproxy/testkit';
import { describe, expect, it } from 'vitest';

// Random JSON, huge strings, URLs with userinfo and prototype keys are each a parsed config or a
// short `config` error naming a field, within 100 ms, never echoing a secret.
describe('hcs config schema', () => {
  it('survives fuzzing: parsed, or a config error naming a field, fast, with no secret echoed', async () => {
    const report = await fuzzConfigSchema(hcs, {
      validConfig: {
        iamUrl: 'https://iam-apigateway-proxy.hcs.example.com/v3',
        tenantId: 'a1b2c3d4e5f6',
        user: 'hcs-admin',
        password: 'Hcs#Pa$$w0rd!&<x>',
        projectDomainId: 'a1b2c3d4e5f6',
        projectName: 'mx-ags-1_migration',
        region: 'mx-ags-1',
        proxy: { hostName: 'syncproxy-proxy-01', initiators: ['iqn.1994-05.com.redhat:proxy'] },
        storages: [
          {
            type: 'DORADO',
            url: 'https://192.168.1.10:8088',
            user: 'syncproxy',
            password: 'Dorado#St0rage!&<y>',
            userType: 'local',
            vstoreName: 'vstore-1',
          },
        ],
      },
      secrets: ['Hcs#Pa$$w0rd!&<x>', 'Dorado#St0rage!&<y>'],
      runs: 400,
    });
    expect(report.runs).toBe(400);
    expect(report.refused).toBeGreaterThan(100);
  });
});
