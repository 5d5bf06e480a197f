import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createFileStateStore,
  createManualClock,
  createProxyScheduler,
  type StateStore,
  type SyncproxyError,
} from '@syncproxy/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const clock = createManualClock(0);

describe('concurrent assigns on the file store', () => {
  let dir: string;
  let store: StateStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'syncproxy-sched-'));
  });
  afterEach(async () => {
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('fills exactly 10 x 50 slots from 1,000 concurrent assigns through two schedulers sharing one file', async () => {
    store = createFileStateStore({ path: join(dir, 'state.json') });
    const other = createFileStateStore({ path: join(dir, 'state.json') });
    const a = createProxyScheduler({ store, clock, heartbeatTimeoutMs: 3_600_000 });
    const b = createProxyScheduler({ store: other, clock, heartbeatTimeoutMs: 3_600_000 });
    for (let i = 0; i < 10; i++) {
      await a.registerProxy({ id: `p${String(i).padStart(2, '0')}` });
      await a.bind(`p${String(i).padStart(2, '0')}`, 'oci-fra');
    }
    const results = await Promise.allSettled(
      Array.from({ length: 1_000 }, (_, i) =>
        (i % 2 === 0 ? a : b).assign({ id: `t${i}`, platformId: 'oci-fra', mountSlots: 1 }),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(500);
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as SyncproxyError] : []));
    expect(refused.map((e) => (e.details as { reason: string }).reason)).toEqual(Array(500).fill('all-full'));
    for (const s of [a, b]) {
      expect((await s.listProxies()).map((p) => p.load.mountSlotsUsed)).toEqual(Array(10).fill(50));
    }
    await a.close();
    await b.close();
    await other.close();
  });
});
