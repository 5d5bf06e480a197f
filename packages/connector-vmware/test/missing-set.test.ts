import { createVmwareConnector } from '@syncproxy/connector-vmware';
import { type MockVcenter, startMockVcenter } from '@syncproxy/connector-vmware/mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const connector = createVmwareConnector({ taskPollMs: 1, dataPath: 'nbd://127.0.0.1:1/{vm}' });
let vcenter: MockVcenter;

beforeEach(async () => {
  vcenter = await startMockVcenter();
  vcenter.addVm({ name: 'web-01', disks: [{ sizeBytes: 1024 * 1024 }] });
});
afterEach(() => vcenter.close());

describe('RetrievePropertiesEx missingSet faults', () => {
  it('NoPermission on a property is a permission error naming the property and the privilege', async () => {
    const session = await connector.connect(vcenter.config());
    try {
      const vm = [...vcenter.state.vms.keys()][0]!;
      vcenter.state.propertyFaults.push({
        type: 'VirtualMachine',
        path: 'config.hardware.device',
        faultType: 'NoPermission',
        privilegeId: 'VirtualMachine.Config.DiskLease',
      });
      const error = await session.listHosts().catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'permission', retryable: false, platform: 'vmware' });
      expect((error as Error).message).toBe(
        `VirtualMachine ${vm}: no permission to read config.hardware.device (privilege VirtualMachine.Config.DiskLease; grant it to the user's role)`,
      );
    } finally {
      await session.close();
    }
  });

  it('NotAuthenticated on a property logs in again once and retries: VMs keep their names and disks', async () => {
    const session = await connector.connect(vcenter.config());
    try {
      vcenter.state.propertyFaults.push({ path: 'name', faultType: 'NotAuthenticated', times: 1 });
      const hosts = await session.listHosts();
      expect(hosts.map((h) => [h.name, h.disks.length])).toEqual([['web-01', 1]]);
      expect(vcenter.state.stats.logins).toBe(2);
    } finally {
      await session.close();
    }
  });

  it('NotAuthenticated that persists after the new login is an auth error, not empty properties', async () => {
    const session = await connector.connect(vcenter.config());
    try {
      vcenter.state.propertyFaults.push({ path: 'name', faultType: 'NotAuthenticated' });
      const error = await session.listHosts().catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'auth', platform: 'vmware' });
      expect(vcenter.state.stats.logins).toBe(2);
    } finally {
      await session.close();
    }
  });
});
