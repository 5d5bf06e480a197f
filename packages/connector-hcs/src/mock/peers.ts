import { importOptionalPeer, type OptionalPeer, requireOptionalPeer } from '@syncproxy/core';
import type * as TestkitMock from '@syncproxy/testkit/mock';

// The testkit is an optional peer of this package: a production install of the connector does not
// bring it (nor its certificate tooling); only this mock needs it.
const TESTKIT: OptionalPeer = { name: '@syncproxy/testkit', neededBy: '@syncproxy/connector-hcs/mock' };

/** Called as `./mock` loads: importing it without the testkit fails with a sentence naming it. */
export function requireMockPeers(): void {
  requireOptionalPeer(TESTKIT, import.meta.url);
}

let testkit: Promise<typeof TestkitMock> | undefined;

/** `@syncproxy/testkit/mock`, imported once. */
export function loadTestkit(): Promise<typeof TestkitMock> {
  testkit ??= importOptionalPeer(TESTKIT, () => import('@syncproxy/testkit/mock'));
  return testkit;
}
