import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const packages = fileURLToPath(new URL('./packages/', import.meta.url));

// Tests run against the sources: `@syncproxy/<name>` resolves to packages/<name>/src.
// The built packages are checked separately (publint, attw, the pack test).
const alias = [
  { find: /^@syncproxy\/([a-z0-9-]+)\/(mock|vitest)$/, replacement: `${packages}$1/src/$2/index.ts` },
  { find: /^@syncproxy\/([a-z0-9-]+)$/, replacement: `${packages}$1/src/index.ts` },
];

export default defineConfig({
  resolve: { alias },
  test: {
    projects: [
      {
        resolve: { alias },
        test: {
          name: 'unit',
          include: ['packages/*/test/**/*.test.ts'],
          exclude: ['**/*.int.test.ts', '**/node_modules/**'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        resolve: { alias },
        test: {
          name: 'integration',
          include: ['packages/*/test/**/*.int.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
