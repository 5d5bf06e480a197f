import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createManualClock, locateDevice, SyncproxyError } from '../../src/index.js';
import { tempDir } from '../transfer/fixtures/temp-dir.js';

let dir: { path: string; remove: () => Promise<void> };
let byIdDir: string;
let sysBlockDir: string;
let devDir: string;

beforeEach(async () => {
  dir = await tempDir('syncproxy-locate-');
  byIdDir = join(dir.path, 'by-id');
  sysBlockDir = join(dir.path, 'sys-block');
  devDir = join(dir.path, 'dev');
  await mkdir(byIdDir);
  await mkdir(sysBlockDir);
  await mkdir(devDir);
});
afterEach(() => dir.remove());

async function fakeDevice(name: string): Promise<string> {
  const path = join(devDir, name);
  await writeFile(path, '');
  return path;
}

describe('locateDevice', () => {
  it('finds a virtio-<serial> entry and returns the device it links to', async () => {
    const device = await fakeDevice('vdb');
    await symlink(device, join(byIdDir, 'virtio-vol-abc123'));
    await symlink(await fakeDevice('vdb1'), join(byIdDir, 'virtio-vol-abc123-part1'));
    await expect(locateDevice({ serial: 'vol-abc123', devices: { byIdDir, sysBlockDir } })).resolves.toBe(
      device,
    );
  });

  it('finds a 36-character volume id by the 20 characters virtio-blk keeps', async () => {
    const device = await fakeDevice('vdc');
    await symlink(device, join(byIdDir, 'virtio-6c1e1a4e-0b7b-4c3f-a'));
    const serial = '6c1e1a4e-0b7b-4c3f-a5c6-1234567890ab';
    await expect(locateDevice({ serial, devices: { byIdDir, sysBlockDir } })).resolves.toBe(device);
  });

  it('finds an NVMe entry that ends with the serial, and a WWN in wwn-0x form whatever its spelling', async () => {
    const nvme = await fakeDevice('nvme1n1');
    await symlink(nvme, join(byIdDir, 'nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0'));
    const sdc = await fakeDevice('sdc');
    await symlink(sdc, join(byIdDir, 'wwn-0x6001405f1b2c3d4e5f60718293a4b5c6'));
    const devices = { byIdDir, sysBlockDir };
    await expect(locateDevice({ serial: 'vol0123456789abcdef0', devices })).resolves.toBe(nvme);
    await expect(locateDevice({ wwn: 'naa.6001405F1B2C3D4E5F60718293A4B5C6', devices })).resolves.toBe(sdc);
  });

  it('finds a device by /sys/block/<dev>/serial and by device/wwid when udev made no link', async () => {
    await mkdir(join(sysBlockDir, 'vdd'), { recursive: true });
    await writeFile(join(sysBlockDir, 'vdd', 'serial'), 'ocid1-vol-77\n');
    await mkdir(join(sysBlockDir, 'sde', 'device'), { recursive: true });
    await writeFile(join(sysBlockDir, 'sde', 'device', 'wwid'), 'naa.60014059a8b7c6d5e4f3\n');
    const devices = { byIdDir: join(dir.path, 'absent'), sysBlockDir };
    await expect(locateDevice({ serial: 'ocid1-vol-77', devices })).resolves.toBe('/dev/vdd');
    await expect(locateDevice({ wwn: '60014059A8B7C6D5E4F3', devices })).resolves.toBe('/dev/sde');
  });

  it('finds a WWN in the device identification VPD page (device/vpd_pg83)', async () => {
    await mkdir(join(sysBlockDir, 'sdf', 'device'), { recursive: true });
    // Page 0x83 header, then an NAA designator (type 3) holding the 16-byte WWN.
    const page = Buffer.from('0083001401030010600a0980383134737a2b4a6c4e2f7431', 'hex');
    await writeFile(join(sysBlockDir, 'sdf', 'device', 'vpd_pg83'), page);
    const devices = { byIdDir, sysBlockDir };
    await expect(locateDevice({ wwn: '0x600a0980383134737a2b4a6c4e2f7431', devices })).resolves.toBe(
      '/dev/sdf',
    );
  });

  it('waits for the device to appear, polling on the injected clock', async () => {
    const clock = createManualClock();
    const found = locateDevice({ serial: 'late-1', devices: { byIdDir, sysBlockDir }, pollMs: 500, clock });
    await vi.waitFor(() => expect(clock.pendingTimers()).toBe(1));
    const device = await fakeDevice('vde');
    await symlink(device, join(byIdDir, 'virtio-late-1'));
    await clock.advance(500);
    await expect(found).resolves.toBe(device);
  });

  it('ignores a link whose device node does not exist yet', async () => {
    await symlink(join(devDir, 'vdz'), join(byIdDir, 'virtio-dangling'));
    const clock = createManualClock();
    const found = locateDevice({
      serial: 'dangling',
      devices: { byIdDir, sysBlockDir },
      timeoutMs: 0,
      clock,
    });
    await expect(found).rejects.toMatchObject({ code: 'timeout' });
  });

  it('times out with a retryable timeout error that says what it looked for and where', async () => {
    const clock = createManualClock();
    const devices = { byIdDir, sysBlockDir };
    const found = locateDevice({
      serial: 'vol-missing',
      wwn: '0x6001405aa',
      devices,
      timeoutMs: 1500,
      pollMs: 500,
      clock,
    });
    found.catch(() => {});
    for (let i = 0; i < 3; i++) {
      await vi.waitFor(() => expect(clock.pendingTimers()).toBe(1));
      await clock.advance(500);
    }
    const error = (await found.catch((e: unknown) => e)) as SyncproxyError;
    expect(SyncproxyError.isInstance(error)).toBe(true);
    expect(error.code).toBe('timeout');
    expect(error.retryable).toBe(true);
    expect(error.message).toBe(
      `no device with serial "vol-missing" or WWN 6001405aa appeared within 1500 ms: looked in ${byIdDir} for entries containing "vol-missing" or "6001405aa" and in ${sysBlockDir}/*/{serial,device/serial,device/wwid,device/vpd_pg83} (is the volume attached to this proxy?)`,
    );
  });

  it('stops waiting with aborted when the signal aborts', async () => {
    const clock = createManualClock();
    const controller = new AbortController();
    const found = locateDevice({
      serial: 'never',
      devices: { byIdDir, sysBlockDir },
      clock,
      signal: controller.signal,
    });
    await vi.waitFor(() => expect(clock.pendingTimers()).toBe(1));
    controller.abort();
    await expect(found).rejects.toMatchObject({
      code: 'aborted',
      message: 'locating serial "never" aborted',
    });
  });

  it('refuses a call without serial or wwn, and a WWN that is not hexadecimal, as config errors', async () => {
    await expect(locateDevice({ devices: { byIdDir, sysBlockDir } })).rejects.toMatchObject({
      code: 'config',
      message: 'locateDevice: serial or wwn is required (neither was given)',
    });
    await expect(locateDevice({ wwn: 'zz-top', devices: { byIdDir, sysBlockDir } })).rejects.toMatchObject({
      code: 'config',
      message: 'locateDevice: wwn must be hexadecimal (got "zz-top")',
    });
  });
});
