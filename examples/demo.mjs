#!/usr/bin/env node
// The Syncproxy demo is `syncproxy demo` (packages/cli): a mock AWS on loopback, a sample VM with
// sparse disks, a full then an incremental sync, each image verified by SHA-256. This file shows
// the same command embedded in a program: runCli(argv, io) resolves with the exit code.
import { processIo, runCli } from '@syncproxy/cli';

const controller = new AbortController();
process.on('SIGINT', () => controller.abort());
const target = process.argv[2];
process.exitCode = await runCli(
  ['demo', ...(target ? ['--target', target] : [])],
  processIo(controller.signal),
);
