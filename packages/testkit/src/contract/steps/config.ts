import { SyncproxyError, toJSONSchema } from '@syncproxy/core';
import type { AnyConnector, ContractContext } from '../contract-context.js';
import { ContractViolation, describeError } from '../contract-violation.js';

/** The schema accepts the mock's config, and connect() refuses bad ones with a `config` error naming the field. */
export async function configStep(ctx: ContractContext): Promise<void> {
  const { connector, config } = ctx;
  const parsed = connector.configSchema.safeParse(config);
  if (!parsed.success) {
    const paths = parsed.error.issues.map((i) => i.path.join('.') || '(root)').join(', ');
    throw new ContractViolation(`configSchema rejects the mock platform's valid config (fields: ${paths})`);
  }
  const cases = [...derivedInvalidConfigs(connector, config), ...ctx.settings.invalidConfigs];
  if (cases.length === 0)
    throw new ContractViolation('no invalid config to try: the config has no required field');
  for (const { input, path } of cases) {
    const error = await ctx.rejection(
      `connect() with ${path ? `a bad ${path}` : 'a non-object config'}`,
      () => connector.connect(input, ctx.connectorContext()).then((s) => s.close()),
      `a config with a bad ${path || 'root'} must be refused`,
    );
    if (!SyncproxyError.hasCode(error, 'config')) {
      throw new ContractViolation(
        `connect() with a bad ${path || 'root'} rejected with ${describeError(error)}; expected code config`,
      );
    }
    const issues = (error.details?.issues ?? []) as Array<{ path: string }>;
    if (!issues.some((i) => i.path === path) || (path !== '' && !error.message.includes(path))) {
      throw new ContractViolation(
        `connect() with a bad ${path || 'root'}: the config error must name the field "${path}" (message: ${JSON.stringify(error.message)})`,
      );
    }
    if (error.retryable) throw new ContractViolation(`a config error must not be retryable (${path})`);
  }
}

/**
 * Bad inputs derived from the valid config: the root not an object, and each
 * required top-level field removed. Each must fail naming that field.
 */
function derivedInvalidConfigs(
  connector: AnyConnector,
  config: unknown,
): Array<{ input: unknown; path: string }> {
  const cases: Array<{ input: unknown; path: string }> = [{ input: 'not an object', path: '' }];
  if (config === null || typeof config !== 'object' || Array.isArray(config)) return cases;
  let required: string[] = [];
  try {
    const schema = toJSONSchema(connector.configSchema) as { required?: unknown };
    if (Array.isArray(schema.required))
      required = schema.required.filter((k): k is string => typeof k === 'string');
  } catch {
    required = [];
  }
  for (const key of required) {
    if (!(key in (config as Record<string, unknown>))) continue;
    const input = { ...(config as Record<string, unknown>) };
    delete input[key];
    cases.push({ input, path: key });
  }
  return cases;
}
