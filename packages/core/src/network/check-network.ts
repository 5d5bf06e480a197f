import { connect, type Socket } from 'node:net';
import type { NetworkRequirement } from '../contracts/connector.js';
import { resolveOverride } from './host-overrides.js';

/** One row of the preflight table. */
export interface NetworkCheckResult extends NetworkRequirement {
  reachable: boolean;
  /** Time to an established TCP connection, ms (also set for failures: time to the failure). */
  latencyMs: number;
  /** `ECONNREFUSED`, `ETIMEDOUT`, `ENOTFOUND`, `EHOSTUNREACH`...; absent when reachable. */
  errorCode?: string;
  /** The address actually dialled, when a host override applied. */
  dialled?: string;
}

export interface CheckNetworkOptions {
  /** Per endpoint. Default 5000. */
  timeoutMs?: number;
  /** Name -> IP records, as the proxy uses them. */
  hostOverrides?: Record<string, string>;
  /** Endpoints checked at once. Default 16. */
  concurrency?: number;
  signal?: AbortSignal;
}

/**
 * Opens a TCP connection to each endpoint (the products' network-policy
 * tables) and reports, in input order, whether it was reachable and how fast.
 * Never throws for an unreachable endpoint: that is a row of the report.
 */
export async function checkNetwork(
  requirements: readonly NetworkRequirement[],
  options: CheckNetworkOptions = {},
): Promise<NetworkCheckResult[]> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const concurrency = Math.max(1, options.concurrency ?? 16);
  const results: NetworkCheckResult[] = new Array(requirements.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < requirements.length) {
      const index = next++;
      const requirement = requirements[index]!;
      results[index] = await probe(requirement, timeoutMs, options);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, requirements.length) }, worker));
  return results;
}

function probe(
  requirement: NetworkRequirement,
  timeoutMs: number,
  options: CheckNetworkOptions,
): Promise<NetworkCheckResult> {
  const dialled = resolveOverride(requirement.host, options.hostOverrides);
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    let socket: Socket | undefined;
    const finish = (errorCode?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket?.destroy();
      const row: NetworkCheckResult = {
        ...requirement,
        reachable: errorCode === undefined,
        latencyMs: Math.round((performance.now() - started) * 10) / 10,
      };
      if (errorCode !== undefined) row.errorCode = errorCode;
      if (dialled !== requirement.host) row.dialled = dialled;
      resolve(row);
    };
    const onAbort = (): void => finish('ABORTED');
    const timer = setTimeout(() => finish('ETIMEDOUT'), timeoutMs);
    if (options.signal?.aborted) return finish('ABORTED');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    socket = connect({ host: dialled, port: requirement.port });
    socket.once('connect', () => finish());
    socket.once('error', (error: NodeJS.ErrnoException) => finish(error.code ?? 'ERROR'));
  });
}
