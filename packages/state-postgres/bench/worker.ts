// One bench process of several on one database: `node --import tsx worker.ts <json>`; prints its run as JSON.
import { createProxyScheduler } from '@syncproxy/core';
import { createPostgresStateStore } from '@syncproxy/state-postgres';
import { runAssigns } from './assigns.js';

const { connection, schema, count, inFlight, prefix } = JSON.parse(process.argv[2] ?? '{}');
const store = await createPostgresStateStore({ connection, schema });
const scheduler = createProxyScheduler({ store, heartbeatTimeoutMs: 86_400_000 });
// All workers start together: the parent releases them with a line on stdin.
await new Promise((resolve) => process.stdin.once('data', resolve));
const run = await runAssigns(scheduler, { count, inFlight, prefix });
await scheduler.close();
await store.close();
process.stdout.write(`${JSON.stringify(run)}\n`);
process.exit(0);
