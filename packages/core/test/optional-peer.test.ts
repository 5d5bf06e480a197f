import { describe, expect, it } from 'vitest';
import { importOptionalPeer, requireOptionalPeer, SyncproxyError } from '../src/index.js';

const peer = { name: '@syncproxy/not-installed', neededBy: '@syncproxy/connector-x/mock' };
const sentence =
  '@syncproxy/connector-x/mock needs @syncproxy/not-installed, an optional peer dependency that is not installed: add it to your devDependencies (npm install --save-dev @syncproxy/not-installed)';

describe('optional peers', () => {
  it('requireOptionalPeer names the package to add when it is missing', () => {
    let caught: unknown;
    try {
      requireOptionalPeer(peer, import.meta.url);
    } catch (error) {
      caught = error;
    }
    expect(SyncproxyError.isInstance(caught)).toBe(true);
    expect((caught as SyncproxyError).code).toBe('config');
    expect((caught as SyncproxyError).message).toBe(sentence);
  });

  it('requireOptionalPeer passes for an installed package', () => {
    expect(() => requireOptionalPeer({ name: 'zod', neededBy: 'x' }, import.meta.url)).not.toThrow();
  });

  it('importOptionalPeer turns a failed import of the peer into the same error, and keeps other failures', async () => {
    const notFound = Object.assign(new Error("Cannot find package '@syncproxy/not-installed'"), {
      code: 'ERR_MODULE_NOT_FOUND',
    });
    await expect(importOptionalPeer(peer, () => Promise.reject(notFound))).rejects.toThrow(sentence);
    const other = new Error('syntax error in the peer');
    await expect(importOptionalPeer(peer, () => Promise.reject(other))).rejects.toBe(other);
    await expect(importOptionalPeer(peer, async () => 42)).resolves.toBe(42);
  });
});
