import type { SweepOptions, SweepReport, SweptResource } from './contracts/connector.js';
import type { Logger } from './contracts/logger.js';
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

/** A resource a sweep found: something this SDK created, by its tag or label. */
export interface SweepCandidate {
  kind: string;
  id: string;
  /** ISO-8601, when the platform says. */
  createdAt?: string;
}

/**
 * What one sweep found and deleted, with the per-resource rules in one place:
 * listed when old enough; deleted unless it is a dry run or the id is kept; a
 * resource already gone counts as deleted; a failed delete does not stop the
 * others, and {@link SweepLedger.report} then throws one error naming what
 * was and was not deleted.
 */
export class SweepLedger {
  readonly #plan: SweepPlan;
  readonly #logger: Logger | undefined;
  readonly #resources: SweptResource[] = [];
  readonly #failures: Array<{ id: string; error: unknown }> = [];

  constructor(plan: SweepPlan, logger?: Logger) {
    this.#plan = plan;
    this.#logger = logger;
  }

  /** Considers one candidate; `remove` deletes it on the platform. */
  async consider(candidate: SweepCandidate, remove: () => Promise<void>): Promise<void> {
    const { kind, id, createdAt } = candidate;
    if (!isOldEnough(this.#plan, createdAt)) return;
    const resource: SweptResource = { kind, id, ...(createdAt ? { createdAt } : {}), deleted: false };
    this.#resources.push(resource);
    if (this.#plan.dryRun || this.#plan.isKept(id)) return;
    try {
      await remove();
      resource.deleted = true;
    } catch (error) {
      if (SyncproxyError.hasCode(error, 'not-found')) {
        resource.deleted = true;
        return;
      }
      this.#logger?.warn({ kind, id, error: (error as Error)?.message }, `sweep could not delete a ${kind}`);
      this.#failures.push({ id, error });
    }
  }

  /** The report, or one error (the first failure's code) naming what could not be deleted. */
  report(): SweepReport {
    const first = this.#failures[0];
    if (first === undefined) return { resources: this.#resources };
    const deleted = this.#resources.filter((r) => r.deleted).map((r) => r.id);
    const failed = this.#failures.map((f) => f.id);
    throw new SyncproxyError(
      `sweep deleted ${deleted.length} of ${deleted.length + failed.length} resource(s); ${failed.join(', ')} could not be deleted: ${(first.error as Error)?.message ?? String(first.error)}`,
      {
        code: SyncproxyError.isInstance(first.error) ? first.error.code : 'platform',
        retryable: SyncproxyError.isInstance(first.error) ? first.error.retryable : false,
        cause: first.error,
        details: { deleted, failed },
      },
    );
  }
}
