import { boundedString, secret, urlField } from '@syncproxy/core';
import { z } from 'zod';

const SHA256_THUMBPRINT = /^([0-9a-fA-F]{2}:?){31}[0-9a-fA-F]{2}$/;
/** The VRM's REST port (PRODUCT network policy). */
export const VRM_PORT = 7443;
/** The CNA port of the backup data service (PRODUCT network policy; the API gives the real one). */
export const CNA_DATA_PORT = 21064;

/**
 * Points the public references disagree on or leave open (platforms/fusioncompute.md, UNCONFIRMED).
 * Defaults are what KubeOperator's Go SDK and the eSDK javadoc suggest; the mock accepts each variant.
 */
const advancedSchema = z
  .object({
    keyEncoding: z
      .enum(['sha256-hex', 'plain'])
      .default('sha256-hex')
      .describe('How X-Auth-Key carries the password: its SHA-256 in hex (KubeOperator SDK) or as typed'),
    algorithmHeader: z
      .enum(['none', 'X-ENCRIPT-ALGORITHM', 'X-ENCRYPT-ALGORITHM'])
      .default('none')
      .describe('Send the key-algorithm header under this spelling (both exist in public clients)'),
    authType: boundedString({ maxChars: 1 }).regex(/^\d$/).default('0').describe('X-Auth-AuthType'),
    apiVersion: boundedString({ maxChars: 32 })
      .regex(/^\d+(\.\d+)*$/)
      .optional()
      .describe('REST version for the Accept header; default: the newest /service/versions lists'),
    bitmapEncoding: z
      .enum(['hex', 'base64'])
      .default('hex')
      .describe('Encoding of getcbt bitMap strings (hex: 2 characters per 8 blocks)'),
    cbtPageBlocks: z
      .number()
      .int()
      .min(8)
      .max(1 << 24)
      .multipleOf(8)
      .default(32_768)
      .describe('Blocks per getcbt call (a multiple of 8, as getcbt requires)'),
    transMode: z.enum(['lanssl', 'lan']).default('lanssl').describe('Backup data transport'),
    backupDelaySec: z
      .number()
      .int()
      .min(60)
      .max(7200)
      .default(600)
      .describe('Lifetime asked for each backup resource, extended before it runs out'),
    cnaDataPort: z
      .number()
      .int()
      .min(1)
      .max(65_535)
      .default(CNA_DATA_PORT)
      .describe('CNA data port a preflight checks before a backup resource names the real one'),
  })
  .default({
    keyEncoding: 'sha256-hex',
    algorithmHeader: 'none',
    authType: '0',
    bitmapEncoding: 'hex',
    cbtPageBlocks: 32_768,
    transMode: 'lanssl',
    backupDelaySec: 600,
    cnaDataPort: CNA_DATA_PORT,
  });

/**
 * The "add platform" form for FusionCompute, as the products show it: the auth
 * URL of the VRM, a user and a password, the user type, and the sync proxy. TLS
 * is verified against the system CAs (or `ca`) unless `thumbprint` pins the
 * VRM's certificate, as self-signed VRMs need.
 */
export const fusionComputeConfigSchema = z.object({
  url: urlField()
    .describe('Auth URL: https://<VRM>:7443')
    .meta({ examples: ['https://192.168.10.20:7443'] }),
  user: boundedString({ minChars: 1, maxChars: 256 }).describe('User'),
  password: secret(boundedString({ minChars: 1, maxChars: 1024 })).describe('Password'),
  userType: z
    .enum(['0', '1', '2'])
    .default('2')
    .describe('X-Auth-UserType: 2 for an interface (API) user, 0 for a local user (meaning UNCONFIRMED)'),
  proxy: boundedString({ minChars: 1, maxChars: 256 })
    .optional()
    .describe('The sync proxy that runs this platform’s disk syncs'),
  thumbprint: boundedString({ maxChars: 128 })
    .regex(SHA256_THUMBPRINT, 'a SHA-256 thumbprint: 32 hex pairs, colons optional')
    .optional()
    .describe('Pin the VRM certificate by its SHA-256 thumbprint instead of verifying its chain'),
  ca: boundedString({ minChars: 1, maxChars: 65_536 })
    .optional()
    .describe('Extra trusted CA certificate(s), PEM'),
  hostOverrides: z
    .record(boundedString({ minChars: 1, maxChars: 253 }), z.ipv4().or(z.ipv6()))
    .optional()
    .describe('Name -> IP records for VRM and CNA names the proxy cannot resolve'),
  advanced: advancedSchema.describe('Points of the REST API the public documents leave open'),
});

/** The config as a product fills the form. */
export type FusionComputeConfigInput = z.input<typeof fusionComputeConfigSchema>;
/** The config after parsing (defaults applied). */
export type FusionComputeConfig = z.output<typeof fusionComputeConfigSchema>;
export type FusionComputeAdvanced = FusionComputeConfig['advanced'];

/**
 * The VRM's base URL, `https://<VRM>:<port>`: a URL without a port means 7443,
 * the VRM's REST port, not HTTPS's 443.
 */
export function vrmBaseUrl(config: Pick<FusionComputeConfig, 'url'>): string {
  const url = new URL(config.url);
  return `https://${url.hostname}:${url.port || VRM_PORT}`;
}

/** Host and port of the VRM. */
export function vrmEndpoint(config: Pick<FusionComputeConfig, 'url'>): { host: string; port: number } {
  const url = new URL(vrmBaseUrl(config));
  return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(url.port) };
}
