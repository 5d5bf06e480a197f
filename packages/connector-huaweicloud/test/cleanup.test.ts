import type { MountSlotRequest } from '@syncproxy/core';
import type { FaultRule } from '@syncproxy/testkit/mock';
import { afterEach, describe, expect, it } from 'vitest';
import { fastConnector } from './connector.js';
import { leftovers, type Rig, startRig } from './setup.js';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

const NOTHING_LEFT = { objects: 0, volumes: 0, attachments: 0 };
const bad = {
  kind: 'status',
  status: 400,
  body: { error_code: 'Mock.0400', error_msg: 'injected' },
} as const;

describe('export path: a failure at any step leaves no exported object', () => {
  const steps: Array<[string, (r: Rig) => void]> = [
    ['bucket check', (r) => r.cloud.fault('obs', { ...bad, method: 'HEAD', times: 1 })],
    ['bucket delegation', (r) => r.cloud.fault('api', { ...bad, path: /bucket-delegation$/ })],
    [
      'export request',
      (r) => r.cloud.fault('api', { ...bad, method: 'POST', path: /snapshot-data\/export$/ }),
    ],
    [
      'export polling',
      (r) => r.cloud.fault('api', { ...bad, method: 'GET', path: /snapshot-data\/exports\// }),
    ],
    [
      'the export itself (fails after writing objects)',
      (r) => {
        r.cloud.state.failNextExportAfterObjects = 2;
      },
    ],
    [
      'a ranged GET during the transfer',
      (r) =>
        r.cloud.fault('obs', {
          kind: 'status',
          status: 403,
          body: '<Error><Code>AccessDenied</Code></Error>',
          method: 'GET',
          path: /^\/syncproxy-cache\/syncproxy\//,
          skip: 1,
        } satisfies FaultRule),
    ],
  ];
  for (const [step, inject] of steps) {
    it(`fails at ${step}, then nothing is left`, async () => {
      rig = await startRig({ exportEnabled: true, connector: { dataPath: 'export' } });
      inject(rig);
      await expect(rig.sync()).rejects.toMatchObject({ retryable: expect.any(Boolean) });
      expect(leftovers(rig.cloud)).toEqual(NOTHING_LEFT);
    });
  }

  it('the export wrote objects that the failed export left; they were deleted', async () => {
    rig = await startRig({ exportEnabled: true, connector: { dataPath: 'export' } });
    rig.cloud.state.failNextExportAfterObjects = 2;
    await expect(rig.sync()).rejects.toThrow(/snapshot data export .* failed: CBR.9999/);
    expect(rig.cloud.state.stats.objectsWritten).toBe(2);
    expect(rig.cloud.state.stats.objectsDeleted).toBe(2);
  });

  it('the sink fails mid-transfer: the objects are deleted on close', async () => {
    rig = await startRig({ exportEnabled: true, connector: { dataPath: 'export' } });
    await expect(rig.sync({ sinkFails: true })).rejects.toThrow(/target disk full/);
    expect(rig.cloud.state.stats.objectsWritten).toBeGreaterThan(0);
    expect(leftovers(rig.cloud)).toEqual(NOTHING_LEFT);
  });

  it('a successful sync deletes its exported objects too', async () => {
    rig = await startRig({ exportEnabled: true, connector: { dataPath: 'export' } });
    await rig.sync();
    expect(rig.cloud.state.stats.objectsWritten).toBe(4);
    expect(rig.cloud.state.stats.rangedGets).toBeGreaterThanOrEqual(4);
    expect(leftovers(rig.cloud)).toEqual(NOTHING_LEFT);
  });
});

describe('attach path: a failure at any step leaves no volume and no attachment', () => {
  const steps: Array<[string, (r: Rig) => void]> = [
    ['volume creation', (r) => r.cloud.fault('api', { ...bad, method: 'POST', path: /\/cloudvolumes$/ })],
    // The first job poll is the create job's: it fails before the job names the volume.
    ['the create job', (r) => r.cloud.fault('api', { ...bad, method: 'GET', path: /\/jobs\//, times: 1 })],
    ['the attach request', (r) => r.cloud.fault('api', { ...bad, method: 'POST', path: /\/attachvolume$/ })],
    [
      'the attach job',
      (r) => r.cloud.fault('api', { ...bad, method: 'GET', path: /\/jobs\//, skip: 2, times: 1 }),
    ],
    [
      'locating the device (it never appears)',
      (r) => {
        r.cloud.state.exposeDevices = false;
      },
    ],
  ];
  for (const [step, inject] of steps) {
    it(`fails at ${step}, then nothing is left`, async () => {
      rig = await startRig({ exportEnabled: false });
      inject(rig);
      await expect(rig.sync()).rejects.toMatchObject({ retryable: expect.any(Boolean) });
      expect(leftovers(rig.cloud)).toEqual(NOTHING_LEFT);
      expect(rig.cloud.state.volumes.size).toBe(2);
    });
  }

  it('the sink fails mid-transfer: the volume is detached and deleted on close', async () => {
    rig = await startRig({ exportEnabled: false });
    await expect(rig.sync({ sinkFails: true })).rejects.toThrow(/target disk full/);
    expect(rig.cloud.state.stats.attachments).toBe(1);
    expect(rig.cloud.state.stats.detachments).toBe(1);
    expect(leftovers(rig.cloud)).toEqual(NOTHING_LEFT);
  });

  it('says the export is not enabled, naming the regions where it exists, and falls back', async () => {
    rig = await startRig({ exportEnabled: false });
    const reader = await rig.session.openReader(rig.host.disks[0]!, { snapshot: rig.snapshot });
    try {
      const warning = reader.warnings?.find((w) => w.code === 'export-not-enabled');
      expect(warning?.message).toMatch(/not enabled for this account in tr-west-1 \(BackupService\.6302/);
      expect(warning?.message).toMatch(/Shenzhen .*Istanbul \(tr-west-1\).*Ankara/);
      expect(reader.warnings?.map((w) => w.code)).toContain('hash-diff');
      expect(rig.session.warnings?.map((w) => w.code)).toEqual(['export-not-enabled']);
      expect(rig.cloud.state.attachmentsTo(rig.cloud.proxyId)).toHaveLength(1);
    } finally {
      await reader.close();
    }
    expect(leftovers(rig.cloud)).toEqual(NOTHING_LEFT);
  });

  it('each open reader holds a mount slot, given back on close and on failure', async () => {
    const held: string[] = [];
    let released = 0;
    const mountSlots = {
      async acquire(request: MountSlotRequest) {
        held.push(request.diskId);
        return {
          async release() {
            released++;
          },
        };
      },
    };
    rig = await startRig({ exportEnabled: false });
    const session = await fastConnector().connect(rig.cloud.config(), {
      devices: { byIdDir: rig.cloud.byIdDir },
      mountSlots,
    });
    try {
      const reader = await session.openReader(rig.host.disks[0]!, { snapshot: rig.snapshot });
      expect(held).toEqual([rig.host.disks[0]!.id]);
      expect(released).toBe(0);
      await reader.close();
      expect(released).toBe(1);
      rig.cloud.fault('api', { ...bad, method: 'POST', path: /\/attachvolume$/ });
      await expect(session.openReader(rig.host.disks[0]!, { snapshot: rig.snapshot })).rejects.toThrow(
        /injected/,
      );
      expect(held).toHaveLength(2);
      expect(released).toBe(2);
    } finally {
      await session.close();
    }
  });

  it('an export-path reader takes no mount slot: nothing is attached to the proxy', async () => {
    const mountSlots = {
      async acquire(request: MountSlotRequest): Promise<never> {
        throw new Error(`the export path asked for a mount slot for ${request.diskId}`);
      },
    };
    rig = await startRig({ exportEnabled: true });
    const session = await fastConnector().connect(rig.cloud.config(), {
      devices: { byIdDir: rig.cloud.byIdDir },
      mountSlots,
    });
    try {
      const reader = await session.openReader(rig.host.disks[0]!, { snapshot: rig.snapshot });
      expect(rig.cloud.state.attachmentsTo(rig.cloud.proxyId)).toHaveLength(0);
      await reader.close();
    } finally {
      await session.close();
    }
  });

  it('mountsDisks says whether readers may attach: auto and attach yes, export only no', () => {
    expect(fastConnector().capabilities.mountsDisks).toBe(true);
    expect(fastConnector({ dataPath: 'attach' }).capabilities.mountsDisks).toBe(true);
    expect(fastConnector({ dataPath: 'export' }).capabilities.mountsDisks).toBe(false);
  });

  it('a 403 on the bucket is a permission error, not a reason to fall back', async () => {
    rig = await startRig({ exportEnabled: true });
    rig.cloud.fault('obs', { kind: 'status', status: 403, method: 'HEAD' });
    await expect(rig.sync()).rejects.toMatchObject({ code: 'permission', operation: 'HeadBucket' });
    expect(rig.session.warnings).toEqual([]);
    expect(rig.cloud.state.stats.volumesCreated).toBe(0);
  });

  it('dataPath export: a refusal is an unsupported error, not a fallback', async () => {
    rig = await startRig({ exportEnabled: false, connector: { dataPath: 'export' } });
    await expect(rig.sync()).rejects.toMatchObject({ code: 'unsupported', retryable: false });
    expect(rig.cloud.state.stats.volumesCreated).toBe(0);
  });
});
