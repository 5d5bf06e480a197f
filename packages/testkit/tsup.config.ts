import { defineConfig } from 'tsup';
import { packageConfig } from '../../tsup.base.js';

// Two entries: the contract suite (imports vitest) and the mock kit (does not),
// so a connector's `./mock` can ship without a test runner.
export default defineConfig(packageConfig({ index: 'src/index.ts', mock: 'src/mock/index.ts' }));
