import { keyOfKeyring, openstackCeph, parseMonitors } from '@syncproxy/connector-openstack-ceph';
import { toJSONSchema } from '@syncproxy/core';
import { describe, expect, it } from 'vitest';

const KEY = 'AQAMAAVrioBPFBAAdbXCHUNTFD5tJ9KlAiZUaQ==';

function form(overrides: Record<string, unknown> = {}) {
  return {
    authUrl: 'http://192.168.10.201:5000/v3',
    user: 'admin',
    password: 'secret-pw',
    projectName: 'demo',
    cephClusters: [
      {
        monitors: '10.0.0.1,v1:10.0.0.2:6790,[fd00::1]:3300',
        keyring: KEY,
        pool: 'volumes',
        volumeTypes: ['ssd'],
      },
    ],
    ...overrides,
  };
}

describe('openstack-ceph connector', () => {
  it('fills the form defaults the products document', () => {
    const config = openstackCeph.configSchema.parse(form());
    expect(config).toMatchObject({
      userDomainId: 'default',
      projectDomainId: 'default',
      region: 'RegionOne',
      cephClusters: [{ cephx: true, user: 'cinder', clusterName: 'ceph', incrementalMode: 'rbd-diff' }],
    });
  });

  it('marks the password and the keyring as secrets in the form schema', () => {
    const schema = toJSONSchema(openstackCeph.configSchema) as {
      properties: {
        password: Record<string, unknown>;
        cephClusters: { items: { properties: { keyring: Record<string, unknown> } } };
      };
    };
    expect(schema.properties.password['x-secret']).toBe(true);
    expect(schema.properties.cephClusters.items.properties.keyring['x-secret']).toBe(true);
  });

  it('lists Keystone and every monitor as network requirements', () => {
    const config = openstackCeph.configSchema.parse(form());
    expect(openstackCeph.networkRequirements(config)).toEqual([
      { host: '192.168.10.201', port: 5000, purpose: 'Keystone (identity API)' },
      { host: '10.0.0.1', port: 6789, purpose: 'Ceph monitor (cluster ceph)' },
      { host: '10.0.0.2', port: 6790, purpose: 'Ceph monitor (cluster ceph)' },
      { host: 'fd00::1', port: 3300, purpose: 'Ceph monitor (cluster ceph)' },
    ]);
  });

  it('refuses a volume type served by two clusters, naming the field', () => {
    const cluster = { monitors: '10.0.0.1', keyring: KEY, pool: 'volumes', volumeTypes: ['ssd'] };
    const result = openstackCeph.configSchema.safeParse(
      form({ cephClusters: [cluster, { ...cluster, pool: 'other' }] }),
    );
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['cephClusters.1.volumeTypes', 'volume type "ssd" is also served by cluster 0'],
    ]);
  });

  it('requires a keyring only with CephX on', () => {
    const without = { monitors: '10.0.0.1', pool: 'volumes' };
    expect(
      openstackCeph.configSchema.safeParse(form({ cephClusters: [{ ...without, cephx: false }] })).success,
    ).toBe(true);
    const result = openstackCeph.configSchema.safeParse(form({ cephClusters: [without] }));
    expect(result.error?.issues.map((i) => i.path.join('.'))).toEqual(['cephClusters.0.keyring']);
  });

  it('rejects a bad config in connect() with a config error that names the field and not the password', async () => {
    const error = await openstackCeph.connect(form({ authUrl: 'not a url' })).catch((e) => e);
    expect(error.code).toBe('config');
    expect(error.message).toContain('authUrl');
    expect(error.message).not.toContain('secret-pw');
  });
});

describe('keyring and monitor parsing', () => {
  it('takes the key from a keyring file or from the bare key', () => {
    expect(keyOfKeyring(`[client.cinder]\n\tkey = ${KEY}\n\tcaps mon = "profile rbd"\n`)).toBe(KEY);
    expect(keyOfKeyring(` ${KEY}\n`)).toBe(KEY);
  });

  it('refuses a keyring without a key, without echoing it', () => {
    expect(() => keyOfKeyring('[client.cinder]\n\tkey = not base64!\n')).toThrow(
      'the Ceph keyring holds no valid key (paste the keyring file or its "key = ..." value)',
    );
  });

  it('refuses monitor lists that could inject config lines', () => {
    expect(() => parseMonitors('10.0.0.1\nkeyring = /etc/shadow')).toThrow(/invalid Ceph monitor addresses/);
    expect(parseMonitors(' 10.0.0.1, v1:10.0.0.2:6789 ')).toEqual(['10.0.0.1', 'v1:10.0.0.2:6789']);
  });
});
