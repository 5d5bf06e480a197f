import { mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MockHostRef, MockPlatform } from '@syncproxy/testkit/mock';

export interface LocalDiskPlatform extends MockPlatform {
  /** The directory holding the images and the state directory. */
  readonly dir: string;
}

/**
 * A "platform" for the local-disk connector: sparse raw image files in a
 * temporary directory, and a state directory for snapshot manifests. Removed
 * by `close()`.
 */
export async function createLocalDiskPlatform(options: { dir?: string } = {}): Promise<LocalDiskPlatform> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'syncproxy-localdisk-')));
  const stateDir = join(dir, 'state');
  let host: MockHostRef | undefined;
  const paths = new Map<string, string>();
  const pathOf = (diskId: string): string => {
    const path = paths.get(diskId);
    if (path === undefined) throw new Error(`no disk ${diskId}`);
    return path;
  };
  const withFile = async <T>(
    diskId: string,
    flags: string,
    run: (file: import('node:fs/promises').FileHandle) => Promise<T>,
  ) => {
    const file = await open(pathOf(diskId), flags);
    try {
      return await run(file);
    } finally {
      await file.close();
    }
  };

  return {
    dir,
    async createHost(spec) {
      if (host !== undefined) throw new Error('a local disk platform is one machine: createHost() once');
      const disks = [];
      for (const [i, disk] of spec.disks.entries()) {
        const id = `disk-${i}`;
        const path = join(dir, `${id}.img`);
        const file = await open(path, 'w');
        await file.truncate(disk.sizeBytes);
        await file.close();
        paths.set(id, path);
        disks.push({ id, sizeBytes: disk.sizeBytes });
      }
      host = { id: spec.name, name: spec.name, disks };
      return host;
    },
    config() {
      if (host === undefined) throw new Error('createHost() first');
      return {
        hostName: host.name,
        disks: host.disks.map((d) => ({ id: d.id, path: pathOf(d.id) })),
        stateDir,
        chunkSizeBytes: 64 * 1024,
      };
    },
    writeDisk: (diskId, offset, data) =>
      withFile(diskId, 'r+', async (f) => void (await f.write(data, 0, data.length, offset))),
    writeZeroes: (diskId, offset, length) =>
      withFile(diskId, 'r+', async (f) => void (await f.write(new Uint8Array(length), 0, length, offset))),
    readDisk: (diskId, offset, length) =>
      withFile(diskId, 'r', async (f) => {
        const out = new Uint8Array(length);
        await f.read(out, 0, length, offset);
        return out;
      }),
    async snapshotCount() {
      try {
        return (await readdir(join(stateDir, 'snapshots'))).length;
      } catch {
        return 0;
      }
    },
    close: () => rm(dir, { recursive: true, force: true }),
  };
}
