import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type ChangedBlockReader, type ConnectorSession, type Disk, defineConnector } from '../src/index.js';

/** A connector whose session and readers record when they are closed. */
function recordingConnector(closed: string[]) {
  const reader = (id: string): ChangedBlockReader => ({
    diskSize: 4096,
    granularity: 4096,
    hints: { chunkSizeBytes: 4096, extentsReadData: true },
    async *extents() {},
    read: async (_offset, length) => new Uint8Array(length),
    close: async () => {
      closed.push(`reader ${id}`);
    },
  });
  const session: ConnectorSession = {
    verify: async () => ({ status: 'normal', hostCount: 1 }),
    listHosts: async () => [],
    prechecks: async () => [],
    createSnapshot: async () => {
      throw new Error('not used');
    },
    openReader: async (disk) => reader(disk.id),
    deleteSnapshot: async () => {},
    close: async () => {
      closed.push('session');
    },
  };
  return defineConnector({
    id: 'recording',
    displayName: 'Recording',
    version: '0.0.1',
    configSchema: z.object({}),
    capabilities: {
      changeTracking: 'hash',
      consistentMultiDiskSnapshot: false,
      mountsDisks: false,
      quiescedSnapshots: false,
    },
    connect: async () => session,
  });
}

const disk = (id: string) => ({ id, name: id, sizeBytes: 4096 }) as Disk;
const snapshot = { id: 's', platform: 'recording', hostId: 'h', createdAt: '', disks: [] };

describe('await using', () => {
  it('closes the readers, then the session, at the end of the block', async () => {
    const closed: string[] = [];
    {
      await using session = await recordingConnector(closed).connect({});
      await using a = await session.openReader(disk('a'), { snapshot });
      await using b = await session.openReader(disk('b'), { snapshot });
      expect(a.diskSize + b.diskSize).toBe(8192);
      expect(closed).toEqual([]);
    }
    expect(closed).toEqual(['reader b', 'reader a', 'session']);
  });

  it('closes them too when the block throws, and the error comes through', async () => {
    const closed: string[] = [];
    const failing = async () => {
      await using session = await recordingConnector(closed).connect({});
      await using _reader = await session.openReader(disk('a'), { snapshot });
      throw new Error('the transfer failed');
    };
    await expect(failing()).rejects.toThrow('the transfer failed');
    expect(closed).toEqual(['reader a', 'session']);
  });
});

describe('the wrapped reader', () => {
  it("keeps the reader's hints, which the engine and planners read before any data", async () => {
    const session = await recordingConnector([]).connect({});
    const reader = await session.openReader(disk('a'), { snapshot });
    // `incremental` is filled in from the base it was opened with (none here).
    expect(reader.hints).toEqual({ chunkSizeBytes: 4096, extentsReadData: true, incremental: false });
    await reader.close();
    await session.close();
  });
});
