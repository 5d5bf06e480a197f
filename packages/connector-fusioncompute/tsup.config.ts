import { defineConfig } from 'tsup';
import { packageConfig } from '../../tsup.base.js';

export default defineConfig(
  packageConfig(
    { index: 'src/index.ts', mock: 'src/mock/index.ts' },
    // import.meta.url in the CJS build too: ./mock resolves its optional peer from where it is installed.
    { shims: true },
  ),
);
