/** What a fault does to a matching request. */
export type Fault =
  /** Waits before answering (or before the next fault); combines with the others. */
  | { kind: 'latency'; ms: number }
  /** Answers with this status instead of calling the route (5xx, 401, 404...). */
  | { kind: 'status'; status: number; body?: unknown; headers?: Record<string, string> }
  /** A throttling answer: 429 with Retry-After unless told otherwise (AWS says 400 ThrottlingException: pass status and body). */
  | {
      kind: 'throttle';
      status?: number;
      retryAfterSec?: number;
      body?: unknown;
      headers?: Record<string, string>;
    }
  /** Resets the connection (TCP RST) without answering. */
  | { kind: 'reset' }
  /** Calls the route, announces the full Content-Length, sends `bytes` of the body (default half), then drops the connection. */
  | { kind: 'truncate'; bytes?: number };

export type FaultKind = Fault['kind'];

/** Which requests a fault applies to; every given field must match. */
export interface FaultMatch {
  method?: string;
  /** A path prefix (`/v1/blocks`) or a pattern tested against the path. */
  path?: string | RegExp;
  /** Any test on the request. */
  when?: (request: {
    method: string;
    path: string;
    headers: Record<string, string | string[] | undefined>;
  }) => boolean;
}

export type FaultRule = Fault &
  FaultMatch & {
    /** Matching requests to let through before the fault starts. Default 0. */
    skip?: number;
    /** How many matching requests get the fault. Default: all until removed. */
    times?: number;
  };

/** A fault that was added: how often it fired, and a way to remove it. */
export interface ActiveFault {
  readonly rule: FaultRule;
  /** Requests this fault was applied to. */
  readonly hits: number;
  remove(): void;
}

interface Entry {
  rule: FaultRule;
  seen: number;
  hits: number;
}

/** The fault table of a mock server: rules are tried in the order they were added. */
export class FaultInjector {
  readonly #entries: Entry[] = [];

  add(rule: FaultRule): ActiveFault {
    const entry: Entry = { rule, seen: 0, hits: 0 };
    this.#entries.push(entry);
    const entries = this.#entries;
    return {
      rule,
      get hits() {
        return entry.hits;
      },
      remove() {
        const i = entries.indexOf(entry);
        if (i !== -1) entries.splice(i, 1);
      },
    };
  }

  clear(): void {
    this.#entries.length = 0;
  }

  get size(): number {
    return this.#entries.length;
  }

  /**
   * The faults for one request: every matching latency, then at most one
   * terminal fault (the first that matches). Counts hits as it goes.
   */
  take(request: {
    method: string;
    path: string;
    headers: Record<string, string | string[] | undefined>;
  }): Fault[] {
    const out: Fault[] = [];
    let terminal = false;
    for (const entry of [...this.#entries]) {
      const { rule } = entry;
      if (terminal && rule.kind !== 'latency') continue;
      if (!matches(rule, request)) continue;
      entry.seen++;
      if (entry.seen <= (rule.skip ?? 0)) continue;
      entry.hits++;
      if (rule.times !== undefined && entry.hits >= rule.times) {
        const i = this.#entries.indexOf(entry);
        if (i !== -1) this.#entries.splice(i, 1);
      }
      out.push(rule);
      if (rule.kind !== 'latency') terminal = true;
    }
    return out;
  }
}

function matches(
  rule: FaultMatch,
  request: { method: string; path: string; headers: Record<string, string | string[] | undefined> },
): boolean {
  if (rule.method !== undefined && rule.method.toUpperCase() !== request.method) return false;
  if (typeof rule.path === 'string' && !request.path.startsWith(rule.path)) return false;
  if (rule.path instanceof RegExp && !rule.path.test(request.path)) return false;
  if (rule.when !== undefined && !rule.when(request)) return false;
  return true;
}
