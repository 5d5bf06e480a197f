import type { z } from 'zod';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import { toSyncproxyError } from '../errors/to-syncproxy-error.js';
import { type JsonSchema, toJSONSchema } from './secret.js';
import {
  base64Forms,
  escapedFormsPattern,
  literalForms,
  MAX_PATTERN_SECRET_CHARS,
} from './secret-pattern.js';

/** What a secret is replaced with. */
export const REDACTED = '[REDACTED]';

/** Object keys whose values are treated as secrets even when no schema says so. */
const SECRET_KEY =
  /pass(word|phrase)?$|secret|token|keyring|private_?key|privatekey|credential|authorization|^sk$|cookie/i;

/** Secrets shorter than this are redacted by field, not searched for in text (they would match everywhere). */
const MIN_SECRET_LENGTH = 3;

/**
 * Removes known secret values from text, values and errors. Made once per
 * connector session from its config ({@link collectSecrets}).
 */
export class Redactor {
  readonly #secrets: readonly string[];
  readonly #pattern: RegExp | undefined;
  /** Whole-string forms of the secrets too long for the pattern, longest first. */
  readonly #literals: readonly string[];

  constructor(secrets: Iterable<string> = []) {
    const all = new Set<string>();
    for (const s of secrets) if (typeof s === 'string' && s.length >= MIN_SECRET_LENGTH) all.add(s);
    this.#secrets = [...all].sort((a, b) => b.length - a.length);
    // One pattern for every secret in every escaped form (secret-pattern.ts), longest first.
    const short = this.#secrets.filter((s) => s.length <= MAX_PATTERN_SECRET_CHARS);
    const sources = short.flatMap((s) => [
      escapedFormsPattern(s),
      ...base64Forms(s).map((b) => b.replace(/[+/]/g, '\\$&')),
    ]);
    this.#pattern = sources.length === 0 ? undefined : new RegExp(sources.join('|'), 'g');
    this.#literals = this.#secrets
      .filter((s) => s.length > MAX_PATTERN_SECRET_CHARS)
      .flatMap(literalForms)
      .sort((a, b) => b.length - a.length);
  }

