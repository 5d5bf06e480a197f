import type { z } from 'zod';
import { parseConfig } from './config/parse-config.js';
import { collectSecrets, Redactor } from './config/redact.js';
import type {
  ConnectorCapabilities,
  ConnectorContext,
  ConnectorSession,
  DisposableSession,
  NetworkRequirement,
  SourceConnector,
  SpecVersion,
} from './contracts/connector.js';
import { SUPPORTED_SPEC_VERSIONS } from './contracts/connector.js';
import type { Logger } from './contracts/logger.js';
import type {
  ChangedBlockReader,
  DisposableReader,
  Extent,
  ReaderHints,
  ReadOptions,
} from './contracts/reader.js';
import { SyncproxyError } from './errors/syncproxy-error.js';
import { redactingLogger, silentLogger } from './logger.js';

/** The context a connector's own `connect` receives: always a logger, and the session's redactor. */
export interface ResolvedConnectorContext extends ConnectorContext {
  logger: Logger;
  /** Knows this config's secrets; use it for anything built from platform answers. */
  redactor: Redactor;
}

/** What a connector author writes; {@link defineConnector} turns it into a {@link SourceConnector}. */
export interface ConnectorDefinition<Config> {
  id: string;
  displayName: string;
  /** The connector package's version. */
  version: string;
  /** Defaults to `'v1'`. */
  specVersion?: SpecVersion;
  configSchema: z.ZodType<Config>;
  /** Defaults: `hash` change tracking, no multi-disk snapshots, no mounts, no quiescing. */
  capabilities?: Partial<ConnectorCapabilities>;
  networkRequirements?(config: Config): NetworkRequirement[];
  /** Receives the parsed config; errors it throws are redacted and mapped for you. */
  connect(config: Config, context: ResolvedConnectorContext): Promise<ConnectorSession>;
}

const ID_PATTERN = /^[a-z][a-z0-9-]{1,47}$/;

const DEFAULT_CAPABILITIES: ConnectorCapabilities = {
  changeTracking: 'hash',
  consistentMultiDiskSnapshot: false,
  mountsDisks: false,
  quiescedSnapshots: false,
};

/**
 * Makes a connector from its definition. It earns its place:
 * - validates the definition (id, version, schema, spec version) and fills capability defaults;
 * - parses the config in `connect()` into typed `config` errors that name the fields;
 * - wraps the session (and its readers) so every error is a SyncproxyError with
 *   the platform stamped and no secret of the config in its message, stack,
 *   cause chain or JSON; the logger handed to the connector redacts too.
 */
export function defineConnector<Config>(definition: ConnectorDefinition<Config>): SourceConnector<Config> {
  validateDefinition(definition);
  const { id } = definition;
  const capabilities = Object.freeze({ ...DEFAULT_CAPABILITIES, ...definition.capabilities });
  const connector: SourceConnector<Config> = {
    id,
    displayName: definition.displayName,
    specVersion: definition.specVersion ?? 'v1',
    version: definition.version,
    configSchema: definition.configSchema,
    capabilities,
    networkRequirements(config: Config): NetworkRequirement[] {
      // Parsed here too: a product may hand it the raw form, and a bad one is a `config` error, never zod's.
      return (
        definition.networkRequirements?.(parseConfig(definition.configSchema, config, `${id} config`)) ?? []
      );
    },
    async connect(input: unknown, context: ConnectorContext = {}): Promise<DisposableSession> {
      const config = parseConfig(definition.configSchema, input, `${id} config`);
      const redactor = new Redactor(collectSecrets(definition.configSchema, config));
      const logger = redactingLogger(context.logger ?? silentLogger, redactor);
      const guard = errorGuard(id, redactor);
      const session = await guard('connect', () =>
        definition.connect(config, { ...context, logger, redactor }),
      );
      return wrapSession(session, guard);
    },
  };
  return Object.freeze(connector);
}

