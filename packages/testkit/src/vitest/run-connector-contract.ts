import { afterAll, beforeAll, describe, it } from 'vitest';
import {
  type AnyConnector,
  type ConnectorContractOptions,
  createConnectorContract,
} from '../contract/connector-contract.js';

/**
 * Registers the connector contract v1 as a vitest suite: call it at the top
 * level of a test file. The tests run in order against one mock platform;
 * a test whose prerequisite failed says which one.
 *
 * @example
 * import { runConnectorContract } from '@syncproxy/testkit/vitest';
 * import { localdisk } from '../src/index.js';
 * import { createLocalDiskPlatform } from '../src/mock/index.js';
 *
 * runConnectorContract(localdisk, { platform: () => createLocalDiskPlatform() });
 */
export function runConnectorContract(connector: AnyConnector, options: ConnectorContractOptions): void {
  const contract = createConnectorContract(connector, options);
  describe(contract.title, () => {
    beforeAll(() => contract.setup(), contract.timeoutMs);
    afterAll(() => contract.teardown(), contract.timeoutMs);
    for (const step of contract.steps) {
      it(step.name, () => contract.run(step.name), contract.timeoutMs);
    }
  });
}
