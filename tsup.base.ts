import type { Options } from 'tsup';

/**
 * The one tsup configuration every package extends. tsup is in maintenance and
 * points to tsdown (which needs Node 22.18+ to build): keeping every package
 * behind this file makes that switch a one-file change.
 */
export function packageConfig(entry: Record<string, string>, overrides: Options = {}): Options {
  return {
    entry,
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node22',
    platform: 'node',
    splitting: false,
    treeshake: true,
    ...overrides,
  };
}
