import { createPostgresStateStore } from '@syncproxy/state-postgres';
import { describeSchedulerSuite } from '@syncproxy/testkit';
import { afterAll, beforeAll } from 'vitest';
import { freshSchema, type PostgresServer, startPostgres, stopPostgres } from './fixtures/postgres-server.js';

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await stopPostgres(server);
});

// The suite the memory and file stores pass, unchanged: each test on a schema of its own.
describeSchedulerSuite({
  name: 'postgres',
  createStore: () =>
    createPostgresStateStore({
      connection: { ...server.connection, maxConnections: 4 },
      schema: freshSchema(),
    }),
});