function validateDefinition(definition: ConnectorDefinition<unknown>): void {
  const problems: string[] = [];
  if (typeof definition?.id !== 'string' || !ID_PATTERN.test(definition.id)) {
    problems.push(`id must match ${ID_PATTERN} (got ${JSON.stringify(definition?.id)})`);
  }
  if (typeof definition?.displayName !== 'string' || definition.displayName.trim() === '') {
    problems.push('displayName must be a non-empty string');
  }
  if (typeof definition?.version !== 'string' || !/^\d+\.\d+\.\d+/.test(definition.version)) {
    problems.push('version must be a semver string');
  }
  const schema = definition?.configSchema as { safeParse?: unknown } | undefined;
  if (typeof schema?.safeParse !== 'function') problems.push('configSchema must be a zod schema');
  if (typeof definition?.connect !== 'function') problems.push('connect must be a function');
  if (problems.length > 0) {
    throw new SyncproxyError(`invalid connector definition: ${problems.join('; ')}`, {
      code: 'config',
      retryable: false,
    });
  }
  const spec = definition.specVersion ?? 'v1';
  if (!(SUPPORTED_SPEC_VERSIONS as readonly string[]).includes(spec)) {
    throw new SyncproxyError(
      `connector ${definition.id} targets spec ${spec}, which this core does not support (supported: ${SUPPORTED_SPEC_VERSIONS.join(', ')})`,
      { code: 'unsupported', retryable: false },
    );
  }
}

type Guard = <T>(operation: string, run: () => Promise<T>) => Promise<T>;

function errorGuard(platform: string, redactor: Redactor): Guard {
  return async (operation, run) => {
    try {
      return await run();
    } catch (error) {
      const mapped = redactor.error(error, { operation, platform });
      if (mapped.platform === undefined) Object.defineProperty(mapped, 'platform', { value: platform });
      throw mapped;
    }
  };
}

/**
 * The session as the connector made it, every member forwarded (optional ones
 * such as `sweep`, and any a later contract adds), every method guarded.
 */
function wrapSession(session: ConnectorSession, guard: Guard): DisposableSession {
  const openReader: ConnectorSession['openReader'] = async (disk, options) =>
    wrapReader(
      await guard('openReader', () => session.openReader(disk, options)),
      guard,
      options?.base !== undefined,
    );
  const close = () => guard('close', () => session.close());
  return forwardGuarded(session as DisposableSession, guard, { openReader, [Symbol.asyncDispose]: close });
}

/**
 * The reader as the connector made it: every member forwarded, present and
 * future (`hints`, `readInto`, `warnings`, ...), never rebuilt member by
 * member; methods guarded, extents guarded item by item. `hints.incremental`
 * is filled in from the `base` it was opened with when the reader does not say.
 */
function wrapReader(reader: ChangedBlockReader, guard: Guard, opensWithBase: boolean): DisposableReader {
  return forwardGuarded(reader as DisposableReader, guard, {
    [Symbol.asyncDispose]: () => guard('closeReader', () => reader.close()),
    extents: (options?: ReadOptions) => guardIterable(reader.extents(options), guard),
    get hints(): ReaderHints {
      const hints = reader.hints;
      return hints?.incremental !== undefined ? hints : { ...hints, incremental: opensWithBase };
    },
  });
}

/** Operation names of reader methods in errors (`read` for both ways of reading). */
const OPERATION_NAMES: Record<string, string> = { readInto: 'read', close: 'close' };

/**
 * A proxy that forwards every property of `target`, guards every method it
 * has (errors mapped and redacted), and serves `overrides` first. The proxy
 * stands on an empty facade: it lists no own keys, so `util.inspect`,
 * `JSON.stringify` and `Object.keys` of a session or reader never show the
 * connector's internals (a config with its secrets), while any member read
 * by name, present or added later, is forwarded.
 */
function forwardGuarded<T extends object>(target: T, guard: Guard, overrides: object): T {
  const own = Object.getOwnPropertyDescriptors(overrides);
  const isReader = 'diskSize' in target;
  return new Proxy({} as T, {
    get(_facade, property, receiver) {
      const override = own[property as string];
      if (override !== undefined) {
        return override.get ? override.get.call(receiver) : override.value;
      }
      const value = Reflect.get(target, property, target);
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      const operation =
        isReader && property === 'close' ? 'closeReader' : (OPERATION_NAMES[property] ?? property);
      return (...args: unknown[]) => guard(operation, async () => value.apply(target, args));
    },
    has(_facade, property) {
      return property in own || Reflect.has(target, property);
    },
  });
}

async function* guardIterable(source: AsyncIterable<Extent>, guard: Guard): AsyncGenerator<Extent> {
  const iterator = source[Symbol.asyncIterator]();
  try {
    while (true) {
      const next = await guard('extents', () => iterator.next());
      if (next.done) return;
      yield next.value;
    }
  } finally {
    await iterator.return?.();
  }
}
