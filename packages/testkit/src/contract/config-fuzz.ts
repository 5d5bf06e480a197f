import { MAX_PEM_CHARS, parseConfig, SyncproxyError } from '@syncproxy/core';
import fc from 'fast-check';
import type { AnyConnector } from './connector-contract.js';
import { ContractViolation } from './connector-contract.js';
import { errorTexts, findLeaks } from './secret-scan.js';

export interface FuzzConfigSchemaOptions {
  /**
   * A config the schema accepts. Most inputs are this config with one to
   * three fields replaced, removed or added, so the fuzz reaches the nested
   * fields and refinements a random value never gets past the root of.
   */
  validConfig?: unknown;
  /** Values that must never be echoed in an error: planted as URL userinfo and as field values. Default: one generated secret. */
  secrets?: readonly string[];
  /** Inputs to try. Default 300. */
  runs?: number;
  /** Longest a parse may take, per input. Default 100 ms (a slower one is timed again once: a GC pause is not a finding). */
  timeLimitMs?: number;
  /** Longest error message. Default 2000 characters. */
  maxMessageChars?: number;
  /** Longest string a parsed config may hold. Default 1 MiB (core's `MAX_PEM_CHARS`). */
  maxStringChars?: number;
  /** fast-check seed, to replay a failure. */
  seed?: number;
}

export interface FuzzConfigReport {
  runs: number;
  /** Inputs the schema accepted. */
  parsed: number;
  /** Inputs refused with a `config` error naming a field. */
  refused: number;
  /** Slowest parse seen (ms). */
  slowestMs: number;
}

const DEFAULT_SECRET = 'fuzz-S3cret!&<pa$$>';
const HUGE_CHARS = 2 * 1024 * 1024;
const PROTO_KEYS = ['__proto__', 'constructor', 'prototype'];

/**
 * Feeds a connector's config schema random JSON values, huge strings, URLs
 * with credentials in them and objects with prototype keys, through
 * `parseConfig` as `connect()` does, and checks every outcome:
 * - a parsed config, or a SyncproxyError `config` whose `details.issues`
 *   name a field (the root only when the input is not an object);
 * - within `timeLimitMs`, with a message of at most `maxMessageChars`;
 * - no secret in the error's message, stack, JSON or `util.inspect`, in any
 *   cause;
 * - `Object.prototype` untouched.
 *
 * Throws a {@link ContractViolation} describing the first failing input
 * (shrunk by fast-check, secrets masked); resolves with counts otherwise.
 *
 * @example
 * it('the config schema survives fuzzing', async () => {
 *   await fuzzConfigSchema(myConnector, { validConfig: { url: 'https://h', password: 'pw-123' }, secrets: ['pw-123'] });
 * });
 */
export async function fuzzConfigSchema(
  connector: AnyConnector,
  options: FuzzConfigSchemaOptions = {},
): Promise<FuzzConfigReport> {
  const secrets = options.secrets?.length ? [...options.secrets] : [DEFAULT_SECRET];
  const timeLimitMs = options.timeLimitMs ?? 100;
  const maxMessageChars = options.maxMessageChars ?? 2000;
  const report: FuzzConfigReport = { runs: 0, parsed: 0, refused: 0, slowestMs: 0 };
  const what = `${connector.id} config`;
  const maxStringChars = options.maxStringChars ?? MAX_PEM_CHARS;
  const prototypeKeys = Object.getOwnPropertyNames(Object.prototype).sort().join(',');
  // The URL fields: those the valid config fills with a URL. None may accept credentials.
  const urlPaths = pathsOf(options.validConfig).filter(
    (path) =>
      typeof valueAt(options.validConfig, path) === 'string' &&
      URL_LIKE.test(valueAt(options.validConfig, path) as string),
  );

  const property = fc.property(configInput(options.validConfig, secrets), (input) => {
    report.runs++;
    let outcome = parseTimed(connector, input, what);
    if (outcome.ms > timeLimitMs) outcome = parseTimed(connector, input, what);
    report.slowestMs = Math.max(report.slowestMs, outcome.ms);
    const problems: string[] = [];
    if (outcome.ms > timeLimitMs) problems.push(`took ${outcome.ms.toFixed(1)} ms (limit ${timeLimitMs} ms)`);
    if (Object.getOwnPropertyNames(Object.prototype).sort().join(',') !== prototypeKeys) {
      problems.push('changed Object.prototype');
    }
    if (outcome.error === undefined) {
      report.parsed++;
      problems.push(...acceptedProblems(outcome.config, urlPaths, maxStringChars));
    } else {
      problems.push(...refusalProblems(outcome.error, input, maxMessageChars));
      problems.push(
        ...findLeaks(
          errorTexts(outcome.error).map((text) => ({ source: 'the error', text })),
          secrets,
        ),
      );
      if (problems.length === 0) report.refused++;
    }
    if (problems.length > 0) throw new ContractViolation(problems.join('; '));
  });
  const result = fc.check(property, {
    numRuns: options.runs ?? 300,
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
  });
  if (result.failed) {
    const input = describeInput(result.counterexample?.[0], secrets);
    const why =
      result.errorInstance instanceof Error ? result.errorInstance.message : String(result.errorInstance);
    throw new ContractViolation(
      `${connector.id} config schema: ${why}; input ${input} (seed ${result.seed}, path ${JSON.stringify(result.counterexample === null ? '' : result.counterexamplePath)})`,
    );
  }
  return report;
}

