import type * as SignatureV4Module from '@smithy/signature-v4';
import { importOptionalPeer, type OptionalPeer, requireOptionalPeer } from '@syncproxy/core';
import type * as TestkitMock from '@syncproxy/testkit/mock';

// The mock's runtime needs are optional peers of this package: a production install of the
// connector brings neither the testkit (and its certificate tooling) nor a SigV4 signer of its own.
const TESTKIT: OptionalPeer = { name: '@syncproxy/testkit', neededBy: '@syncproxy/connector-aws/mock' };
const SIGNER: OptionalPeer = { name: '@smithy/signature-v4', neededBy: '@syncproxy/connector-aws/mock' };

/** Called as `./mock` loads: importing it without its peers fails with a sentence naming them. */
export function requireMockPeers(): void {
  requireOptionalPeer(TESTKIT, import.meta.url);
  requireOptionalPeer(SIGNER, import.meta.url);
}

let testkit: Promise<typeof TestkitMock> | undefined;
let signer: Promise<typeof SignatureV4Module> | undefined;

/** `@syncproxy/testkit/mock`, imported once. */
export function loadTestkit(): Promise<typeof TestkitMock> {
  testkit ??= importOptionalPeer(TESTKIT, () => import('@syncproxy/testkit/mock'));
  return testkit;
}

/** `@smithy/signature-v4`, imported once: the official signer the mock checks requests with. */
export function loadSigner(): Promise<typeof SignatureV4Module> {
  signer ??= importOptionalPeer(SIGNER, () => import('@smithy/signature-v4'));
  return signer;
}
