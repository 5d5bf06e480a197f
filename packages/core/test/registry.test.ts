import {
  ConnectorRegistry,
  createRegistry,
  defineConnector,
  type SourceConnector,
  SyncproxyError,
} from '@syncproxy/core';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';

function sample(id: string, version = '1.0.0'): SourceConnector<{ url: string }> {
  return defineConnector({
    id,
    displayName: `Sample ${id}`,
    version,
    configSchema: z.object({ url: z.string().url() }),
    async connect() {
      throw new Error('not used');
    },
  });
}

function thrown(fn: () => unknown): SyncproxyError {
  try {
    fn();
  } catch (error) {
    if (SyncproxyError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a SyncproxyError');
}

describe('ConnectorRegistry', () => {
  it('registers connectors at runtime and returns them by id, listed in id order', () => {
    const registry = createRegistry([sample('zeta')]);
    registry.register(sample('alpha'));
    expect(registry.get('alpha').displayName).toBe('Sample alpha');
    expect(registry.has('zeta')).toBe(true);
    expect(registry.list().map((c) => c.id)).toEqual(['alpha', 'zeta']);
    expect(registry.list()[0]).toEqual({
      id: 'alpha',
      displayName: 'Sample alpha',
      version: '1.0.0',
      specVersion: 'v1',
      capabilities: {
        changeTracking: 'hash',
        consistentMultiDiskSnapshot: false,
        mountsDisks: false,
        quiescedSnapshots: false,
      },
    });
  });

  it('refuses a duplicate id with a conflict error naming the registered connector', () => {
    const registry = new ConnectorRegistry([sample('aws', '1.2.0')]);
    const error = thrown(() => registry.register(sample('aws', '2.0.0')));
    expect(error.code).toBe('conflict');
    expect(error.retryable).toBe(false);
    expect(error.message).toBe(
      'register refused: a connector with id aws is already registered (Sample aws 1.2.0); unregister it first',
    );
    expect(registry.get('aws').version).toBe('1.2.0');
  });

  it('refuses a connector built for a spec version this core does not support', () => {
    const future = { ...sample('future'), specVersion: 'v2' } as unknown as SourceConnector;
    const error = thrown(() => createRegistry().register(future));
    expect(error.code).toBe('unsupported');
    expect(error.message).toContain(
      'connector future@1.0.0 targets spec v2, which this core does not support (supported: v1)',
    );
  });

  it('answers an unknown id with a not-found error that lists the known ids', () => {
    const registry = createRegistry([sample('vmware'), sample('aws')]);
    const error = thrown(() => registry.get('oracle'));
    expect(error.code).toBe('not-found');
    expect(error.message).toBe('unknown connector "oracle" (known: aws, vmware)');
    expect(error.details).toEqual({ id: 'oracle', known: ['aws', 'vmware'] });
    expect(thrown(() => createRegistry().get('x')).message).toBe(
      'unknown connector "x" (known: none registered)',
    );
  });

  it('refuses to register something that is not a connector', () => {
    const error = thrown(() => createRegistry().register({} as SourceConnector));
    expect(error.code).toBe('config');
    expect(error.message).toBe('register refused: not a connector (make it with defineConnector())');
  });
});

describe('defineConnector', () => {
  it('validates the definition and names every problem', () => {
    const error = thrown(() =>
      defineConnector({
        id: 'Bad Id',
        displayName: '',
        version: 'one',
        configSchema: {} as z.ZodType,
        connect: undefined as never,
      }),
    );
    expect(error.code).toBe('config');
    expect(error.message).toBe(
      'invalid connector definition: id must match /^[a-z][a-z0-9-]{1,47}$/ (got "Bad Id"); displayName must be a non-empty string; version must be a semver string; configSchema must be a zod schema; connect must be a function',
    );
  });

  it('refuses a spec version the core does not support at definition time', () => {
    const error = thrown(() =>
      defineConnector({
        id: 'x-platform',
        displayName: 'X',
        version: '0.1.0',
        specVersion: 'v9' as 'v1',
        configSchema: z.object({}),
        connect: async () => {
          throw new Error('unused');
        },
      }),
    );
    expect(error.code).toBe('unsupported');
  });

  it('fills capability defaults and keeps declared ones', () => {
    const connector = defineConnector({
      id: 'cbt',
      displayName: 'CBT',
      version: '0.1.0',
      configSchema: z.object({}),
      capabilities: { changeTracking: 'native', mountsDisks: true },
      connect: async () => {
        throw new Error('unused');
      },
    });
    expect(connector.capabilities).toEqual({
      changeTracking: 'native',
      consistentMultiDiskSnapshot: false,
      mountsDisks: true,
      quiescedSnapshots: false,
    });
    expect(connector.networkRequirements({})).toEqual([]);
  });
});
