import type { ContractContext } from '../contract-context.js';
import { ContractViolation } from '../contract-violation.js';
import { findLeaks } from '../secret-scan.js';

/** No secret of any config the suite used appears in results, errors, logs or console output. */
export async function secretsStep(ctx: ContractContext): Promise<void> {
  const leaks = findLeaks(ctx.observed, [...ctx.secrets]);
  if (leaks.length > 0) throw new ContractViolation(`secret leaked: ${leaks.join('; ')}`);
}
