import { boundedString, secret, urlField } from '@syncproxy/core';
import { z } from 'zod';

const REGION = /^[a-z]{2,}(-[a-z]+)+-\d+$/;
/** IAM project ids are 32 lowercase hex digits; the form wants the region name instead. */
const PROJECT_ID = /^[0-9a-f]{32}$/i;
/** OBS bucket names: 3-63 of lowercase letters, digits, dots and dashes (OBS bucket naming rules). */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

// http is for the mock and for plain VPC endpoints behind a TLS-terminating proxy; userinfo is refused.
const endpoint = (what: string) =>
  urlField({ protocols: ['https', 'http'] })
    .optional()
    .describe(what);

/**
 * The "add platform" form for Huawei Cloud, as the products show it: AK, SK,
 * the project as a region name (`tr-west-1`, never the 32-hex project id),
 * the sync proxy (an ECS id), an optional name, and the OBS bucket that caches
 * one sync's worth of exported disk data. Endpoint overrides reach VPC
 * endpoints (and the mock in tests).
 */
export const huaweiCloudConfigSchema = z.object({
  accessKeyId: boundedString({ minChars: 8, maxChars: 128 }).describe('Access Key ID (AK)'),
  secretAccessKey: secret(boundedString({ minChars: 1, maxChars: 1024 })).describe('Secret Access Key (SK)'),
  project: boundedString({ minChars: 1, maxChars: 64 })
    .refine((value) => !PROJECT_ID.test(value), {
      message:
        'this is a project ID; give the project as its region name (such as tr-west-1): the SDK looks the ID up',
    })
    .refine((value) => PROJECT_ID.test(value) || REGION.test(value), {
      message: 'a region name such as tr-west-1',
    })
    .describe('Project: the region name, such as tr-west-1 (not the project ID)'),
  proxy: boundedString({ minChars: 1, maxChars: 256 }).describe(
    'The sync proxy: the id of the ECS that runs this platform’s disk syncs',
  ),
  name: boundedString({ minChars: 1, maxChars: 128 })
    .optional()
    .describe('Platform name (default: from the region, the platform and the time it was added)'),
  bucket: boundedString({ maxChars: 63 })
    .regex(BUCKET, 'an OBS bucket name: 3-63 lowercase letters, digits, dots and dashes')
    .describe(
      'OBS bucket (new or existing) that caches one sync’s worth of exported disk data; billed as OBS storage',
    ),
  endpoints: z
    .object({
      iam: endpoint('IAM endpoint (project lookup)'),
      ecs: endpoint('ECS endpoint'),
      evs: endpoint('EVS endpoint'),
      cbr: endpoint('CBR endpoint'),
      obs: endpoint('OBS endpoint (path-style requests when set)'),
    })
    .optional()
    .describe('Endpoint overrides (VPC endpoints)'),
  /** Sockets per endpoint: at least the ranged GETs the transfer keeps in flight. */
  maxConnections: z.number().int().min(1).max(1024).default(64).describe('Connections per endpoint'),
});

/** The config as a product fills the form. */
export type HuaweiCloudConfigInput = z.input<typeof huaweiCloudConfigSchema>;
/** The config after parsing (defaults applied). */
export type HuaweiCloudConfig = z.output<typeof huaweiCloudConfigSchema>;

export type HuaweiService = 'iam' | 'ecs' | 'evs' | 'cbr' | 'obs';

export const HUAWEI_SERVICES: readonly HuaweiService[] = ['iam', 'ecs', 'evs', 'cbr', 'obs'];

/** The region a config names (its `project` field). */
export function regionOf(config: Pick<HuaweiCloudConfig, 'project'>): string {
  return config.project;
}

/** The public endpoint of a service in a region: `https://<service>.<region>.myhuaweicloud.com`. */
export function defaultEndpoint(service: HuaweiService, region: string): string {
  return `https://${service}.${region}.myhuaweicloud.com`;
}

/** The endpoint actually used for a service: the override, else the region's public one. */
export function endpointFor(
  config: Pick<HuaweiCloudConfig, 'endpoints' | 'project'>,
  service: HuaweiService,
): string {
  return (config.endpoints?.[service] ?? defaultEndpoint(service, regionOf(config))).replace(/\/+$/, '');
}

/** The platform's name: the one given, else `HuaweiCloud-<region>-<UTC time>` as the products name it. */
export function platformName(
  config: Pick<HuaweiCloudConfig, 'name' | 'project'>,
  now: Date = new Date(),
): string {
  if (config.name !== undefined) return config.name;
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return `HuaweiCloud-${config.project}-${stamp}`;
}
