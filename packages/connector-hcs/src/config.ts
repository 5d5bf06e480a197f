import { boundedString, secret, urlField } from '@syncproxy/core';
import { z } from 'zod';

/** Names, ids and IQNs: far shorter than this on HCS and Dorado. */
const NAME_CHARS = 256;

/**
 * A Dorado's management address: `https://<ip or name>:8088`, nothing after the port.
 * `urlField` stops at a value that is no URL, so the path check only sees one that parses.
 */
const doradoUrl = urlField({ protocols: ['https', 'http'] }).refine(
  (value) => new URL(value).pathname.replace(/\/+$/, '') === '',
  { message: 'the management address only, such as https://192.168.1.10:8088' },
);

/** One storage of the "add platform" form: type, management address, user, password, user type. */
export const storageSchema = z.object({
  type: z.literal('DORADO').describe('Storage type'),
  url: doradoUrl.describe('Management address, https://<ip>:8088'),
  user: boundedString({ minChars: 1, maxChars: NAME_CHARS }).describe('Storage user'),
  password: secret(boundedString({ minChars: 1, maxChars: 1024 })).describe('Storage password'),
  userType: z.enum(['local', 'LDAP', 'RADIUS']).default('local').describe('User type: local, LDAP or RADIUS'),
  /** A vStore the user belongs to (`vstorename` at login); the system vStore when absent. */
  vstoreName: boundedString({ minChars: 1, maxChars: NAME_CHARS })
    .optional()
    .describe('vStore name (optional)'),
});

/**
 * The "add platform" form for Huawei Cloud Stack 8.0.2, as the products show
 * it: the IAM URL of the API gateway, tenant id, user, password, project
 * domain id, project name, project region (its real id, such as `mx-ags-1`),
 * the sync proxy, and one or more Dorado storages. The proxy is named as the
 * Dorado knows it: the host (and its initiators) snapshots are mapped to.
 */
export const hcsConfigSchema = z.object({
  iamUrl: urlField({ protocols: ['https', 'http'] }).describe(
    'IAM auth URL, https://iam-apigateway-proxy.<domain>/v3',
  ),
  tenantId: boundedString({ minChars: 1, maxChars: NAME_CHARS }).describe('Tenant ID (the user’s domain id)'),
  user: boundedString({ minChars: 1, maxChars: NAME_CHARS }).describe('User name'),
  password: secret(boundedString({ minChars: 1, maxChars: 1024 })).describe('Password'),
  projectDomainId: boundedString({ minChars: 1, maxChars: NAME_CHARS }).describe(
    'Project domain ID (usually the tenant ID)',
  ),
  projectName: boundedString({ minChars: 1, maxChars: NAME_CHARS }).describe('Project name'),
  region: boundedString({ maxChars: 64 })
    .regex(/^[a-z0-9]+(-[a-z0-9]+)+$/, 'the region id such as mx-ags-1, not its display name')
    .describe('Project region id'),
  proxy: z
    .object({
      hostName: boundedString({ minChars: 1, maxChars: NAME_CHARS }).describe(
        'Name of the proxy’s host object on the Dorado',
      ),
      initiators: z
        .array(boundedString({ minChars: 1, maxChars: NAME_CHARS }))
        .min(1)
        .describe('The proxy’s iSCSI IQNs or FC WWPNs, added to that host when it is created'),
    })
    .describe('The sync proxy, as the Dorado maps LUNs to it'),
  storages: z.array(storageSchema).min(1).describe('OceanStor Dorado storages'),
});

/** The config as a product fills the form. */
export type HcsConfigInput = z.input<typeof hcsConfigSchema>;
/** The config after parsing. */
export type HcsConfig = z.output<typeof hcsConfigSchema>;
export type StorageConfig = z.output<typeof storageSchema>;

/** Dorado's login `scope`: 0 local, 1 LDAP, 2 RADIUS. */
export function loginScopeOf(userType: StorageConfig['userType']): '0' | '1' | '2' {
  return userType === 'local' ? '0' : userType === 'LDAP' ? '1' : '2';
}

/** IAM's base with `/v3`, whatever form the user typed. */
export function identityUrlOf(iamUrl: string): string {
  const base = iamUrl.replace(/\/+$/, '');
  return base.endsWith('/v3') ? base : `${base}/v3`;
}
