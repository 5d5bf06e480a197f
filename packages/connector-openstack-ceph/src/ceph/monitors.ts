import { SyncproxyError } from '@syncproxy/core';

const MONITOR = /^(v[12]:)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?(\/\d+)?$/;
/** The ports Ceph assigns each messenger (IANA: 6789 ceph-mon, 3300 ceph msgr2). */
const DEFAULT_PORTS: Record<string, 'v1' | 'v2'> = { '6789': 'v1', '3300': 'v2' };

/**
 * The rule for a monitor address, as the form states it:
 * - `v1:` or `v2:` given: kept as written;
 * - no port: kept (the client tries v2 on 3300 and v1 on 6789);
 * - port 6789 or 3300: prefixed with its messenger, v1 or v2;
 * - any other port: the user must say which messenger it speaks. Ceph guesses
 *   otherwise, and a wrong guess shows as a wrong key failing with a
 *   retryable timeout after 10-30 s instead of an immediate auth error.
 *
 * Returns the normalised address, or why the entry is refused.
 */
export function normaliseMonitor(entry: string): { address: string } | { problem: string } {
  const match = MONITOR.exec(entry);
  // Not echoed: a field pasted into the wrong box (a key, a password) must not show in the error.
  if (match === null) return { problem: 'not host[:port], e.g. 10.0.0.1 or v1:10.0.0.2:6789' };
  const [, prefix, host, port, nonce = ''] = match;
  if (prefix !== undefined || port === undefined) return { address: entry };
  const messenger = DEFAULT_PORTS[port];
  if (messenger !== undefined) return { address: `${messenger}:${host}:${port}${nonce}` };
  return {
    problem: `Ceph monitor ${entry} uses a non-default port: write v1:${entry} (messenger v1) or v2:${entry} (msgr2) (the default ports are 6789 for v1 and 3300 for v2)`,
  };
}

/** The entries of a comma- or space-separated monitor list. */
export function splitMonitors(monitors: string): string[] {
  return monitors
    .split(/[,\s]+/)
    .map((m) => m.trim())
    .filter((m) => m !== '');
}

/** Why a monitor list is refused, or undefined when every entry follows the rule. */
export function monitorsProblem(monitors: string): string | undefined {
  const list = splitMonitors(monitors);
  if (list.length === 0) return 'comma-separated monitor addresses, e.g. 10.0.0.1,v1:10.0.0.2:6789';
  for (const [i, entry] of list.entries()) {
    const result = normaliseMonitor(entry);
    if ('problem' in result) {
      return result.problem.startsWith('Ceph monitor')
        ? result.problem
        : `monitor ${i + 1}: ${result.problem}`;
    }
  }
  return undefined;
}

/** Checks the monitor list of the form; returns the entries normalised (see {@link normaliseMonitor}). */
export function parseMonitors(monitors: string): string[] {
  const list = splitMonitors(monitors);
  if (list.length === 0) {
    throw new SyncproxyError('no Ceph monitor address given (expected host[:port],...)', {
      code: 'config',
      retryable: false,
    });
  }
  return list.map((entry) => {
    const result = normaliseMonitor(entry);
    if ('address' in result) return result.address;
    const message = result.problem.startsWith('Ceph monitor')
      ? result.problem
      : `invalid Ceph monitor addresses ${JSON.stringify(monitors)} (expected host[:port],...)`;
    throw new SyncproxyError(message, { code: 'config', retryable: false });
  });
}
