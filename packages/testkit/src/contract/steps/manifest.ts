import { SUPPORTED_SPEC_VERSIONS, toJSONSchema } from '@syncproxy/core';
import type { ContractContext } from '../contract-context.js';
import { ContractViolation } from '../contract-violation.js';

/** The connector value: id, displayName, version, specVersion, capabilities, schema and functions. */
export async function manifestStep(ctx: ContractContext): Promise<void> {
  const { connector } = ctx;
  const problems: string[] = [];
  if (typeof connector?.id !== 'string' || !/^[a-z][a-z0-9-]{1,47}$/.test(connector.id)) {
    problems.push(`id ${JSON.stringify(connector?.id)} must be lowercase letters, digits and dashes`);
  }
  if (typeof connector?.displayName !== 'string' || connector.displayName.trim() === '')
    problems.push('displayName must be a non-empty string');
  if (typeof connector?.version !== 'string' || !/^\d+\.\d+\.\d+/.test(connector.version))
    problems.push(`version ${JSON.stringify(connector?.version)} is not semver`);
  if (!(SUPPORTED_SPEC_VERSIONS as readonly string[]).includes(connector?.specVersion)) {
    problems.push(
      `specVersion ${JSON.stringify(connector?.specVersion)} is not one of ${SUPPORTED_SPEC_VERSIONS.join(', ')}`,
    );
  }
  const caps = connector?.capabilities;
  if (!caps || !['native', 'allocation', 'hash'].includes(caps.changeTracking)) {
    problems.push(
      `capabilities.changeTracking ${JSON.stringify(caps?.changeTracking)} must be native, allocation or hash`,
    );
  }
  for (const flag of ['consistentMultiDiskSnapshot', 'mountsDisks', 'quiescedSnapshots'] as const) {
    if (typeof caps?.[flag] !== 'boolean') problems.push(`capabilities.${flag} must be a boolean`);
  }
  if (typeof connector?.configSchema?.safeParse !== 'function')
    problems.push('configSchema must be a zod schema');
  else {
    try {
      toJSONSchema(connector.configSchema);
    } catch (error) {
      problems.push(
        `configSchema cannot be rendered as a form (toJSONSchema failed: ${(error as Error).message})`,
      );
    }
  }
  if (typeof connector?.connect !== 'function') problems.push('connect must be a function');
  if (typeof connector?.networkRequirements !== 'function')
    problems.push('networkRequirements must be a function');
  if (problems.length > 0) throw new ContractViolation(`invalid connector manifest: ${problems.join('; ')}`);
}
