import { openstackCeph, parseMonitors } from '@syncproxy/connector-openstack-ceph';
import { describe, expect, it } from 'vitest';

describe('Ceph monitor addresses', () => {
  it('gives the default ports their messenger: 6789 is v1, 3300 is v2', () => {
    expect(parseMonitors('10.0.0.1:6789, 10.0.0.2:3300,[fd00::3]:6789')).toEqual([
      'v1:10.0.0.1:6789',
      'v2:10.0.0.2:3300',
      'v1:[fd00::3]:6789',
    ]);
  });

  it('keeps what the user states: a prefix, or a host without a port (the client tries both defaults)', () => {
    expect(parseMonitors('v2:10.0.0.1:40000,v1:10.0.0.2:3300,mon3.example.com')).toEqual([
      'v2:10.0.0.1:40000',
      'v1:10.0.0.2:3300',
      'mon3.example.com',
    ]);
  });

  it('refuses a non-default port without v1: or v2:, saying which to write', () => {
    expect(() => parseMonitors('10.0.0.1:6789,10.0.0.2:40000')).toThrow(
      'Ceph monitor 10.0.0.2:40000 uses a non-default port: write v1:10.0.0.2:40000 (messenger v1) or v2:10.0.0.2:40000 (msgr2) (the default ports are 6789 for v1 and 3300 for v2)',
    );
  });

  it('the config form refuses it too, naming the field', async () => {
    const error = await openstackCeph
      .connect({
        authUrl: 'https://127.0.0.1:1/v3',
        user: 'admin',
        password: 'pw',
        projectName: 'admin',
        cephClusters: [
          {
            monitors: '10.0.0.2:40000',
            keyring: 'AQAMAAVrioBPFBAAdbXCHUNTFD5tJ9KlAiZUaQ==',
            pool: 'volumes',
          },
        ],
      })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'config' });
    expect((error as Error).message).toContain('cephClusters.0.monitors: ');
    expect((error as Error).message).toContain('non-default port');
  });
});
