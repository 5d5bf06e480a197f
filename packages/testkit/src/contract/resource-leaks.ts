import { readdirSync } from 'node:fs';

/**
 * The handle types a connector could leave open: sockets, servers, timers,
 * child processes and their pipes. Requests in flight (FSReqCallback...) are
 * not listed: they finish by themselves.
 */
const TRACKED = new Set([
  'TCPSocketWrap',
  'TCPWrap',
  'TCPServerWrap',
  'TLSWrap',
  'PipeWrap',
  'PipeServerWrap',
  'UDPWrap',
  'Timeout',
  'Immediate',
  'ProcessWrap',
  'FSEventWrap',
  'StatWatcher',
]);

const NAMES: Record<string, string> = {
  TCPSocketWrap: 'socket',
  TCPWrap: 'socket',
  TCPServerWrap: 'server socket',
  TLSWrap: 'TLS socket',
  PipeWrap: 'pipe (child process stdio?)',
  UDPWrap: 'UDP socket',
  Timeout: 'timer',
  Immediate: 'immediate',
  ProcessWrap: 'child process',
  FSEventWrap: 'file watcher',
  StatWatcher: 'file watcher',
  'open file descriptors': 'file descriptor',
};

const FDS = 'open file descriptors';

/** Counts of live handles by type, plus open file descriptors where the OS shows them. */
export type ResourceCounts = Record<string, number>;

export function captureResources(): ResourceCounts {
  // process.stdout and stderr open their pipe on first use: open them now, so a
  // first console line in the middle of a measurement is not counted as a leak.
  void process.stdout;
  void process.stderr;
  const counts: ResourceCounts = {};
  for (const type of process.getActiveResourcesInfo()) {
    if (TRACKED.has(type)) counts[type] = (counts[type] ?? 0) + 1;
  }
  const fds = openFileDescriptors();
  if (fds !== undefined) counts[FDS] = fds;
  return counts;
}

/** What `after` holds beyond `before`, as phrases like "2 × socket (TCPSocketWrap)". */
export function leakedResources(before: ResourceCounts, after: ResourceCounts): string[] {
  const leaks: string[] = [];
  let descriptors: string | undefined;
  for (const [type, count] of Object.entries(after)) {
    const extra = count - (before[type] ?? 0);
    if (extra <= 0) continue;
    const phrase = `${extra} × ${NAMES[type] ?? type} (${type})`;
    if (type === FDS) descriptors = phrase;
    else leaks.push(phrase);
  }
  // Sockets and pipes hold descriptors too: descriptors alone mean a file handle left open.
  if (leaks.length === 0 && descriptors !== undefined)
    leaks.push(`${descriptors}, e.g. a file handle left open`);
  return leaks.sort();
}

/**
 * Waits until nothing beyond `before` is open, or `settleMs` passed: a
 * closed socket's peer and a child's pipes go away a few event-loop turns
 * after close() resolves. Returns what is still open.
 */
export async function waitForResourcesToSettle(before: ResourceCounts, settleMs: number): Promise<string[]> {
  const deadline = performance.now() + settleMs;
  for (;;) {
    const leaks = leakedResources(before, captureResources());
    if (leaks.length === 0 || performance.now() >= deadline) return leaks;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function openFileDescriptors(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return undefined;
  }
}
