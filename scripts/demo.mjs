#!/usr/bin/env node
// The README's demo command, after the CLI's build: `syncproxy demo`, on Node 22 or later
// (fetched from the npm registry when this Node is older; see node-22.mjs).
import { runNode22 } from './node-22.mjs';

await runNode22();
process.argv.splice(2, 0, 'demo');
await import('../packages/cli/dist/bin.js');
