import { boundedString, secret, urlField } from '@syncproxy/core';
import { z } from 'zod';

const REGION = /^[a-z]{2,}(-[a-z]+)+-\d+$/;

const accessKeyId = boundedString({ minChars: 16, maxChars: 128 }).describe('Access Key ID');
const secretAccessKey = secret(boundedString({ minChars: 1, maxChars: 1024 })).describe('Secret Access Key');

/**
 * The "add platform" form for AWS, as the products show it: access key id,
 * secret access key, region, the sync proxy, an optional name. Endpoint
 * overrides reach VPC endpoints (and the mock in tests).
 */
export const awsConfigSchema = z.object({
  accessKeyId,
  secretAccessKey,
  /** Temporary credentials (STS) come with a session token. */
  sessionToken: secret(boundedString({ minChars: 1, maxChars: 8192 }))
    .optional()
    .describe('Session token (temporary credentials only)'),
  region: boundedString({ maxChars: 64 }).regex(REGION, 'a region name such as us-east-1').describe('Region'),
  proxy: boundedString({ minChars: 1, maxChars: 256 })
    .optional()
    .describe('The sync proxy that runs this platform’s disk syncs'),
  name: boundedString({ minChars: 1, maxChars: 128 })
    .optional()
    .describe('Platform name (default: from the region, the platform and the time it was added)'),
  endpoints: z
    .object({
      ec2: urlField({ protocols: ['https', 'http'] })
        .optional()
        .describe('EC2 endpoint, e.g. a VPC endpoint'),
      ebs: urlField({ protocols: ['https', 'http'] })
        .optional()
        .describe('EBS direct endpoint, e.g. a VPC endpoint'),
    })
    .optional()
    .describe('Endpoint overrides (VPC endpoints)'),
  /** The SDK's sockets per endpoint: at least the reads the transfer keeps in flight. */
  maxConnections: z.number().int().min(1).max(1024).default(64).describe('Connections per endpoint'),
});

const PROVIDED = 'a credential provider is in use (createAwsConnector({ credentials })): leave the keys out';

/**
 * The form of a connector made with a credential provider (`createAwsConnector({ credentials })`):
 * the same without keys, which the provider supplies. Keys given anyway are a config error, not
 * silently ignored.
 */
export const awsProviderConfigSchema = awsConfigSchema.extend({
  accessKeyId: z.undefined({ error: PROVIDED }).optional(),
  secretAccessKey: z.undefined({ error: PROVIDED }).optional(),
  sessionToken: z.undefined({ error: PROVIDED }).optional(),
});

/** The config as a product fills the form. */
export type AwsConfigInput = z.input<typeof awsConfigSchema>;
/**
 * The config after parsing (defaults applied). The keys are absent only in a connector made with a
 * credential provider.
 */
export type AwsConfig = z.output<typeof awsProviderConfigSchema> | z.output<typeof awsConfigSchema>;

/** The platform's name: the one given, else `AWS-<region>-<UTC time>` as the products name it. */
export function platformName(config: Pick<AwsConfig, 'name' | 'region'>, now: Date = new Date()): string {
  if (config.name !== undefined) return config.name;
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return `AWS-${config.region}-${stamp}`;
}

/** The public endpoints of a region (China regions live under amazonaws.com.cn). */
export function defaultEndpoint(service: 'ec2' | 'ebs', region: string): string {
  const suffix = region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
  return `https://${service}.${region}.${suffix}`;
}

/** The endpoint actually used for a service: the override, else the region's public one. */
export function endpointFor(config: Pick<AwsConfig, 'endpoints' | 'region'>, service: 'ec2' | 'ebs'): string {
  return config.endpoints?.[service] ?? defaultEndpoint(service, config.region);
}
