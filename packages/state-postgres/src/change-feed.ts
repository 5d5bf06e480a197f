import type { StateChange } from '@syncproxy/core';
import type { Pool, PoolClient } from 'pg';

/** What one committed batch tells the other nodes (NOTIFY payloads are limited to 8,000 bytes). */
export interface Notice {
  /** The node that committed it, so it does not hear its own changes. */
  origin: string;
  version: number;
  capacityGrew: boolean;
  events: StateChange['events'];
}

const MAX_PAYLOAD_BYTES = 7_900;

export function noticePayload(notice: Notice): string {
  const full = JSON.stringify(notice);
  if (Buffer.byteLength(full) <= MAX_PAYLOAD_BYTES) return full;
  // Too big to carry (a failover of many tasks): the version still tells listeners to look.
  return JSON.stringify({ ...notice, events: [] });
}

export interface ChangeFeedOptions {
  pool: Pool;
  channel: string;
  origin: string;
  pollIntervalMs: number;
  notifications: boolean;
  /** The committed state version, for the polling fallback. */
  readVersion(): Promise<number>;
}

/**
 * Tells this node's schedulers what other nodes committed: `LISTEN` on the
 * store's channel, and while that connection is down (or notifications are
 * off), a poll of the state version that reports "something changed".
 */
export class ChangeFeed {
  readonly #options: ChangeFeedOptions;
  readonly #listeners = new Set<(change: StateChange) => void>();
  #client: PoolClient | undefined;
  #connecting = false;
  #timer: NodeJS.Timeout | undefined;
  #seenVersion = -1;
  #stopped = false;

  constructor(options: ChangeFeedOptions) {
    this.#options = options;
  }

  /** True while notifications arrive through `LISTEN`. */
  get isListening(): boolean {
    return this.#client !== undefined;
  }

  watch(listener: (change: StateChange) => void): () => void {
    this.#listeners.add(listener);
    if (this.#listeners.size === 1) this.#start();
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#halt();
    };
  }

  /** This node committed `version`: the poll need not report it. */
  committed(version: number): void {
    if (version === this.#seenVersion + 1) this.#seenVersion = version;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#halt();
  }

  #start(): void {
    if (this.#stopped) return;
    void this.#options.readVersion().then(
      (v) => {
        this.#seenVersion = Math.max(this.#seenVersion, v);
      },
      () => undefined,
    );
    this.#timer = setInterval(() => void this.#tick(), this.#options.pollIntervalMs);
    this.#timer.unref();
    void this.#listen();
  }

  #halt(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    const client = this.#client;
    this.#client = undefined;
    if (client) {
      client.removeAllListeners('notification');
      // The connection carries a LISTEN: end it rather than hand it back to the pool.
      client.release(true);
    }
  }

  async #listen(): Promise<void> {
    if (!this.#options.notifications || this.#client || this.#connecting || this.#stopped) return;
    if (this.#listeners.size === 0) return;
    this.#connecting = true;
    let client: PoolClient | undefined;
    try {
      client = await this.#options.pool.connect();
      const lost = (): void => {
        if (this.#client !== client) return;
        this.#client = undefined;
        client?.release(true);
      };
      client.on('error', lost);
      client.on('end', lost);
      client.on('notification', (message) => this.#onNotification(message.payload));
      await client.query(`LISTEN ${this.#options.channel}`);
      if (this.#stopped || this.#listeners.size === 0) {
        client.release(true);
        return;
      }
      this.#client = client;
    } catch {
      client?.release(true);
      // The poll keeps running and tries again on its next tick.
    } finally {
      this.#connecting = false;
    }
  }

  async #tick(): Promise<void> {
    if (this.#client) return;
    void this.#listen();
    let version: number;
    try {
      version = await this.#options.readVersion();
    } catch {
      return;
    }
    if (version <= this.#seenVersion) return;
    this.#seenVersion = version;
    this.#emit({ events: [], capacityGrew: true });
  }

  #onNotification(payload: string | undefined): void {
    let notice: Notice;
    try {
      notice = JSON.parse(payload ?? '') as Notice;
    } catch {
      return;
    }
    this.#seenVersion = Math.max(this.#seenVersion, notice.version);
    if (notice.origin === this.#options.origin) return;
    this.#emit({ events: notice.events, capacityGrew: notice.capacityGrew });
  }

  #emit(change: StateChange): void {
    for (const listener of [...this.#listeners]) listener(change);
  }
}
