import { afterEach, describe } from 'vitest';
import { describeAssign } from './assign-tests.js';
import { describeFailover } from './failover-tests.js';
import { describeHostLimits } from './host-limit-tests.js';
import { describeRules } from './rules-tests.js';
import { type SchedulerSuiteOptions, SuiteResources } from './suite-context.js';

/**
 * The scheduler's behaviour on one `StateStore`: the same tests for every
 * store (memory, file, PostgreSQL, a product's own), so a store proves it
 * keeps the scheduler's rules by passing them unchanged.
 */
export function describeSchedulerSuite(options: SchedulerSuiteOptions): void {
  describe(`proxy scheduler on the ${options.name} store`, () => {
    const resources = new SuiteResources(options);
    afterEach(() => resources.closeAll());
    describeRules(resources);
    describeAssign(resources);
    describeFailover(resources);
    describeHostLimits(resources);
  });
}
