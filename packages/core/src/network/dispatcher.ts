import type { TLSSocket } from 'node:tls';
import { Agent, buildConnector, type Dispatcher } from 'undici';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import { overrideLookup } from './host-overrides.js';

/** HTTP settings of a sync proxy, as the products expose them. */
export interface DispatcherOptions {
  /** No answer for this long fails the call. Product default 600. */
  httpTimeoutSec?: number;
  /** TCP/TLS connect timeout, ms. Default 30 000. */
  connectTimeoutMs?: number;
  /**
   * Accept exactly the server certificate with this SHA-256 thumbprint (hex,
   * with or without colons), instead of verifying the chain: the way to reach a
   * self-signed vCenter or FusionCompute. Verification is on otherwise.
   */
  pinnedThumbprintSha256?: string;
  /** Extra trusted CA certificates (PEM). */
  ca?: string | string[];
  /** Name -> IP records for platforms managed by names the proxy cannot resolve. */
  hostOverrides?: Record<string, string>;
  /** Sockets per origin. Default 64. */
  connections?: number;
}

/** The normal form of a thumbprint: upper-case hex pairs joined by colons, as Node prints them. */
export function normalizeThumbprint(thumbprint: string): string {
  const hex = thumbprint.replace(/[^0-9a-fA-F]/g, '').toUpperCase();
  if (hex.length !== 64) {
    throw new SyncproxyError(`invalid SHA-256 thumbprint: expected 64 hex digits, got ${hex.length}`, {
      code: 'config',
      retryable: false,
    });
  }
  return hex.match(/../g)!.join(':');
}

/**
 * An undici dispatcher from the proxy settings: HTTP timeout, TLS verification
 * on (or pinned to one certificate thumbprint), and host-name overrides. Give
 * it to connectors as `context.dispatcher`.
 */
export function createDispatcher(options: DispatcherOptions = {}): Dispatcher {
  const timeoutMs = (options.httpTimeoutSec ?? 600) * 1000;
  const pin =
    options.pinnedThumbprintSha256 === undefined
      ? undefined
      : normalizeThumbprint(options.pinnedThumbprintSha256);
  const base = buildConnector({
    timeout: options.connectTimeoutMs ?? 30_000,
    // With a pin, trust comes from the thumbprint check below, not from the chain.
    rejectUnauthorized: pin === undefined,
    // A resumed TLS session presents no certificate to check, so a pin turns session reuse off.
    ...(pin === undefined ? {} : { maxCachedSessions: 0 }),
    ...(options.ca === undefined ? {} : { ca: options.ca }),
    ...(options.hostOverrides ? { lookup: overrideLookup(options.hostOverrides) } : {}),
  } as buildConnector.BuildOptions);
  const connect: buildConnector.connector = (opts, callback) =>
    base(opts, (error, socket) => {
      if (error || socket === null) return callback(error ?? new Error('connect failed'), null);
      if (pin !== undefined && opts.protocol === 'https:') {
        const seen = (socket as TLSSocket).getPeerCertificate?.()?.fingerprint256;
        if (seen !== pin) {
          socket.destroy();
          return callback(
            new SyncproxyError(
              `TLS refused: the certificate of ${opts.hostname} has thumbprint ${seen ?? 'none'}, not the pinned ${pin}`,
              { code: 'tls', retryable: false, details: { host: opts.hostname, seen, pinned: pin } },
            ),
            null,
          );
        }
      }
      return callback(null, socket);
    });
  return new Agent({
    connect,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connections: options.connections ?? 64,
  });
}
