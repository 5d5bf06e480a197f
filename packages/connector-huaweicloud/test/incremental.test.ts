import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileManifestStore, FileSink, transferDisk } from '@syncproxy/core';
import { seededBytes } from '@syncproxy/testkit/mock';
import { afterEach, describe, expect, it } from 'vitest';
import { type Rig, startRig } from './setup.js';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

const MIB = 1024 * 1024;

describe.each([
  ['export', true],
  ['attach', false],
])('%s path: an incremental with the previous manifest (as syncHost passes it)', (_path, exportEnabled) => {
  it('reads the snapshot once, sends only the changed chunk, and the image equals the disk', async () => {
    rig = await startRig({ exportEnabled });
    const disk = rig.host.disks[0]!;
    const image = join(rig.dir, 'disk.raw');
    const manifests = new FileManifestStore(join(rig.dir, 'disk.manifest'));
    const full = await rig.session.openReader(disk, { snapshot: rig.snapshot });
    try {
      await transferDisk({ reader: full, sink: new FileSink(image), checkpoint: false, manifest: manifests });
    } finally {
      await full.close();
    }
    const volume = rig.cloud.state.volumes.get(disk.id)!.disk;
    volume.write(700 * MIB + 12_345, seededBytes(99, 1000));
    const next = await rig.session.createSnapshot(rig.host);
    const readsBefore = exportEnabled
      ? rig.cloud.state.stats.exportsStarted
      : rig.cloud.state.stats.volumesCreated;
    const previousManifest = await manifests.load();
    const reader = await rig.session.openReader(disk, {
      snapshot: next,
      base: rig.snapshot,
      ...(previousManifest ? { previousManifest } : {}),
    });
    const extents = [];
    try {
      for await (const extent of reader.extents()) extents.push(extent);
      expect(reader.warnings?.map((w) => w.code)).toContain('hash-diff');
      await transferDisk({ reader, sink: new FileSink(image), checkpoint: false, manifest: manifests });
    } finally {
      await reader.close();
    }
    // One read of the new snapshot: the base is not read again.
    const readsAfter = exportEnabled
      ? rig.cloud.state.stats.exportsStarted
      : rig.cloud.state.stats.volumesCreated;
    expect(readsAfter - readsBefore).toBe(1);
    expect(extents).toEqual([{ offset: 700 * MIB, length: 4 * MIB, kind: 'data' }]);
    const bytes = new Uint8Array(await readFile(image));
    expect(Buffer.compare(bytes, volume.read(0, volume.sizeBytes))).toBe(0);
  });
});
