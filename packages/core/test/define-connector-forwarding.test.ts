import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type ChangedBlockReader,
  type ConnectorSession,
  defineConnector,
  type SnapshotRef,
  SyncproxyError,
} from '../src/index.js';

const snapshot: SnapshotRef = {
  id: 's1',
  platform: 'fwd',
  hostId: 'h',
  createdAt: '2026-01-01T00:00:00Z',
  disks: [],
};

/**
 * A reader with every member of the contract, optional ones included. `Required<>` makes this fail to compile
 * when the contract gains a member this test does not set, and the loop below then checks it is forwarded.
 */
function fullReader(): Required<ChangedBlockReader> & { futureMember: string } {
  return {
    diskSize: 4096,
    granularity: 512,
    warnings: [{ code: 'hash-diff', message: 'x' }],
    hints: { chunkSizeBytes: 1024, extentsReadData: true, incremental: true, readBytesInFlight: 8192 },
    async *extents() {
      yield { offset: 0, length: 512, kind: 'data' as const };
    },
    read: async (_offset, length) => new Uint8Array(length),
    readInto: async (target) => {
      target.fill(7);
    },
    close: async () => {},
    futureMember: 'kept',
  };
}

function fullSession(
  reader: ChangedBlockReader,
): Required<ConnectorSession> & { futureMethod(): Promise<string> } {
  return {
    verify: async () => ({ status: 'normal', hostCount: 0 }),
    listHosts: async () => [],
    prechecks: async () => [],
    createSnapshot: async () => snapshot,
    openReader: async () => reader,
    deleteSnapshot: async () => {},
    sweep: async () => ({ resources: [{ kind: 'snapshot', id: 's0', deleted: false }] }),
    close: async () => {},
    warnings: [{ code: 'w', message: 'session warning' }],
    futureMethod: async () => 'forwarded',
  };
}

function connectorOf(session: ConnectorSession) {
  return defineConnector({
    id: 'fwd',
    displayName: 'Forwarding',
    version: '1.0.0',
    configSchema: z.object({}),
    connect: async () => session,
  });
}

describe('defineConnector forwards every member of sessions and readers', () => {
  it('every member a reader has, declared now or added later, reaches the caller', async () => {
    const inner = fullReader();
    const session = await connectorOf(fullSession(inner)).connect({});
    const reader = await session.openReader({ id: 'd', sizeBytes: 4096 }, { snapshot });
    for (const key of Object.keys(inner) as Array<keyof typeof inner>) {
      const value = inner[key];
      if (typeof value === 'function')
        expect(typeof (reader as unknown as typeof inner)[key], key).toBe('function');
      else expect((reader as unknown as typeof inner)[key], key).toEqual(value);
    }
    const target = new Uint8Array(4);
    await reader.readInto!(target, 0);
    expect([...target]).toEqual([7, 7, 7, 7]);
  });

  it('every method a session has, sweep and later ones included, is forwarded and guarded', async () => {
    const inner = fullSession(fullReader());
    const session = (await connectorOf(inner).connect({})) as unknown as typeof inner;
    for (const key of Object.keys(inner) as Array<keyof typeof inner>) {
      expect(typeof session[key], key).toBe(typeof inner[key]);
    }
    expect(await session.sweep()).toEqual({ resources: [{ kind: 'snapshot', id: 's0', deleted: false }] });
    expect(await session.futureMethod()).toBe('forwarded');
    expect(session.warnings).toEqual(inner.warnings);
    const failing = (await connectorOf({
      ...inner,
      sweep: async () => {
        throw new Error('boom');
      },
    }).connect({})) as unknown as typeof inner;
    const error = await failing.sweep().catch((e: unknown) => e);
    expect(SyncproxyError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: 'internal', platform: 'fwd' });
  });

  it('util.inspect and JSON of a session or reader show none of the connector internals (a config with secrets)', async () => {
    const { inspect } = await import('node:util');
    const inner = Object.assign(fullSession(fullReader()), { config: { password: 'hunter2-secret' } });
    const session = await connectorOf(inner).connect({});
    const reader = await session.openReader({ id: 'd', sizeBytes: 4096 }, { snapshot });
    for (const value of [session, reader]) {
      expect(inspect(value, { depth: 5, showHidden: true })).not.toContain('hunter2');
      expect(JSON.stringify(value)).toBe('{}');
      expect(Object.keys(value)).toEqual([]);
    }
  });

  it('hints.incremental follows the base the reader was opened with when the reader does not say', async () => {
    const bare: ChangedBlockReader = {
      ...fullReader(),
      hints: { chunkSizeBytes: 1024, readBytesInFlight: 8192 },
    };
    const session = await connectorOf(fullSession(bare)).connect({});
    const full = await session.openReader({ id: 'd', sizeBytes: 4096 }, { snapshot });
    expect(full.hints).toEqual({ chunkSizeBytes: 1024, readBytesInFlight: 8192, incremental: false });
    const incremental = await session.openReader({ id: 'd', sizeBytes: 4096 }, { snapshot, base: snapshot });
    expect(incremental.hints).toEqual({ chunkSizeBytes: 1024, readBytesInFlight: 8192, incremental: true });
  });
});
