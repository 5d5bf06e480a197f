import { boundedString, MAX_PEM_CHARS, secret, urlField } from '@syncproxy/core';
import { z } from 'zod';

/**
 * `ocid1.<resource type>.<realm>.[region][.future use].<unique id>`
 * (docs.oracle.com/iaas/Content/General/Concepts/identifiers.htm). Tenancies and
 * users are global, so their region part is empty (`ocid1.tenancy.oc1..aaaa...`).
 */
function ocid(resourceType: string) {
  const pattern = new RegExp(
    `^ocid1\\.${resourceType}\\.[a-z0-9-]+\\.[a-z0-9-]*(\\.[a-z0-9-]*)?\\.[a-z0-9]+$`,
  );
  return boundedString({ maxChars: 255 }).regex(
    pattern,
    `an OCID such as ocid1.${resourceType}.oc1..aaaa...`,
  );
}

/** The key's MD5 fingerprint as the console shows it: 16 hex pairs joined by colons. */
const FINGERPRINT = /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/;
const REGION = /^[a-z]{2,}(-[a-z]+)+-\d+$/;

/**
 * The "add platform" form for Oracle Cloud, as the products show it: tenancy
 * OCID, user OCID, the API key (a PEM, or a file on the proxy) and its
 * fingerprint, region, the sync proxy, an optional name. The proxy is named by
 * its instance OCID and availability domain: clone and delta volumes are
 * created there and attached to it. Endpoint overrides reach the mock in tests.
 */
export const oracleConfigSchema = z
  .object({
    tenancyId: ocid('tenancy').describe('Tenancy OCID'),
    userId: ocid('user').describe('User OCID'),
    fingerprint: boundedString({ maxChars: 47 })
      .regex(FINGERPRINT, 'a key fingerprint such as 12:34:56:78:90:ab:cd:ef:12:34:56:78:90:ab:cd:ef')
      .describe('API key fingerprint'),
    region: boundedString({ maxChars: 64 })
      .regex(REGION, 'a region identifier such as us-ashburn-1')
      .describe('Region'),
    privateKey: secret(
      boundedString({ maxChars: MAX_PEM_CHARS }).includes('-----BEGIN', { message: 'a PEM private key' }),
    )
      .optional()
      .describe('API private key (PEM)'),
    privateKeyPath: boundedString({ minChars: 1, maxChars: 4096 })
      .optional()
      .describe('API private key file on the proxy (PEM)'),
    passphrase: secret(boundedString({ minChars: 1, maxChars: 1024 }))
      .optional()
      .describe('Passphrase of the private key'),
    proxyInstanceId: ocid('instance').describe('The sync proxy’s instance OCID'),
    proxyAvailabilityDomain: boundedString({ minChars: 1, maxChars: 255 }).describe(
      'The sync proxy’s availability domain, e.g. Uocm:PHX-AD-1',
    ),
    name: boundedString({ minChars: 1, maxChars: 128 })
      .optional()
      .describe('Platform name (default: from the region, the platform and the time it was added)'),
    endpoints: z
      .object({
        core: urlField({ protocols: ['https', 'http'] })
          .optional()
          .describe('Core Services endpoint (Compute, Block Volume), without /20160918'),
        identity: urlField({ protocols: ['https', 'http'] })
          .optional()
          .describe('Identity endpoint, without /20160918'),
      })
      .optional()
      .describe('Endpoint overrides (private endpoints, tests)'),
  })
  .superRefine((config, issues) => {
    const given = [config.privateKey, config.privateKeyPath].filter((v) => v !== undefined).length;
    if (given !== 1) {
      issues.addIssue({
        code: 'custom',
        path: ['privateKey'],
        message:
          'give the private key either as a PEM (privateKey) or as a file path (privateKeyPath), one of them',
      });
    }
  });

/** The config as a product fills the form. */
export type OracleConfigInput = z.input<typeof oracleConfigSchema>;
/** The config after parsing. */
export type OracleConfig = z.output<typeof oracleConfigSchema>;

export type OracleService = 'core' | 'identity';

/** The public endpoint of a service in a region (realm oc1; other realms set `endpoints`). */
export function defaultEndpoint(service: OracleService, region: string): string {
  return service === 'core'
    ? `https://iaas.${region}.oraclecloud.com`
    : `https://identity.${region}.oraclecloud.com`;
}

/** The endpoint actually used for a service: the override, else the region's public one. */
export function endpointFor(
  config: Pick<OracleConfig, 'endpoints' | 'region'>,
  service: OracleService,
): string {
  return (config.endpoints?.[service] ?? defaultEndpoint(service, config.region)).replace(/\/+$/, '');
}

/** The platform's name: the one given, else `Oracle-<region>-<UTC time>` as the products name it. */
export function platformName(config: Pick<OracleConfig, 'name' | 'region'>, now: Date = new Date()): string {
  if (config.name !== undefined) return config.name;
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return `Oracle-${config.region}-${stamp}`;
}
