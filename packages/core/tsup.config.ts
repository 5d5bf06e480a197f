import { defineConfig } from 'tsup';
import { packageConfig } from '../../tsup.base.js';

// p-limit is ESM-only; bundling it keeps the CJS build loadable with require().
export default defineConfig(
  packageConfig({ index: 'src/index.ts' }, { noExternal: ['p-limit', 'yocto-queue'] }),
);
