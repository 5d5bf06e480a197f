import type { SweepOptions } from './contracts/connector.js';
import { SyncproxyError } from './errors/syncproxy-error.js';

/** {@link SweepOptions} checked once, the way every connector's `sweep` reads them. */
export interface SweepPlan {
  /** Clock ms; resources created at or after it are left alone. Undefined: no age limit. */
  olderThanMs?: number;
  dryRun: boolean;
  /** Whether a platform id is among `keep` (as given, or inside a composite SnapshotRef id). */
  isKept(id: string): boolean;
  signal?: AbortSignal;
}

/**
 * Checks a sweep's options (`config` errors naming the field) and answers the
 * two questions every sweep asks of a resource: old enough, and not kept.
 * A kept id matches a platform id equal to it, or one that appears in it as a
 * whole token (a SnapshotRef id such as `i-1/snap-a+snap-b` keeps `snap-a`).
 */
export function planSweep(options: SweepOptions = {}): SweepPlan {
  let olderThanMs: number | undefined;
  if (options.olderThan !== undefined) {
    const raw = options.olderThan;
    olderThanMs =
      raw instanceof Date ? raw.getTime() : typeof raw === 'string' ? Date.parse(raw) : Number.NaN;
    if (!Number.isFinite(olderThanMs)) {
      throw new SyncproxyError(
        `invalid sweep options: olderThan: must be a Date or an ISO-8601 time (got ${JSON.stringify(raw)})`,
        { code: 'config', retryable: false },
      );
    }
  }
  const keep = options.keep ?? [];
  if (!Array.isArray(keep) || keep.some((id) => typeof id !== 'string')) {
    throw new SyncproxyError('invalid sweep options: keep: must be an array of ids', {
      code: 'config',
      retryable: false,
    });
  }
  const kept = new Set<string>();
  for (const id of keep) {
    kept.add(id);
    for (const token of id.split(/[/+,\s]+/)) if (token !== '') kept.add(token);
  }
  return {
    ...(olderThanMs !== undefined ? { olderThanMs } : {}),
    dryRun: options.dryRun === true,
    isKept: (id) => kept.has(id),
    ...(options.signal ? { signal: options.signal } : {}),
  };
}

/** Whether a resource created at `createdAt` (ISO-8601; undefined when the platform does not say) is old enough to sweep. */
export function isOldEnough(plan: SweepPlan, createdAt: string | undefined): boolean {
  if (plan.olderThanMs === undefined) return true;
  if (createdAt === undefined) return false;
  const at = Date.parse(createdAt);
  // A time the platform wrote that cannot be read is treated as new: sweeping never guesses.
  return Number.isFinite(at) && at < plan.olderThanMs;
}
