import { defineConfig } from 'tsup';
import { packageConfig } from '../../tsup.base.js';

// src/bin.ts starts with `#!/usr/bin/env node`; esbuild keeps an entry's hashbang, so dist/bin.js is executable as is.
export default defineConfig(packageConfig({ index: 'src/index.ts', bin: 'src/bin.ts' }));
