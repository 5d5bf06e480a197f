import { boundedString, MAX_PEM_CHARS, secret, urlField } from '@syncproxy/core';
import { z } from 'zod';

const SHA256_THUMBPRINT = /^([0-9a-fA-F]{2}:?){31}[0-9a-fA-F]{2}$/;

/**
 * The "add platform" form for VMware, as the products show it: the auth URL of
 * a vCenter or an ESXi host, a user and a password, and the sync proxy. TLS is
 * verified against the system CAs (or `ca`), unless `thumbprint` pins the
 * server's certificate, as self-signed vCenters need.
 */
export const vmwareConfigSchema = z.object({
  url: urlField({ protocols: ['https'] })
    .describe('Auth URL: https://<vCenter or ESXi>:443')
    .meta({ examples: ['https://vcenter.example.com:443'] }),
  user: boundedString({ minChars: 1, maxChars: 256 }).describe('User, e.g. administrator@vsphere.local'),
  password: secret(boundedString({ minChars: 1, maxChars: 1024 })).describe('Password'),
  proxy: boundedString({ minChars: 1, maxChars: 256 })
    .optional()
    .describe('The sync proxy that runs this platform’s disk syncs'),
  thumbprint: boundedString({ maxChars: 128 })
    .regex(SHA256_THUMBPRINT, 'a SHA-256 thumbprint: 32 hex pairs, colons optional')
    .optional()
    .describe('Pin the server certificate by its SHA-256 thumbprint instead of verifying its chain'),
  ca: boundedString({ minChars: 1, maxChars: MAX_PEM_CHARS })
    .optional()
    .describe('Extra trusted CA certificate(s), PEM'),
  hostOverrides: z
    .record(boundedString({ minChars: 1, maxChars: 253 }), z.ipv4().or(z.ipv6()))
    .optional()
    .describe('Name -> IP records for vCenter and ESXi names the proxy cannot resolve'),
});

/** The config as a product fills the form. */
export type VmwareConfigInput = z.input<typeof vmwareConfigSchema>;
/** The config after parsing. */
export type VmwareConfig = z.output<typeof vmwareConfigSchema>;

/** Host and port of the API endpoint (443 unless the URL says otherwise). */
export function apiEndpoint(config: Pick<VmwareConfig, 'url'>): { host: string; port: number } {
  const url = new URL(config.url);
  return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port ? Number(url.port) : 443 };
}
