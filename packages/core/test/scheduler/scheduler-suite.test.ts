// The shared scheduler suite: its tests and their assertions live in the testkit's describeSchedulerSuite.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFileStateStore, createMemoryStateStore } from '@syncproxy/core';
import { describeSchedulerSuite } from '@syncproxy/testkit/vitest';
import { afterAll, beforeAll } from 'vitest';

describeSchedulerSuite({ name: 'memory', createStore: () => createMemoryStateStore() });

let dir: string;
let made = 0;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'syncproxy-suite-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
describeSchedulerSuite({
  name: 'file',
  createStore: () => createFileStateStore({ path: join(dir, `state-${++made}.json`) }),
});
