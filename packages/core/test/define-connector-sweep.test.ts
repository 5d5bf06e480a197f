import {
  type ConnectorSession,
  defineConnector,
  REDACTED,
  type SweepOptions,
  SyncproxyError,
  secret,
} from '@syncproxy/core';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';

const SECRET = 'Sw33p-$ecret';
const configSchema = z.object({ user: z.string(), password: secret(z.string()) });

function connectorWith(sweep: ConnectorSession['sweep']) {
  return defineConnector({
    id: 'sweeper',
    displayName: 'Sweeper',
    version: '0.0.1',
    configSchema,
    async connect() {
      const never = () => Promise.reject(new Error('not used'));
      return {
        verify: never,
        listHosts: never,
        prechecks: never,
        createSnapshot: never,
        openReader: never,
        deleteSnapshot: never,
        close: async () => {},
        ...(sweep ? { sweep } : {}),
      };
    },
  });
}

describe('defineConnector and sweep', () => {
  it('forwards sweep with its options and report', async () => {
    const seen: (SweepOptions | undefined)[] = [];
    const session = await connectorWith(async (options) => {
      seen.push(options);
      return { resources: [{ kind: 'snapshot', id: 'snap-1', deleted: false }] };
    }).connect({ user: 'u', password: SECRET });
    await expect(session.sweep?.({ dryRun: true, keep: ['snap-2'] })).resolves.toEqual({
      resources: [{ kind: 'snapshot', id: 'snap-1', deleted: false }],
    });
    expect(seen).toEqual([{ dryRun: true, keep: ['snap-2'] }]);
  });

  it('redacts and stamps the platform on errors sweep throws', async () => {
    const session = await connectorWith(async () => {
      throw new Error(`DeleteSnapshot refused for ${SECRET}`);
    }).connect({ user: 'u', password: SECRET });
    const error = (await session.sweep?.().catch((e: unknown) => e)) as SyncproxyError;
    expect(SyncproxyError.isInstance(error)).toBe(true);
    expect(error.platform).toBe('sweeper');
    expect(error.message).toBe(`sweep failed: DeleteSnapshot refused for ${REDACTED}`);
    expect(JSON.stringify(error) + error.stack).not.toContain(SECRET);
  });

  it('offers no sweep when the connector has none', async () => {
    const session = await connectorWith(undefined).connect({ user: 'u', password: SECRET });
    expect(session.sweep).toBeUndefined();
  });
});