const URL_LIKE = /^[a-z][a-z0-9+.-]*:\/\//i;
const USERINFO = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i;

function parseTimed(
  connector: AnyConnector,
  input: unknown,
  what: string,
): { ms: number; config?: unknown; error?: unknown } {
  const started = performance.now();
  try {
    const config = parseConfig(connector.configSchema, input, what);
    return { ms: performance.now() - started, config };
  } catch (error) {
    return { ms: performance.now() - started, error };
  }
}

/** What a parsed config must not hold: a URL with credentials, an unbounded string. */
function acceptedProblems(config: unknown, urlPaths: Path[], maxStringChars: number): string[] {
  const problems: string[] = [];
  for (const path of urlPaths) {
    const value = valueAt(config, path);
    if (typeof value === 'string' && USERINFO.test(value)) {
      problems.push(`accepted a URL with a user name or password in ${path.join('.')}`);
    }
  }
  const long = [[], ...pathsOf(config)].find((path) => {
    const value = valueAt(config, path);
    return typeof value === 'string' && value.length > maxStringChars;
  });
  if (long !== undefined) {
    problems.push(
      `accepted a string of ${(valueAt(config, long) as string).length} characters in ${long.join('.') || '(root)'}`,
    );
  }
  return problems;
}

function valueAt(value: unknown, path: Path): unknown {
  let at: unknown = value;
  for (const key of path) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<string | number, unknown>)[key];
  }
  return at;
}

function refusalProblems(error: unknown, input: unknown, maxMessageChars: number): string[] {
  if (!SyncproxyError.hasCode(error, 'config')) {
    const code = SyncproxyError.isInstance(error) ? error.code : (error as Error)?.name;
    return [
      `refused with ${String(code)}, not a config error: ${String((error as Error)?.message).slice(0, 200)}`,
    ];
  }
  const problems: string[] = [];
  if (error.message.length > maxMessageChars) {
    problems.push(`an error message of ${error.message.length} characters (limit ${maxMessageChars})`);
  }
  const issues = (error.details?.issues ?? []) as Array<{ path?: unknown }>;
  if (!Array.isArray(issues) || issues.length === 0) problems.push('a config error with no details.issues');
  const isObject = typeof input === 'object' && input !== null && !Array.isArray(input);
  if (isObject && !issues.some((i) => typeof i.path === 'string' && i.path !== '')) {
    problems.push(`a config error that names no field: ${error.message.slice(0, 200)}`);
  }
  return problems;
}

/** The input, secrets masked and long strings cut, for the failure message. */
function describeInput(input: unknown, secrets: readonly string[]): string {
  let text: string;
  try {
    text = JSON.stringify(input, (_key, value: unknown) =>
      typeof value === 'string' && value.length > 80 ? `<${value.length} characters>` : value,
    );
  } catch {
    text = String(input);
  }
  for (const secret of secrets) text = text.split(secret).join('<secret>');
  return text.length > 2000 ? `${text.slice(0, 2000)}…` : text;
}

let huge: { text: string; url: string } | undefined;
/** Made once: a fresh 2 MiB string per run would spend the time budget in the generator. */
function hugeValues(): { text: string; url: string } {
  huge ??= {
    text: 'x'.repeat(HUGE_CHARS),
    url: `https://example.com/${'a'.repeat(HUGE_CHARS)}`,
  };
  return huge;
}

