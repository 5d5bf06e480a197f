import { boundedString, MAX_PEM_CHARS, secret, urlField } from '@syncproxy/core';
import { z } from 'zod';
import { monitorsProblem } from './ceph/monitors.js';

const NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/** One Ceph cluster behind Cinder: the per-cluster part of the OpenStack form. */
export const cephClusterSchema = z
  .object({
    monitors: boundedString({ maxChars: 4096 })
      .superRefine((value, ctx) => {
        const problem = monitorsProblem(value);
        if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
      })
      .describe('Monitor addresses (comma-separated)'),
    cephx: z.boolean().default(true).describe('Use CephX'),
    user: boundedString({ maxChars: 128 })
      .regex(NAME, 'a Ceph client id such as cinder')
      .default('cinder')
      .describe('User (without "client.")'),
    /** A keyring file's content or only its key. */
    keyring: secret(boundedString({ minChars: 1, maxChars: 64 * 1024 }))
      .optional()
      .describe('Keyring'),
    pool: boundedString({ maxChars: 128 }).regex(NAME, 'a pool name').describe('Pool'),
    incrementalMode: z
      .enum(['rbd-diff', 'rbd-du'])
      .default('rbd-diff')
      .describe('Incremental mode: rbd diff (exact, slower) or rbd du (faster, whole objects)'),
    clusterName: boundedString({ maxChars: 128 })
      .regex(NAME, 'a cluster name')
      .default('ceph')
      .describe('Cluster name'),
    /**
     * Where Nova keeps the root disks of instances booted from an image
     * (`images_type=rbd`, `images_rbd_pool`): RBD images `<instance uuid>_disk`.
     */
    novaPool: boundedString({ maxChars: 128 })
      .regex(NAME, 'a pool name')
      .default('vms')
      .describe('Nova pool (root disks of image-booted instances)'),
    volumeTypes: z
      .array(boundedString({ minChars: 1, maxChars: 255 }))
      .default([])
      .describe('OpenStack volume types this cluster serves'),
  })
  .refine((c) => !c.cephx || (c.keyring !== undefined && c.keyring.trim() !== ''), {
    message: 'a keyring is required when CephX is on',
    path: ['keyring'],
  });

/**
 * The "add platform" form for OpenStack with Ceph, as the products show it
 * (PRODUCT.md): Keystone v3 URL, user domain id, user, password, project
 * domain id, project name, region, the sync proxy; then one or more Ceph clusters.
 */
export const openstackCephConfigSchema = z
  .object({
    authUrl: urlField({ protocols: ['https', 'http'] }).describe(
      'Keystone URL, e.g. http://192.168.10.201:5000/v3',
    ),
    userDomainId: boundedString({ minChars: 1, maxChars: 255 }).default('default').describe('User domain ID'),
    user: boundedString({ minChars: 1, maxChars: 255 }).describe('User'),
    password: secret(boundedString({ minChars: 1, maxChars: 1024 })).describe('Password'),
    projectDomainId: boundedString({ minChars: 1, maxChars: 255 })
      .default('default')
      .describe('Project domain ID'),
    projectName: boundedString({ minChars: 1, maxChars: 255 }).describe('Project name'),
    region: boundedString({ minChars: 1, maxChars: 255 }).default('RegionOne').describe('Region'),
    /** Catalog interface used to reach Nova and Cinder. */
    interface: z.enum(['public', 'internal', 'admin']).default('public').describe('Endpoint interface'),
    proxy: boundedString({ minChars: 1, maxChars: 256 })
      .optional()
      .describe('The sync proxy that runs this platform’s disk syncs'),
    cephClusters: z.array(cephClusterSchema).min(1).describe('Ceph clusters'),
    /** A PEM CA bundle for a Keystone served with a private CA. */
    caCertificate: boundedString({ maxChars: MAX_PEM_CHARS })
      .optional()
      .describe('CA certificate (PEM) for HTTPS endpoints'),
    /** How long a Cinder snapshot may stay `creating`. */
    snapshotTimeoutSec: z
      .number()
      .int()
      .min(1)
      .max(86_400)
      .default(600)
      .describe('Snapshot timeout (seconds)'),
    /** Where the `rbd` CLI is (Debian/Ubuntu package ceph-common). */
    rbdPath: boundedString({ minChars: 1, maxChars: 4096 }).default('rbd').describe('Path of the rbd CLI'),
  })
  .superRefine((config, ctx) => {
    const seen = new Map<string, number>();
    config.cephClusters.forEach((cluster, i) => {
      for (const type of cluster.volumeTypes) {
        const other = seen.get(type);
        if (other !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['cephClusters', i, 'volumeTypes'],
            message: `volume type ${JSON.stringify(type)} is also served by cluster ${other}`,
          });
        }
        seen.set(type, i);
      }
    });
  });

/** The config as a product fills the form. */
export type OpenstackCephConfigInput = z.input<typeof openstackCephConfigSchema>;
/** The config after parsing (defaults applied). */
export type OpenstackCephConfig = z.output<typeof openstackCephConfigSchema>;
export type CephClusterConfig = z.output<typeof cephClusterSchema>;
