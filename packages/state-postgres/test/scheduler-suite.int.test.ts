// The shared scheduler suite: its tests and their assertions live in the testkit's describeSchedulerSuite.
import { createPostgresStateStore } from '@syncproxy/state-postgres';
import { describeSchedulerSuite } from '@syncproxy/testkit/vitest';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { freshSchema, type PostgresServer, startPostgres, stopPostgres } from './fixtures/postgres-server.js';

let server: PostgresServer;
let pool: pg.Pool;
beforeAll(async () => {
  server = await startPostgres();
  // One pool for every test's store, as a product passes its own: no new connection per test.
  pool = new pg.Pool({ ...server.connection, max: 8 });
  pool.on('error', () => undefined);
});
afterAll(async () => {
  await pool.end();
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