/** A value worth putting anywhere in a config. */
function fieldValue(secrets: readonly string[]): fc.Arbitrary<unknown> {
  const secret = fc.constantFrom(...secrets);
  return fc.oneof(
    { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
    { weight: 2, arbitrary: fc.string({ maxLength: 40 }) },
    { weight: 2, arbitrary: secret },
    {
      weight: 3,
      arbitrary: fc
        .tuple(secret, fc.constantFrom('https', 'http', 'nbd'), fc.constantFrom('admin', '', 'a%40b'))
        .map(([s, scheme, user]) => `${scheme}://${user}:${s}@example.com:443/path`),
    },
    { weight: 1, arbitrary: secret.map((s) => `https://${encodeURIComponent(s)}@example.com/`) },
    { weight: 1, arbitrary: fc.constant(null).map(() => hugeValues().text) },
    { weight: 1, arbitrary: fc.constant(null).map(() => hugeValues().url) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 100_000 }).map((n) => 'y'.repeat(n)) },
    { weight: 2, arbitrary: prototypeObject() },
    { weight: 1, arbitrary: fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -0, 2 ** 53, -1, 1e308) },
  );
}

/** An object with `__proto__` / `constructor` / `prototype` as own keys, as JSON.parse makes them. */
function prototypeObject(): fc.Arbitrary<unknown> {
  return fc
    .tuple(fc.subarray(PROTO_KEYS, { minLength: 1 }), fc.jsonValue({ maxDepth: 2 }))
    .map(([keys, value]) =>
      JSON.parse(
        `{${keys.map((k) => `${JSON.stringify(k)}:{"polluted":${JSON.stringify(value ?? null)},"prototype":{"polluted":true}}`).join(',')}}`,
      ),
    );
}

type Path = Array<string | number>;

/** Every path into a JSON-like value (objects and arrays), the root excluded. */
function pathsOf(value: unknown, prefix: Path = [], out: Path[] = []): Path[] {
  if (value === null || typeof value !== 'object' || prefix.length > 8) return out;
  for (const [key, child] of Object.entries(value)) {
    const path = [...prefix, Array.isArray(value) ? Number(key) : key];
    out.push(path);
    pathsOf(child, path, out);
  }
  return out;
}

interface Mutation {
  path: Path;
  action: 'set' | 'delete' | 'add';
  key: string;
  value: unknown;
}

function mutate(base: unknown, mutations: Mutation[]): unknown {
  const copy = structuredClone(base) as Record<string | number, unknown>;
  for (const m of mutations) {
    const parentPath = m.path.slice(0, -1);
    let parent: unknown = copy;
    for (const key of parentPath) parent = (parent as Record<string | number, unknown>)?.[key];
    if (parent === null || typeof parent !== 'object') continue;
    const last = m.path[m.path.length - 1]!;
    const target = parent as Record<string | number, unknown>;
    if (m.action === 'delete') delete target[last];
    else if (m.action === 'set') target[last] = m.value;
    else {
      const holder = target[last];
      if (holder !== null && typeof holder === 'object' && !Array.isArray(holder)) {
        // defineProperty: a `__proto__` key becomes an own key, as JSON.parse would make it.
        Object.defineProperty(holder, m.key, {
          value: m.value,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      } else target[last] = m.value;
    }
  }
  return copy;
}

function configInput(validConfig: unknown, secrets: readonly string[]): fc.Arbitrary<unknown> {
  const value = fieldValue(secrets);
  const whole = fc.oneof(value, fc.dictionary(fc.string({ maxLength: 12 }), value, { maxKeys: 6 }));
  const paths = pathsOf(validConfig);
  if (validConfig === undefined || paths.length === 0) return whole;
  const mutation = fc.record({
    path: fc.constantFrom(...paths),
    action: fc.constantFrom<Mutation['action']>('set', 'set', 'set', 'delete', 'add'),
    key: fc.oneof(fc.constantFrom(...PROTO_KEYS), fc.string({ maxLength: 12 })),
    value,
  });
  const rootKey = fc.record({
    path: fc.constant<Path>([]),
    action: fc.constant<Mutation['action']>('add'),
    key: fc.oneof(fc.constantFrom(...PROTO_KEYS), fc.string({ maxLength: 12 })),
    value,
  });
  return fc.oneof(
    { weight: 1, arbitrary: whole },
    { weight: 1, arbitrary: fc.constant(validConfig) },
    {
      weight: 8,
      arbitrary: fc
        .array(mutation, { minLength: 1, maxLength: 3 })
        .map((mutations) => mutate(validConfig, mutations)),
    },
    { weight: 2, arbitrary: rootKey.map((m) => addRootKey(validConfig, m)) },
  );
}

function addRootKey(validConfig: unknown, m: Mutation): unknown {
  const copy = structuredClone(validConfig);
  if (copy !== null && typeof copy === 'object') {
    Object.defineProperty(copy, m.key, {
      value: m.value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return copy;
}
