import { z } from 'zod';
import { parseConfig } from '../config/parse-config.js';
import type { SyncWarning } from '../contracts/reader.js';
import type { ProxySettings } from '../contracts/scheduler.js';
import { SyncproxyError } from '../errors/syncproxy-error.js';

/** The products' defaults: 600 s HTTP timeout, 50 mount slots. */
export const DEFAULT_PROXY_SETTINGS: Readonly<ProxySettings> = Object.freeze({
  httpTimeoutSec: 600,
  maxMountedDisks: 50,
});

/** The products advise against more mounted disks than this: above it only `force` is accepted. */
export const RECOMMENDED_MAX_MOUNTED_DISKS = 150;
/** Refused even with `force`: far beyond what a proxy VM can attach. */
export const HARD_MAX_MOUNTED_DISKS = 1024;
/** One day: a platform call with no answer for longer is never worth waiting for. */
export const MAX_HTTP_TIMEOUT_SEC = 86_400;

export const proxySettingsPatchSchema = z.strictObject({
  httpTimeoutSec: z
    .number()
    .int()
    .min(1)
    .max(MAX_HTTP_TIMEOUT_SEC, `must be at most ${MAX_HTTP_TIMEOUT_SEC} (one day)`)
    .optional(),
  maxMountedDisks: z
    .number()
    .int()
    .min(0)
    .max(HARD_MAX_MOUNTED_DISKS, `must be at most ${HARD_MAX_MOUNTED_DISKS}, even with force`)
    .optional(),
});

/**
 * Validates a settings patch: ranges always; above the recommended mount slots
 * only with `force`. Throws a `config` error naming the field otherwise.
 */
export function parseSettingsPatch(input: unknown, force: boolean): Partial<ProxySettings> {
  const patch = parseConfig(proxySettingsPatchSchema, input ?? {}, 'proxy settings');
  if (
    patch.maxMountedDisks !== undefined &&
    patch.maxMountedDisks > RECOMMENDED_MAX_MOUNTED_DISKS &&
    !force
  ) {
    throw new SyncproxyError(
      `invalid proxy settings: maxMountedDisks: ${patch.maxMountedDisks} is above the recommended maximum of ${RECOMMENDED_MAX_MOUNTED_DISKS} (it needs a bigger proxy); pass { force: true } to accept it`,
      {
        code: 'config',
        retryable: false,
        details: {
          issues: [
            {
              path: 'maxMountedDisks',
              message: `above the recommended maximum of ${RECOMMENDED_MAX_MOUNTED_DISKS}`,
            },
          ],
        },
      },
    );
  }
  const out: Partial<ProxySettings> = {};
  if (patch.httpTimeoutSec !== undefined) out.httpTimeoutSec = patch.httpTimeoutSec;
  if (patch.maxMountedDisks !== undefined) out.maxMountedDisks = patch.maxMountedDisks;
  return out;
}

/** What a proxy's settings deserve a warning for (empty when they are within the recommendations). */
export function settingsWarnings(settings: ProxySettings): SyncWarning[] {
  if (settings.maxMountedDisks <= RECOMMENDED_MAX_MOUNTED_DISKS) return [];
  return [
    {
      code: 'mount-slots-above-recommended',
      message: `maxMountedDisks ${settings.maxMountedDisks} is above the recommended maximum of ${RECOMMENDED_MAX_MOUNTED_DISKS}: the proxy needs the CPU, memory and attach limits for it`,
    },
  ];
}
