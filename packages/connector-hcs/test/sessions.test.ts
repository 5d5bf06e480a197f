import { inspect } from 'node:util';
import { createHcsConnector } from '@syncproxy/connector-hcs';
import { startMockHcs } from '@syncproxy/connector-hcs/mock';
import { createManualClock } from '@syncproxy/core';
import { afterEach, describe, expect, it } from 'vitest';
import { capturingLogger, type Rig, rejection, rig } from './helpers.js';

let r: Rig | undefined;
afterEach(async () => {
  await r?.mock.close();
  r = undefined;
});

describe('hcs: sessions, re-authentication and secrets', () => {
  it('the Dorado session is logged out on close', async () => {
    r = await rig();
    const { server } = r.mock.addServer({ name: 'vm', volumesGb: [1] });
    const session = await r.connector.connect(r.mock.config(), r.context());
    await session.verify();
    const host = (await session.listHosts()).find((h) => h.id === server.id)!;
    await session.deleteSnapshot(await session.createSnapshot(host));
    expect(r.mock.state.sessions.size).toBe(1);
    await session.close();
    expect(r.mock.state.sessions.size).toBe(0);
    expect(r.mock.state.stats).toMatchObject({ sessionsOpened: 1, sessionsClosed: 1 });
    const logout = r.mock.dorado.calls.filter((c) => c.method === 'DELETE' && c.path.endsWith('/sessions'));
    expect(logout).toHaveLength(1);
  });

  it('an expired Dorado session (-401) is opened again and the call repeated', async () => {
    r = await rig();
    r.mock.addServer({ name: 'vm', volumesGb: [1] });
    const session = await r.connector.connect(r.mock.config(), r.context());
    try {
      await session.verify();
      r.mock.expireDoradoSessions();
      const host = (await session.listHosts())[0]!;
      const snapshot = await session.createSnapshot(host);
      expect(r.mock.state.stats.sessionsOpened).toBe(2);
      await session.deleteSnapshot(snapshot);
    } finally {
      await session.close();
    }
  });

  it('a refused IAM token (401) is taken again once; a token near its expiry is renewed before use', async () => {
    r = await rig();
    r.mock.addServer({ name: 'vm', volumesGb: [1] });
    const session = await r.connector.connect(r.mock.config(), r.context());
    try {
      await session.listHosts();
      expect(r.mock.state.stats.tokensIssued).toBe(1);
      r.mock.revokeTokens();
      expect(await session.listHosts()).toHaveLength(1);
      expect(r.mock.state.stats.tokensIssued).toBe(2);
    } finally {
      await session.close();
    }
    await r.mock.close();
    // One clock for the mock and the connector: a 1-hour token is used until 5 minutes before it ends.
    const clock = createManualClock(Date.parse('2026-12-06T00:00:00Z'));
    const mock = await startMockHcs({ tokenTtlMs: 3600_000, now: () => clock.now() });
    r = { ...r, mock };
    mock.addServer({ name: 'vm', volumesGb: [1] });
    const connector = createHcsConnector({ clock });
    const timed = await connector.connect(mock.config(), { devices: { byIdDir: mock.devicesDir } });
    try {
      await timed.listHosts();
      await clock.advance(54 * 60_000);
      await timed.listHosts();
      expect(mock.state.stats.tokensIssued).toBe(1);
      await clock.advance(2 * 60_000);
      await timed.listHosts();
      expect(mock.state.stats.tokensIssued).toBe(2);
      expect(mock.hcs.calls.filter((c) => c.status === 401)).toHaveLength(0);
    } finally {
      await timed.close();
    }
  });

  it('neither password appears in logs or errors; bad credentials are auth errors', async () => {
    r = await rig();
    const { server } = r.mock.addServer({ name: 'vm', volumesGb: [1] });
    const logger = capturingLogger();
    const config = r.mock.config();
    const secrets = [r.mock.password, r.mock.storagePassword];
    const texts: string[] = [];

    const session = await r.connector.connect(config, r.context({ logger }));
    try {
      await session.verify();
      const host = (await session.listHosts()).find((h) => h.id === server.id)!;
      const snapshot = await session.createSnapshot(host);
      const reader = await session.openReader(host.disks[0]!, { snapshot });
      await reader.close();
      await session.deleteSnapshot(snapshot);
      r.mock.failDorado({ path: '/snapshot', method: 'POST', code: 1077949006, times: 1 });
      const busy = await rejection(() => session.createSnapshot(host));
      texts.push(inspect(busy, { depth: 8 }), JSON.stringify(busy));
    } finally {
      await session.close();
    }

    const badIam = { ...config, password: 'wrong-iam-password' };
    const s1 = await r.connector.connect(badIam, r.context({ logger }));
    const iamError = await rejection(() => s1.verify());
    await s1.close();
    expect(iamError.code).toBe('auth');
    expect(iamError.retryable).toBe(false);
    texts.push(inspect(iamError, { depth: 8 }));

    const storages = (config.storages as Array<Record<string, unknown>>).map((s) => ({
      ...s,
      password: 'wrong-storage-password',
    }));
    const s2 = await r.connector.connect({ ...config, storages }, r.context({ logger }));
    const doradoError = await rejection(() => s2.verify());
    await s2.close();
    expect(doradoError.code).toBe('auth');
    expect(doradoError.message).toContain('refused the login of syncproxy');
    texts.push(inspect(doradoError, { depth: 8 }));
    secrets.push('wrong-iam-password', 'wrong-storage-password');

    const all = [...texts, ...logger.lines].join('\n');
    expect(logger.lines.length).toBeGreaterThan(5);
    for (const secret of secrets) expect(all).not.toContain(secret);
  });
});
