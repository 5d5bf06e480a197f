import { createVmwareConnector, vddkCommand } from '@syncproxy/connector-vmware';
import { type MockVcenter, startMockVcenter } from '@syncproxy/connector-vmware/mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const connector = createVmwareConnector({ taskPollMs: 1, dataPath: 'nbd://127.0.0.1:1/{vm}' });
let vcenter: MockVcenter;

beforeEach(async () => {
  vcenter = await startMockVcenter();
  vcenter.addVm({ name: 'web-01', disks: [{ sizeBytes: 1024 * 1024 }] });
});
afterEach(() => vcenter.close());

describe('vim25 session', () => {
  it('refuses a wrong password with code auth (InvalidLogin), not retryable', async () => {
    const error = await connector
      .connect({ ...vcenter.config(), password: 'wrong-password' })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'auth', retryable: false, platform: 'vmware' });
    expect((error as Error).message).toBe(
      `Login failed: InvalidLogin: Cannot complete login due to an incorrect user name or password. (check the user name and the password)`,
    );
  });

  it('refuses a server whose certificate does not match the pinned thumbprint, with code tls', async () => {
    const wrong = `00:${vcenter.thumbprint.slice(3)}`;
    const error = await connector
      .connect({ ...vcenter.config(), thumbprint: wrong })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'tls', retryable: false });
    expect((error as Error).message).toBe(
      `TLS refused: the certificate of 127.0.0.1 has thumbprint ${vcenter.thumbprint}, not the pinned ${wrong}`,
    );
    expect(vcenter.state.stats.logins).toBe(0);
  });

  it('refuses the self-signed certificate when no thumbprint is pinned (verification on by default)', async () => {
    const { thumbprint: _, ...unpinned } = vcenter.config();
    const error = await connector.connect(unpinned).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'tls', retryable: false });
  });

  it('logs in again once when the session expired, and the call goes on', async () => {
    const session = await connector.connect(vcenter.config());
    try {
      expect(vcenter.state.stats.logins).toBe(1);
      vcenter.expireSessions();
      const hosts = await session.listHosts();
      expect(hosts.map((h) => h.name)).toEqual(['web-01']);
      expect(vcenter.state.stats.logins).toBe(2);
      expect(vcenter.state.stats.notAuthenticated).toBe(1);
    } finally {
      await session.close();
    }
  });

  it('pages through RetrievePropertiesEx with ContinueRetrievePropertiesEx', async () => {
    for (let i = 2; i <= 5; i++) vcenter.addVm({ name: `web-0${i}`, disks: [{ sizeBytes: 4096 }] });
    vcenter.state.maxObjectsPerPage = 2;
    const session = await connector.connect(vcenter.config());
    try {
      const hosts = await session.listHosts();
      expect(hosts.map((h) => h.name)).toEqual(['web-01', 'web-02', 'web-03', 'web-04', 'web-05']);
      expect(vcenter.state.stats.calls.ContinueRetrievePropertiesEx).toBe(2);
    } finally {
      await session.close();
    }
  });

  it('enables CBT with ReconfigVM_Task before the first snapshot and records each disk changeId', async () => {
    const session = await connector.connect(vcenter.config());
    try {
      const [host] = await session.listHosts();
      const snapshot = await session.createSnapshot(host!);
      const vm = vcenter.state.vms.get(host!.id)!;
      expect(vm.cbtEnabled).toBe(true);
      expect(vcenter.state.stats.calls.ReconfigVM_Task).toBe(1);
      expect(snapshot.disks).toEqual([
        {
          diskId: `${vm.moref}:2000`,
          sizeBytes: 1024 * 1024,
          data: {
            vm: vm.moref,
            snapshot: vm.snapshots[0],
            deviceKey: 2000,
            fileName: '[datastore1] web-01/web-01.vmdk',
            changeId: `${vm.disks[0]!.cbt.uuid}/1`,
          },
        },
      ]);
      await session.deleteSnapshot(snapshot);
      expect(vm.snapshots).toEqual([]);
    } finally {
      await session.close();
    }
  });
});

describe('vddkCommand', () => {
  const target = {
    server: 'vcenter.example.com',
    port: 443,
    user: 'backup@vsphere.local',
    thumbprintSha1: 'AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD',
    vm: 'vm-16',
    snapshot: 'snapshot-123',
    file: '[datastore1] web 01/web 01.vmdk',
  };
  const paths = { socketPath: '/tmp/x/nbd.sock', pidFile: '/tmp/x/nbdkit.pid' };

  it('serves one disk snapshot read-only on a Unix socket, password from fd 3', () => {
    expect(vddkCommand(target, paths, { libdir: '/opt/vmware-vix-disklib-distrib' })).toEqual({
      command: 'nbdkit',
      args: [
        '-f',
        '--exit-with-parent',
        '-r',
        '-U',
        '/tmp/x/nbd.sock',
        '-P',
        '/tmp/x/nbdkit.pid',
        'vddk',
        'libdir=/opt/vmware-vix-disklib-distrib',
        'server=vcenter.example.com',
        'user=backup@vsphere.local',
        'password=-3',
        'thumbprint=AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD',
        'vm=moref=vm-16',
        'snapshot=snapshot-123',
        'transports=nbd:nbdssl',
        'file=[datastore1] web 01/web 01.vmdk',
      ],
    });
  });

  it('names a non-default port and never carries a password in argv', () => {
    const { args } = vddkCommand({ ...target, port: 8443 }, paths, {
      transports: ['nbdssl'],
      compression: 'zlib',
    });
    expect(args).toContain('port=8443');
    expect(args).toContain('transports=nbdssl');
    expect(args).toContain('compression=zlib');
    expect(args.filter((a) => a.startsWith('password='))).toEqual(['password=-3']);
  });
});
