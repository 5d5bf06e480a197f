import { createHcsConnector, type HcsConnectorOptions } from '@syncproxy/connector-hcs';
import { type MockHcs, startMockHcs } from '@syncproxy/connector-hcs/mock';
import { type ConnectorContext, type Logger, SyncproxyError } from '@syncproxy/core';

export const GIB = 1024 ** 3;
export const MIB = 1024 * 1024;

/** Every log line a session wrote, as text: where a leaked secret would show. */
export function capturingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  // Pino's order, (fields, message) or (message): the line keeps both, message first.
  const log =
    (level: string) =>
    (...args: unknown[]): void => {
      const message = args.find((a) => typeof a === 'string') ?? '';
      const fields = args.find((a) => typeof a === 'object' && a !== null) ?? {};
      lines.push(`${level} ${message} ${JSON.stringify(fields)}`);
    };
  return { lines, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

export interface Rig {
  mock: MockHcs;
  connector: ReturnType<typeof createHcsConnector>;
  context(extra?: ConnectorContext): ConnectorContext;
}

export async function rig(options: HcsConnectorOptions = {}): Promise<Rig> {
  const mock = await startMockHcs();
  const connector = createHcsConnector({ locateTimeoutMs: 2000, chunkSizeBytes: MIB, ...options });
  return {
    mock,
    connector,
    context: (extra = {}) => ({ devices: { byIdDir: mock.devicesDir }, ...extra }),
  };
}

/** What the Dorado holds that a sync made: all must be zero once a sync ends, however it ends. */
export function leftovers(mock: MockHcs) {
  return {
    snapshots: mock.state.snapshots.size,
    mappingViews: mock.state.mappingViews.size,
    lunGroupEntries: mock.state.lunGroupEntries,
    lunGroups: mock.state.lunGroups.size,
    consistencyGroups: mock.state.consistencyGroups.size,
    protectGroups: mock.state.protectGroups.size,
    deviceLinks: mock.state.deviceLinks,
  };
}

export const NOTHING_LEFT = {
  snapshots: 0,
  mappingViews: 0,
  lunGroupEntries: 0,
  lunGroups: 0,
  consistencyGroups: 0,
  protectGroups: 0,
  deviceLinks: 0,
};

export async function rejection(run: () => Promise<unknown>): Promise<SyncproxyError> {
  try {
    await run();
  } catch (error) {
    if (error instanceof SyncproxyError) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}
