import type { AnySourceConnector, SourceConnector } from './contracts/connector.js';
import { SUPPORTED_SPEC_VERSIONS } from './contracts/connector.js';
import { SyncproxyError } from './errors/syncproxy-error.js';

/** A summary of a registered connector, for listings. */
export interface ConnectorSummary {
  id: string;
  displayName: string;
  version: string;
  specVersion: string;
  capabilities: SourceConnector['capabilities'];
}

/**
 * The connectors a product has registered, by id. Registration is explicit:
 * nothing registers itself on import.
 */
export class ConnectorRegistry {
  private readonly connectors = new Map<string, SourceConnector<unknown>>();

  constructor(connectors: Iterable<AnySourceConnector> = []) {
    for (const connector of connectors) this.register(connector);
  }

  /** Adds a connector; refuses a duplicate id and a spec version this core does not support. */
  register(connector: AnySourceConnector): this {
    if (typeof connector?.id !== 'string' || typeof connector.connect !== 'function') {
      throw new SyncproxyError('register refused: not a connector (make it with defineConnector())', {
        code: 'config',
        retryable: false,
      });
    }
    if (!(SUPPORTED_SPEC_VERSIONS as readonly string[]).includes(connector.specVersion)) {
      throw new SyncproxyError(
        `register refused: connector ${connector.id}@${connector.version} targets spec ${String(connector.specVersion)}, which this core does not support (supported: ${SUPPORTED_SPEC_VERSIONS.join(', ')}); upgrade @syncproxy/core or use a connector built for ${SUPPORTED_SPEC_VERSIONS.join('/')}`,
        {
          code: 'unsupported',
          retryable: false,
          details: { id: connector.id, specVersion: connector.specVersion },
        },
      );
    }
    const existing = this.connectors.get(connector.id);
    if (existing) {
      throw new SyncproxyError(
        `register refused: a connector with id ${connector.id} is already registered (${existing.displayName} ${existing.version}); unregister it first`,
        { code: 'conflict', retryable: false, details: { id: connector.id } },
      );
    }
    this.connectors.set(connector.id, connector);
    return this;
  }

  unregister(id: string): boolean {
    return this.connectors.delete(id);
  }

  has(id: string): boolean {
    return this.connectors.has(id);
  }

  /** The connector with this id; a `not-found` error listing the known ids otherwise. */
  get<Config = unknown>(id: string): SourceConnector<Config> {
    const connector = this.connectors.get(id);
    if (!connector) {
      const known = [...this.connectors.keys()].sort();
      throw new SyncproxyError(
        `unknown connector ${JSON.stringify(id)} (known: ${known.length > 0 ? known.join(', ') : 'none registered'})`,
        { code: 'not-found', retryable: false, details: { id, known } },
      );
    }
    return connector as SourceConnector<Config>;
  }

  list(): ConnectorSummary[] {
    return [...this.connectors.values()]
      .map((c) => ({
        id: c.id,
        displayName: c.displayName,
        version: c.version,
        specVersion: c.specVersion,
        capabilities: c.capabilities,
      }))
      .sort((a, b) => a.id.localeCompare(b.id));
  }
}

/** A new, empty (or pre-filled) registry. */
export function createRegistry(connectors: Iterable<AnySourceConnector> = []): ConnectorRegistry {
  return new ConnectorRegistry(connectors);
}
