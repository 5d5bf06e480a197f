import { defineConfig } from 'tsup';
import { packageConfig } from '../../tsup.base.js';

export default defineConfig([
  // shims give the CJS build the import.meta.url that locates the read threads' worker beside it.
  packageConfig({ index: 'src/index.ts' }, { shims: true, clean: ['index.*'] }),
  // The read threads' worker (src/read-threads.ts), loaded by path, as ESM from either build. It
  // bundles the few helpers it takes from @syncproxy/core (errors, abort listeners; core is side-effect
  // free, so nothing else comes along): importing all of core cost a thread 110-150 ms to start.
  packageConfig(
    { 'read-worker': 'src/read-worker.ts' },
    { format: ['esm'], dts: false, clean: ['read-worker.*'], noExternal: ['@syncproxy/core'] },
  ),
]);
