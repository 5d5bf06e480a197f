import { importOptionalPeer, type OptionalPeer, requireOptionalPeer } from '@syncproxy/core';
import type * as TestkitMock from '@syncproxy/testkit/mock';

// The mock's runtime needs are an optional peer of this package: a production install of the
// connector brings neither the testkit nor its certificate tooling.
const TESTKIT: OptionalPeer = {
  name: '@syncproxy/testkit',
  neededBy: '@syncproxy/connector-fusioncompute/mock',
};

/** Called as `./mock` loads: importing it without its peer fails with a sentence naming it. */
export function requireMockPeers(): void {
  requireOptionalPeer(TESTKIT, import.meta.url);
}

let testkit: Promise<typeof TestkitMock> | undefined;

/** `@syncproxy/testkit/mock`, imported once. */
export function loadTestkit(): Promise<typeof TestkitMock> {
  testkit ??= importOptionalPeer(TESTKIT, () => import('@syncproxy/testkit/mock'));
  return testkit;
}
