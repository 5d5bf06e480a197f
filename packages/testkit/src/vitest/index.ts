// The contract suite as a vitest suite: the one entry of the testkit that imports vitest, so the
// main entry (checkConnectorContract) and the mock kit run under any test runner, or none.

export { describeSchedulerSuite } from '../scheduler/scheduler-suite.js';
export type { SchedulerSuiteOptions } from '../scheduler/suite-context.js';
export { runConnectorContract } from './run-connector-contract.js';
