import { z } from 'zod';
import { parseConfig } from '../config/parse-config.js';
import type { AssignmentFilter, RegisterProxyInput, SyncTask } from '../contracts/scheduler.js';
import { HARD_MAX_MOUNTED_DISKS, proxySettingsPatchSchema } from './settings.js';

// Ids end up in file names, URLs and log lines: a conservative alphabet keeps them safe in all three.
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@-]*$/;

export const idSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(ID_PATTERN, 'must start with a letter or digit and hold only letters, digits and . _ : @ -');

export const registerProxySchema = z.strictObject({
  id: idSchema,
  name: z.string().min(1).max(256).optional(),
  address: z.string().min(1).max(256).optional(),
  settings: proxySettingsPatchSchema.optional(),
  force: z.boolean().optional(),
});

export const syncTaskSchema = z.strictObject({
  id: idSchema,
  platformId: idSchema,
  mountSlots: z.number().int().min(0).max(HARD_MAX_MOUNTED_DISKS),
  checkpointRef: z.string().min(1).max(4096).optional(),
  platformHost: z
    .strictObject({ id: z.string().min(1).max(256), connections: z.number().int().min(0).max(1_000_000) })
    .optional(),
});

export const assignOptionsSchema = z.object({
  waitMs: z.number().int().min(0).max(86_400_000).optional(),
  signal: z.instanceof(AbortSignal).optional(),
});

export const assignmentFilterSchema = z.strictObject({
  proxyId: idSchema.optional(),
  platformId: idSchema.optional(),
});

export function parseId(input: unknown, what: string): string {
  return parseConfig(idSchema, input, what);
}

export function parseRegisterInput(input: unknown): RegisterProxyInput {
  return parseConfig(registerProxySchema, input, 'proxy registration');
}

/** A validated copy of the task: later changes to the caller's object do not reach the scheduler. */
export function parseTask(input: unknown): SyncTask {
  const parsed = parseConfig(syncTaskSchema, input, 'task');
  const task: SyncTask = { id: parsed.id, platformId: parsed.platformId, mountSlots: parsed.mountSlots };
  if (parsed.checkpointRef !== undefined) task.checkpointRef = parsed.checkpointRef;
  if (parsed.platformHost !== undefined) task.platformHost = { ...parsed.platformHost };
  return task;
}

export function parseAssignmentFilter(input: unknown): AssignmentFilter {
  return parseConfig(assignmentFilterSchema, input ?? {}, 'assignment filter');
}