  /** A redactor that also knows `more` secrets. */
  with(more: Iterable<string>): Redactor {
    return new Redactor([...this.#secrets, ...more]);
  }

  /** How many secrets it knows. */
  get size(): number {
    return this.#secrets.length;
  }

  text(input: string): string {
    let out = input;
    for (const literal of this.#literals) if (out.includes(literal)) out = out.split(literal).join(REDACTED);
    return this.#pattern === undefined ? out : out.replace(this.#pattern, REDACTED);
  }

  /** A deep copy of `input` with secret values and secret-named fields replaced. */
  value<T>(input: T): T {
    return this.walk(input, new WeakMap()) as T;
  }

  private walk(input: unknown, seen: WeakMap<object, unknown>): unknown {
    if (typeof input === 'string') return this.text(input);
    if (input === null || typeof input !== 'object') return input;
    if (input instanceof Error) return this.error(input);
    if (ArrayBuffer.isView(input)) return input;
    if (seen.has(input)) return seen.get(input);
    if (Array.isArray(input)) {
      const out: unknown[] = [];
      seen.set(input, out);
      for (const item of input) out.push(this.walk(item, seen));
      return out;
    }
    const out: Record<string, unknown> = {};
    seen.set(input, out);
    for (const [key, val] of Object.entries(input)) {
      out[key] =
        SECRET_KEY.test(key) && (typeof val === 'string' || typeof val === 'number')
          ? REDACTED
          : this.walk(val, seen);
    }
    return out;
  }

  /**
   * A SyncproxyError whose message, stack, details and whole cause chain hold no
   * secret. Anything that is not yet a SyncproxyError is mapped first.
   */
  error(input: unknown, context: { operation?: string; platform?: string } = {}): SyncproxyError {
    return this.redactError(toSyncproxyError(input, context), 0);
  }

  private redactError(error: SyncproxyError, depth: number): SyncproxyError {
    const cause = error.cause === undefined ? undefined : this.redactCause(error.cause, depth + 1);
    const copy = Object.create(Object.getPrototypeOf(error)) as SyncproxyError;
    for (const key of Reflect.ownKeys(error)) {
      const desc = Object.getOwnPropertyDescriptor(error, key)!;
      if ('value' in desc && typeof key === 'string') {
        if (key === 'cause') desc.value = cause;
        else if (key !== 'stack') desc.value = this.walk(desc.value, new WeakMap());
      }
      Object.defineProperty(copy, key, desc);
    }
    Object.defineProperty(copy, 'stack', {
      value: error.stack === undefined ? undefined : this.text(error.stack),
      writable: true,
      configurable: true,
      enumerable: false,
    });
    return copy;
  }

  private redactCause(cause: unknown, depth: number): unknown {
    if (depth > 8) return undefined;
    if (SyncproxyError.isInstance(cause)) return this.redactError(cause, depth);
    if (cause instanceof Error) {
      const copy = new Error(this.text(cause.message));
      copy.name = cause.name;
      copy.stack = cause.stack === undefined ? undefined : this.text(cause.stack);
      const code = (cause as { code?: unknown }).code;
      if (code !== undefined) (copy as { code?: unknown }).code = code;
      if (cause.cause !== undefined) copy.cause = this.redactCause(cause.cause, depth + 1);
      return copy;
    }
    return this.walk(cause, new WeakMap());
  }
}

/**
 * A copy of `value` with secrets removed: fields named like secrets
 * (password, secretAccessKey, token, keyring, privateKey, ...) and every
 * occurrence of the given secret strings.
 */
export function redact<T>(value: T, secrets: Iterable<string> = []): T {
  return new Redactor(secrets).value(value);
}

/**
 * The secret values in `config`: fields its schema marks with `secret()`, and
 * fields named like secrets. Feed them to a {@link Redactor}.
 */
export function collectSecrets(schema: z.ZodType, config: unknown): string[] {
  const out = new Set<string>();
  let root: JsonSchema | undefined;
  try {
    root = toJSONSchema(schema);
  } catch {
    root = undefined;
  }
  walkSecrets(root, root, config, out, 0);
  return [...out];
}

function walkSecrets(
  root: JsonSchema | undefined,
  node: JsonSchema | undefined,
  value: unknown,
  out: Set<string>,
  depth: number,
): void {
  if (depth > 32 || value === null || value === undefined) return;
  const resolved = resolveRef(root, node);
  if (resolved?.['x-secret'] === true && (typeof value === 'string' || typeof value === 'number')) {
    out.add(String(value));
    return;
  }
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    const list = resolved?.[key];
    if (Array.isArray(list))
      for (const sub of list) walkSecrets(root, sub as JsonSchema, value, out, depth + 1);
  }
  if (Array.isArray(value)) {
    const items = resolved?.items as JsonSchema | undefined;
    for (const item of value) walkSecrets(root, items, item, out, depth + 1);
    return;
  }
  if (typeof value === 'object') {
    const props = (resolved?.properties ?? {}) as Record<string, JsonSchema>;
    const extra = resolved?.additionalProperties;
    for (const [key, val] of Object.entries(value as Record<string, unknown>)) {
      if (SECRET_KEY.test(key) && (typeof val === 'string' || typeof val === 'number')) out.add(String(val));
      const sub = props[key] ?? (typeof extra === 'object' ? (extra as JsonSchema) : undefined);
      walkSecrets(root, sub, val, out, depth + 1);
    }
  }
}

function resolveRef(root: JsonSchema | undefined, node: JsonSchema | undefined): JsonSchema | undefined {
  let current = node;
  for (let i = 0; i < 8 && current && typeof current.$ref === 'string'; i++) {
    const ref = current.$ref as string;
    if (!ref.startsWith('#/')) return current;
    let target: unknown = root;
    for (const part of ref.slice(2).split('/'))
      target = (target as Record<string, unknown> | undefined)?.[part];
    current = target as JsonSchema | undefined;
  }
  return current;
}
