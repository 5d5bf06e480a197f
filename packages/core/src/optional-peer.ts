import { createRequire } from 'node:module';
import { SyncproxyError } from './errors/syncproxy-error.js';

/** An optional peer dependency, and the entry of the package that needs it. */
export interface OptionalPeer {
  /** The package to install, e.g. `@syncproxy/testkit`. */
  name: string;
  /** The entry that needs it, e.g. `@syncproxy/connector-aws/mock`. */
  neededBy: string;
}

function missingPeer(peer: OptionalPeer, cause?: unknown): SyncproxyError {
  return new SyncproxyError(
    `${peer.neededBy} needs ${peer.name}, an optional peer dependency that is not installed: add it to your devDependencies (npm install --save-dev ${peer.name})`,
    { code: 'config', cause, details: { package: peer.name, neededBy: peer.neededBy } },
  );
}

function isNotFound(error: unknown, name: string): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return (
    (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') &&
    error instanceof Error &&
    error.message.includes(name)
  );
}

/**
 * Throws a `config` error that says what to install when `peer.name` cannot be found from `from`
 * (the caller's `import.meta.url`). A package entry calls it at load time, so that importing the
 * entry fails with that sentence rather than with Node's bare "Cannot find package".
 */
export function requireOptionalPeer(peer: OptionalPeer, from: string): void {
  try {
    createRequire(from).resolve(`${peer.name}/package.json`);
  } catch (error) {
    // A package whose "exports" hides package.json is installed all the same.
    if ((error as { code?: unknown }).code === 'ERR_PACKAGE_PATH_NOT_EXPORTED') return;
    throw missingPeer(peer, error);
  }
}

/**
 * Runs `load` (an `import()` of the peer: a static import would fail before any code of the entry
 * runs) and turns a missing-package failure into the same `config` error.
 */
export async function importOptionalPeer<T>(peer: OptionalPeer, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if (isNotFound(error, peer.name)) throw missingPeer(peer, error);
    throw error;
  }
}
