import { z } from 'zod';

/** The JSON Schema keywords that mark a config field as a secret. */
export const SECRET_KEYWORDS = { writeOnly: true, 'x-secret': true } as const;

/**
 * Marks a config field as a secret: the JSON Schema of the form shows it with
 * `writeOnly: true` and `x-secret: true` (render it as a password input), and
 * the SDK redacts its value from every log line and error.
 *
 * @example
 * const configSchema = z.object({ user: z.string(), password: secret(z.string().min(1)) });
 */
export function secret<T extends z.ZodType>(schema: T): T {
  const existing = (schema.meta() ?? {}) as Record<string, unknown>;
  return schema.meta({ ...existing, ...SECRET_KEYWORDS }) as T;
}

/** True when `schema` was marked with {@link secret}. */
export function isSecret(schema: z.ZodType): boolean {
  return (schema.meta() as Record<string, unknown> | undefined)?.['x-secret'] === true;
}

/** A JSON Schema document (draft 2020-12), as products render it. */
export type JsonSchema = Record<string, unknown>;

/**
 * The JSON Schema of a connector's config form, for a product to render. Secret
 * fields carry `writeOnly: true` and `x-secret: true`; field descriptions,
 * defaults and examples come from the zod schema.
 */
export function toJSONSchema(schema: z.ZodType): JsonSchema {
  return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
}
