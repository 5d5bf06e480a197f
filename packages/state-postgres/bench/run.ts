// `pnpm bench` in packages/state-postgres: assign throughput and p99 on the memory and PostgreSQL stores,
// at 200 and 10,000 proxies, from 1 process and from 4 processes on one database. Starts its own
// PostgreSQL (as the tests do) and stops it at the end. BENCH_ASSIGNS (10,000), BENCH_IN_FLIGHT (32).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createMemoryStateStore, createProxyScheduler, type StateStore } from '@syncproxy/core';
import { createPostgresStateStore } from '@syncproxy/state-postgres';
import pg from 'pg';
import { statements } from '../src/sql.js';
import { freshSchema, startPostgres, stopPostgres } from '../test/fixtures/postgres-server.js';
import { type AssignRun, percentile, runAssigns, setUpProxies } from './assigns.js';

const ASSIGNS = Number(process.env.BENCH_ASSIGNS ?? 10_000);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 32);

interface Row {
  store: string;
  proxies: number;
  processes: number;
  inFlight: number;
  assigns: number;
  seconds: number;
  perSecond: number;
  meanUs: number;
  p50Ms: number;
  p99Ms: number;
}

function row(store: string, proxies: number, processes: number, inFlight: number, runs: AssignRun[]): Row {
  const latencies = runs.flatMap((r) => r.latenciesMs);
  const assigns = runs.reduce((n, r) => n + r.assigns, 0);
  const seconds = Math.max(...runs.map((r) => r.seconds));
  return {
    store,
    proxies,
    processes,
    inFlight,
    assigns,
    seconds: round(seconds, 3),
    perSecond: Math.round(assigns / seconds),
    meanUs: round((seconds * 1e6) / assigns, 1),
    p50Ms: round(percentile(latencies, 50), 3),
    p99Ms: round(percentile(latencies, 99), 3),
  };
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

async function oneProcess(name: string, store: StateStore, proxies: number, inFlight: number): Promise<Row> {
  // Slots for exactly ASSIGNS tasks, so the last assign still finds room and none is refused.
  await setUpProxies(store, proxies, Math.ceil(ASSIGNS / proxies));
  const scheduler = createProxyScheduler({ store, heartbeatTimeoutMs: 86_400_000 });
  const run = await runAssigns(scheduler, { count: ASSIGNS, inFlight, prefix: 't' });
  await scheduler.close();
  await store.close();
  return row(name, proxies, 1, inFlight, [run]);
}

async function fourProcesses(connection: object, proxies: number): Promise<Row> {
  const schema = freshSchema('bench4');
  const setup = await createPostgresStateStore({ connection, schema });
  await setUpProxies(setup, proxies, Math.ceil(ASSIGNS / proxies));
  await setup.close();
  const worker = fileURLToPath(new URL('./worker.ts', import.meta.url));
  const cwd = fileURLToPath(new URL('../', import.meta.url));
  const children = Array.from({ length: 4 }, (_, i) =>
    spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        worker,
        JSON.stringify({ connection, schema, count: ASSIGNS / 4, inFlight: IN_FLIGHT, prefix: `w${i}-` }),
      ],
      { cwd, stdio: ['pipe', 'pipe', 'inherit'] },
    ),
  );
  const outputs = children.map(
    (child) =>
      new Promise<AssignRun>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d) => {
          out += d;
        });
        child.once('exit', (code) =>
          code === 0
            ? resolve(JSON.parse(out) as AssignRun)
            : reject(new Error(`bench worker exited ${code}`)),
        );
      }),
  );
  // Let each open its store, then start them together.
  await new Promise((r) => setTimeout(r, 3_000));
  for (const child of children) child.stdin.write('go\n');
  return row('postgres', proxies, 4, IN_FLIGHT, await Promise.all(outputs));
}

const server = await startPostgres();
const rows: Row[] = [];
try {
  const connection = { ...server.connection, maxConnections: 4 };
  for (const proxies of [200, 10_000]) {
    rows.push(await oneProcess('memory', createMemoryStateStore(), proxies, 1));
    rows.push(await oneProcess('memory', createMemoryStateStore(), proxies, IN_FLIGHT));
    const pgStore = () => createPostgresStateStore({ connection, schema: freshSchema('bench') });
    rows.push(await oneProcess('postgres', await pgStore(), proxies, 1));
    rows.push(await oneProcess('postgres', await pgStore(), proxies, IN_FLIGHT));
    rows.push(await fourProcesses(connection, proxies));
  }
  console.table(rows);
  for (const [store, inFlight] of [
    ['memory', 1],
    ['postgres', 1],
    ['postgres', IN_FLIGHT],
  ] as const) {
    const at = (p: number) =>
      rows.find((r) => r.store === store && r.proxies === p && r.processes === 1 && r.inFlight === inFlight);
    const small = at(200);
    const large = at(10_000);
    if (small && large) {
      console.log(
        `${store}, ${inFlight} in flight: per-assign cost at 10,000 proxies is ${round(large.meanUs / small.meanUs, 2)}x the cost at 200 (${large.meanUs} vs ${small.meanUs} µs)`,
      );
    }
  }
  // The query a node runs to catch up with the others, on the last 10,000-proxy schema: index scans only.
  const client = new pg.Client(server.connection);
  await client.connect();
  const schemas = await client.query<{ nspname: string }>(
    `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bench4_%' ORDER BY oid DESC LIMIT 1`,
  );
  const schema = schemas.rows[0]?.nspname;
  if (schema) {
    await client.query(`ANALYZE ${schema}.proxies; ANALYZE ${schema}.assignments; ANALYZE ${schema}.removed`);
    const v = await client.query<{ version: string }>(`SELECT version FROM ${schema}.scheduler_meta`);
    const plan = await client.query(`EXPLAIN ${statements(schema).delta}`, [Number(v.rows[0]?.version) - 1]);
    console.log(`\nEXPLAIN of the catch-up query (${schema}, changes since the last version):`);
    for (const line of plan.rows) console.log(`  ${line['QUERY PLAN']}`);
  }
  await client.end();
} finally {
  await stopPostgres(server);
}
