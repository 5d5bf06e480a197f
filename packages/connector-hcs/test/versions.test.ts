import { afterEach, describe, expect, it } from 'vitest';
import { type Rig, rejection, rig } from './helpers.js';

let r: Rig | undefined;
afterEach(async () => {
  await r?.mock.close();
  r = undefined;
});

describe('hcs: versions and models it refuses', () => {
  it('HCS 8.0.2 with a Dorado 5000 V6 is normal and counts the servers', async () => {
    r = await rig();
    r.mock.addServer({ name: 'web-1', volumesGb: [1] });
    r.mock.addServer({ name: 'web-2', volumesGb: [1, 1] });
    r.mock.addServer({ name: 'db-1', volumesGb: [1] });
    const session = await r.connector.connect(r.mock.config(), r.context());
    try {
      expect(await session.verify()).toEqual({
        status: 'normal',
        hostCount: 3,
        platformVersion: 'Huawei Cloud Stack 8.0.2',
      });
      const hosts = await session.listHosts();
      expect(hosts.map((h) => [h.name, h.disks.length])).toEqual([
        ['db-1', 1],
        ['web-1', 1],
        ['web-2', 2],
      ]);
    } finally {
      await session.close();
    }
  });

  for (const version of ['8.2.0', '8.3.1']) {
    it(`HCS ${version} is refused with unsupported, naming the version`, async () => {
      r = await rig();
      r.mock.setHcsVersion(version);
      const session = await r.connector.connect(r.mock.config(), r.context());
      try {
        const error = await rejection(() => session.verify());
        expect(error.code).toBe('unsupported');
        expect(error.retryable).toBe(false);
        expect(error.message).toBe(
          `Huawei Cloud Stack ${version} is not supported: only HCS 8.0.2 (the APIs of 8.2.x and 8.3.x differ)`,
        );
        // A snapshot is refused the same way: nothing is created on the array.
        r.mock.addServer({ name: 'vm', volumesGb: [1] });
        const host = { id: 'x', name: 'vm', disks: [] };
        expect((await rejection(() => session.createSnapshot(host))).code).toBe('unsupported');
        expect(r.mock.state.snapshots.size).toBe(0);
      } finally {
        await session.close();
      }
    });
  }

  it('an unknown Dorado model is refused with unsupported, naming the model', async () => {
    r = await rig();
    r.mock.setDoradoModel('OceanStor 5500 V5');
    const session = await r.connector.connect(r.mock.config(), r.context());
    try {
      const error = await rejection(() => session.verify());
      expect(error.code).toBe('unsupported');
      expect(error.message).toBe(
        `storage ${r.mock.dorado.url}: the model OceanStor 5500 V5 (V600R005C60) is not supported: only OceanStor Dorado V6 (3000, 5000, 6000, 8000, 18000)`,
      );
    } finally {
      await session.close();
    }
  });
});

describe('hcs: network requirements', () => {
  it('the API gateway on 443 and each Dorado on 8088', async () => {
    const { hcs, hcsConfigSchema } = await import('@syncproxy/connector-hcs');
    const config = hcsConfigSchema.parse({
      iamUrl: 'https://iam-apigateway-proxy.hcs.example.com/v3',
      tenantId: 't',
      user: 'u',
      password: 'p',
      projectDomainId: 't',
      projectName: 'p1',
      region: 'mx-ags-1',
      proxy: { hostName: 'proxy-01', initiators: ['iqn.1994-05.com.redhat:proxy'] },
      storages: [
        { type: 'DORADO', url: 'https://10.0.0.20:8088', user: 'a', password: 'b' },
        { type: 'DORADO', url: 'https://10.0.0.21:8088', user: 'a', password: 'b', userType: 'LDAP' },
      ],
    });
    expect(hcs.networkRequirements(config).map((n) => [n.host, n.port])).toEqual([
      ['iam-apigateway-proxy.hcs.example.com', 443],
      ['10.0.0.20', 8088],
      ['10.0.0.21', 8088],
    ]);
  });
});
