// Proxy scheduler benchmark: assigns across 200 proxies bound to 20 platforms.
// Run: node --import tsx bench/scheduler.bench.ts   (from packages/core)
// Prints one table; every figure is the median of REPEAT runs.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createFileStateStore,
  createMemoryStateStore,
  createProxyScheduler,
  type ProxyScheduler,
  type StateStore,
  SyncproxyError,
} from '../src/index.js';

const PROXIES = 200;
const PLATFORMS = 20;
const REPEAT = Number(process.env.BENCH_REPEAT ?? 5);
// Platforms 0-9 mount disks on the proxy (Oracle, HCS-like); 10-19 read through APIs (AWS, VMware NBD, Ceph-like).
const slotsFor = (platform: number): number => (platform < 10 ? 1 : 0);

interface RunResult {
  totalMs: number;
  /** Per-assign latencies in ms (sequential runs only). */
  latencies: number[];
  placed: number;
  refused: number;
}

async function build(store: StateStore): Promise<ProxyScheduler> {
  const scheduler = createProxyScheduler({ store, heartbeatTimeoutMs: 3_600_000 });
  for (let i = 0; i < PROXIES; i++) {
    const id = `proxy-${String(i).padStart(3, '0')}`;
    await scheduler.registerProxy({ id });
    // Two platforms per proxy, 20 proxies per platform.
    await scheduler.bind(id, `platform-${i % PLATFORMS}`);
    await scheduler.bind(id, `platform-${(i + 7) % PLATFORMS}`);
  }
  return scheduler;
}

const taskFor = (i: number) => {
  const platform = i % PLATFORMS;
  return { id: `task-${i}`, platformId: `platform-${platform}`, mountSlots: slotsFor(platform) };
};

async function sequential(scheduler: ProxyScheduler, count: number): Promise<RunResult> {
  const latencies: number[] = [];
  let placed = 0;
  let refused = 0;
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    try {
      await scheduler.assign(taskFor(i));
      placed += 1;
    } catch (error) {
      if (!SyncproxyError.hasCode(error, 'no-capacity')) throw error;
      refused += 1;
    }
    latencies.push(performance.now() - t0);
  }
  return { totalMs: performance.now() - start, latencies, placed, refused };
}

async function concurrent(scheduler: ProxyScheduler, count: number): Promise<RunResult> {
  const start = performance.now();
  const results = await Promise.allSettled(
    Array.from({ length: count }, (_, i) => scheduler.assign(taskFor(i))),
  );
  const totalMs = performance.now() - start;
  const placed = results.filter((r) => r.status === 'fulfilled').length;
  return { totalMs, latencies: [], placed, refused: count - placed };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

interface Scenario {
  name: string;
  store: 'memory' | 'file';
  mode: 'sequential' | 'concurrent';
  assigns: number;
}

const scenarios: Scenario[] = [
  { name: '10,000 assigns, one at a time', store: 'memory', mode: 'sequential', assigns: 10_000 },
  { name: '10,000 assigns, all at once', store: 'memory', mode: 'concurrent', assigns: 10_000 },
  { name: '1,000 assigns, one at a time', store: 'file', mode: 'sequential', assigns: 1_000 },
  { name: '1,000 assigns, all at once', store: 'file', mode: 'concurrent', assigns: 1_000 },
];

async function runOnce(scenario: Scenario): Promise<RunResult> {
  if (scenario.store === 'memory') {
    const scheduler = await build(createMemoryStateStore());
    const result = await (scenario.mode === 'sequential' ? sequential : concurrent)(
      scheduler,
      scenario.assigns,
    );
    await scheduler.close();
    return result;
  }
  const dir = await mkdtemp(join(tmpdir(), 'syncproxy-bench-'));
  const store = createFileStateStore({ path: join(dir, 'state.json') });
  try {
    const scheduler = await build(store);
    const result = await (scenario.mode === 'sequential' ? sequential : concurrent)(
      scheduler,
      scenario.assigns,
    );
    await scheduler.close();
    return result;
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const rows: Record<string, string | number>[] = [];
for (const scenario of scenarios) {
  const runs: RunResult[] = [];
  for (let r = 0; r < REPEAT; r++) runs.push(await runOnce(scenario));
  const p50s = runs.map((run) =>
    percentile(
      [...run.latencies].sort((a, b) => a - b),
      50,
    ),
  );
  const p99s = runs.map((run) =>
    percentile(
      [...run.latencies].sort((a, b) => a - b),
      99,
    ),
  );
  const totals = runs.map((run) => run.totalMs);
  rows.push({
    store: scenario.store,
    scenario: scenario.name,
    'total ms (median)': median(totals).toFixed(1),
    'total ms (min..max)': `${Math.min(...totals).toFixed(1)}..${Math.max(...totals).toFixed(1)}`,
    'assigns/s': Math.round(scenario.assigns / (median(totals) / 1000)),
    'p50 µs/assign': scenario.mode === 'sequential' ? (median(p50s) * 1000).toFixed(1) : '-',
    'p99 µs/assign': scenario.mode === 'sequential' ? (median(p99s) * 1000).toFixed(1) : '-',
    placed: runs[0]!.placed,
    refused: runs[0]!.refused,
  });
}

process.stdout.write(
  `proxy scheduler: ${PROXIES} proxies x 50 mount slots, ${PLATFORMS} platforms (2 per proxy), median of ${REPEAT} runs, Node ${process.version}\n`,
);
console.table(rows);
