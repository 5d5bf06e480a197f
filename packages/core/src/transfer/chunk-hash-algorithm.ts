import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { SyncWarning } from '../contracts/reader.js';
import { SyncproxyError } from '../errors/syncproxy-error.js';

/**
 * The hash a manifest records chunks with. Both give 32 bytes, both are
 * cryptographic: a chunk is judged unchanged only by one of them. BLAKE3 runs
 * at about 2.5 times SHA-256's speed on one core even where SHA-256 has the
 * CPU's SHA extensions (4.6 against 1.8 GB/s; `pnpm bench` in packages/core,
 * row `hash-blake3`), so
 * new manifests use it; SHA-256 stays for manifests written before (format 1)
 * and wherever the BLAKE3 binding cannot load.
 */
export type ChunkHashAlgorithm = 'sha256' | 'blake3';

export const CHUNK_HASH_ALGORITHMS: readonly ChunkHashAlgorithm[] = ['sha256', 'blake3'];

/** The part of `@napi-rs/blake-hash` used here. */
export interface Blake3Binding {
  blake3(input: Uint8Array): Uint8Array;
  Blake3Hasher: new () => { update(input: Uint8Array): unknown; digestBuffer(): Uint8Array };
}

const BLAKE3_PACKAGE = '@napi-rs/blake-hash';

/** The binding, once loaded; `error` when it could not load on this platform. */
type Loaded = { binding: Blake3Binding; path: string } | { error: unknown };
let loaded: Loaded | undefined;

function requireFromHere(): NodeJS.Require {
  // ESM has import.meta.url; the CJS build has __filename (tsup does not shim import.meta there).
  return createRequire(typeof __filename === 'string' ? __filename : import.meta.url);
}

/** Loads the native binding of a platform it ships for; the test seam passes its own `load`. */
export function loadBlake3(load: () => { binding: Blake3Binding; path: string } = defaultLoad): Loaded {
  if (load === defaultLoad && loaded !== undefined) return loaded;
  let result: Loaded;
  try {
    const { binding, path } = load();
    // A binding that loads but hashes wrong (a broken build) must not write manifests: check one vector.
    const probe = Buffer.from(binding.blake3(new TextEncoder().encode('abc'))).toString('hex');
    if (probe !== BLAKE3_ABC) throw new Error(`BLAKE3("abc") gave ${probe}`);
    result = { binding, path };
  } catch (error) {
    result = { error };
  }
  if (load === defaultLoad) loaded = result;
  return result;
}

function defaultLoad(): { binding: Blake3Binding; path: string } {
  const require = requireFromHere();
  // Loaded from its real place, resolved by the system's realpath(3): require's own symlink
  // resolution stops early after any lstat of a FIFO or socket in the process (nodejs/node#51142:
  // an application's own, or one of its libraries'), and from the link's place a symlinked
  // install (pnpm) does not find the package's native binding beside it.
  const path = realpathSync.native(require.resolve(BLAKE3_PACKAGE));
  return { binding: require(path) as Blake3Binding, path };
}

/** BLAKE3 of "abc", from the BLAKE3 reference test vectors. */
const BLAKE3_ABC = '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85';

/** The algorithm a new manifest gets, and the typed warning when BLAKE3 could not be had. */
export interface ChunkHashChoice {
  algorithm: ChunkHashAlgorithm;
  /** `hash-fallback`: the BLAKE3 binding did not load, SHA-256 is used instead. */
  warning?: SyncWarning;
}

/** BLAKE3 where its binding loads on this platform, else SHA-256 with a `hash-fallback` warning. */
export function chooseChunkHashAlgorithm(
  load?: () => { binding: Blake3Binding; path: string },
): ChunkHashChoice {
  const result = loadBlake3(load);
  if ('binding' in result) return { algorithm: 'blake3' };
  const why = result.error instanceof Error ? result.error.message : String(result.error);
  return {
    algorithm: 'sha256',
    warning: {
      code: 'hash-fallback',
      message: `the BLAKE3 binding (${BLAKE3_PACKAGE}) did not load on ${process.platform}-${process.arch} (${why.split('\n')[0]}): chunks are hashed with SHA-256, about 2.5 times slower; reinstall with optional dependencies to get it back`,
    },
  };
}

/** Whether digests of `algorithm` can be taken here (BLAKE3 needs its binding). */
export function canDigest(algorithm: ChunkHashAlgorithm): boolean {
  return algorithm === 'sha256' || 'binding' in loadBlake3();
}

/** Where the worker threads load the binding from; undefined when it does not load. */
export function blake3BindingPath(): string | undefined {
  const result = loadBlake3();
  return 'path' in result ? result.path : undefined;
}

function blake3Binding(): Blake3Binding {
  const result = loadBlake3();
  if ('binding' in result) return result.binding;
  throw new SyncproxyError(
    `this manifest's chunks are BLAKE3 digests, and the BLAKE3 binding (${BLAKE3_PACKAGE}) does not load here: install it, or sync in full to start a SHA-256 manifest`,
    { code: 'unsupported', retryable: false, cause: result.error },
  );
}

/** An incremental digest, for a chunk assembled from pieces. */
export interface ChunkDigest {
  update(data: Uint8Array): void;
  /** The 32-byte digest; call once. */
  digest(): Uint8Array;
}

/** The 32-byte digest of `data` with `algorithm`, on the calling thread. */
export function digestChunk(algorithm: ChunkHashAlgorithm, data: Uint8Array): Uint8Array {
  if (algorithm === 'blake3') return new Uint8Array(blake3Binding().blake3(data));
  return new Uint8Array(createHash('sha256').update(data).digest());
}

export function createChunkDigest(algorithm: ChunkHashAlgorithm): ChunkDigest {
  if (algorithm === 'blake3') {
    const hasher = new (blake3Binding().Blake3Hasher)();
    return {
      update: (data) => {
        hasher.update(data);
      },
      digest: () => new Uint8Array(hasher.digestBuffer()),
    };
  }
  const hash = createHash('sha256');
  return {
    update: (data) => {
      hash.update(data);
    },
    digest: () => new Uint8Array(hash.digest()),
  };
}

export function isChunkHashAlgorithm(value: unknown): value is ChunkHashAlgorithm {
  return value === 'sha256' || value === 'blake3';
}
