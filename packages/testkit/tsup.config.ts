import { defineConfig } from 'tsup';
import { packageConfig } from '../../tsup.base.js';

// Three entries: the contract suite and the mock kit (neither imports vitest), and the vitest
// runner of the suite, so a connector's `./mock` and checkConnectorContract need no test runner.
export default defineConfig(
  packageConfig({ index: 'src/index.ts', mock: 'src/mock/index.ts', vitest: 'src/vitest/index.ts' }),
);
