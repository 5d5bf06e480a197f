import { hostname } from 'node:os';
import { boundedString } from '@syncproxy/core';
import { z } from 'zod';

/**
 * The "add platform" form of a machine read by an agent: its raw disk images
 * or block devices, and where snapshot manifests are kept.
 */
export const configSchema = z.object({
  hostName: boundedString({ minChars: 1, maxChars: 255 })
    .default(() => hostname())
    .describe('The name this machine is listed under (default: its host name).'),
  disks: z
    .array(
      z.object({
        path: boundedString({ minChars: 1, maxChars: 4096 }).describe(
          'A raw image file or a block device, e.g. /dev/sdb or /var/lib/images/vm.img.',
        ),
        id: boundedString({ maxChars: 64 })
          .regex(/^[A-Za-z0-9._-]{1,64}$/)
          .optional()
          .describe('A stable id for the disk (default: its path). Keep it when the path changes.'),
        name: boundedString({ maxChars: 255 }).optional(),
      }),
    )
    .min(1)
    // Two disks with one id would share one image in a sync target: each id (or path, its default) once.
    .superRefine((disks, ctx) => {
      const seen = new Set<string>();
      disks.forEach((disk, i) => {
        const id = disk.id ?? disk.path;
        if (seen.has(id)) {
          ctx.addIssue({
            code: 'custom',
            path: [i, disk.id === undefined ? 'path' : 'id'],
            message: 'names a disk already listed (each disk id, or path without one, once)',
          });
        }
        seen.add(id);
      });
    })
    .describe('The disks to sync.'),
  stateDir: boundedString({ minChars: 1, maxChars: 4096 }).describe(
    'A directory on the proxy where snapshot manifests are recorded (one SHA-256 per chunk).',
  ),
  chunkSizeBytes: z
    .number()
    .int()
    .min(64 * 1024)
    .max(64 * 1024 * 1024)
    .refine((n) => n % 4096 === 0, 'must be a multiple of 4096')
    .default(1024 * 1024)
    .describe('The hash-diff granularity: changes are found and sent in chunks of this size. Default 1 MiB.'),
});

export type LocalDiskConfig = z.infer<typeof configSchema>;
