import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createFileStateStore,
  createManualClock,
  createMemoryStateStore,
  createProxyScheduler,
  type ProxyScheduler,
  type StateStore,
  SyncproxyError,
  stateToJson,
} from '@syncproxy/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SCRIPT_TIMEOUT_MS, scriptedOp, timeAfter } from './fixtures/scripted-ops.js';

const here = dirname(fileURLToPath(import.meta.url));
const corePackage = join(here, '..', '..');
const writerScript = join(here, 'fixtures', 'state-writer.ts');

let dir: string;
let path: string;
const stores: StateStore[] = [];
const schedulers: ProxyScheduler[] = [];
let child: ChildProcess | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'syncproxy-file-store-'));
  path = join(dir, 'scheduler.json');
});
afterEach(async () => {
  if (child && child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
    process.kill(child.pid, 'SIGKILL');
    await new Promise((resolve) => child?.once('close', resolve));
  }
  child = undefined;
  for (const s of schedulers.splice(0)) await s.close();
  for (const s of stores.splice(0)) await s.close();
  await rm(dir, { recursive: true, force: true });
});

function fileStore(options: { lockTimeoutMs?: number } = {}): StateStore {
  const store = createFileStateStore({ path, ...options });
  stores.push(store);
  return store;
}

function scheduler(store: StateStore, now: () => number): ProxyScheduler {
  const s = createProxyScheduler({ store, clock: { now }, heartbeatTimeoutMs: SCRIPT_TIMEOUT_MS });
  schedulers.push(s);
  return s;
}

/** What a scheduler shows: proxies (with load and health), assignments, stranded tasks. */
async function seenBy(s: ProxyScheduler): Promise<unknown> {
  return {
    proxies: await s.listProxies(),
    assignments: await s.listAssignments(),
    stranded: await s.listStranded(),
  };
}

/** The state after the first `ops` scripted ops, replayed in memory. */
async function replay(ops: number): Promise<{ json: unknown; seen: unknown }> {
  const store = createMemoryStateStore();
  let now = 0;
  const s = createProxyScheduler({ store, clock: { now: () => now }, heartbeatTimeoutMs: SCRIPT_TIMEOUT_MS });
  for (let i = 0; i < ops; i++) {
    now = timeAfter(i);
    await scriptedOp(s, i);
  }
  const json = JSON.parse(await store.read(stateToJson));
  const seen = await seenBy(s);
  await s.close();
  return { json, seen };
}

/** Starts the writer child; resolves with the last "committed <n>" once `until` says so. */
function startWriter(args: string[], until: (line: string) => boolean): Promise<{ lines: string[] }> {
  const spawned = spawn(process.execPath, ['--import', 'tsx', writerScript, path, ...args], {
    cwd: corePackage,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child = spawned;
  const lines: string[] = [];
  let stderr = '';
  spawned.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    let buffered = '';
    spawned.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let newline = buffered.indexOf('\n');
      while (newline !== -1) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        lines.push(line);
        if (until(line)) resolve({ lines });
        newline = buffered.indexOf('\n');
      }
    });
    spawned.once('exit', (code, signal) => {
      if (signal !== 'SIGKILL')
        reject(new Error(`writer exited early (code ${code}, signal ${signal}): ${stderr}`));
    });
  });
}

async function killWriter(): Promise<void> {
  const running = child;
  if (!running?.pid) throw new Error('no writer running');
  const closed = new Promise((resolve) => running.once('close', resolve));
  process.kill(running.pid, 'SIGKILL');
  await closed;
}

function committed(lines: string[]): number {
  const last = lines.filter((l) => l.startsWith('committed ')).at(-1);
  return last === undefined ? 0 : Number(last.slice('committed '.length));
}

describe('file state store', () => {
  it('a new scheduler on the same file sees the same proxies, bindings and assignments', async () => {
    const clock = createManualClock(5_000);
    const first = createProxyScheduler({ store: fileStore(), clock, heartbeatTimeoutMs: 60_000 });
    schedulers.push(first);
    await first.registerProxy({
      id: 'p1',
      name: 'proxy one',
      settings: { maxMountedDisks: 200 },
      force: true,
    });
    await first.registerProxy({ id: 'p2', settings: { httpTimeoutSec: 1200 } });
    await first.bind('p1', 'oci-fra');
    await first.bind('p1', 'aws-sg');
    await first.bind('p2', 'oci-fra');
    await first.assign({ id: 't1', platformId: 'oci-fra', mountSlots: 2, checkpointRef: 'ckpt/t1' });
    await first.assign({ id: 't2', platformId: 'oci-fra', mountSlots: 1 });
    await first.assign({ id: 't3', platformId: 'aws-sg', mountSlots: 0 });
    const before = await seenBy(first);
    await first.close();

    const second = createProxyScheduler({ store: fileStore(), clock, heartbeatTimeoutMs: 60_000 });
    schedulers.push(second);
    expect(await seenBy(second)).toEqual(before);
    expect((await second.getProxy('p1')).load).toEqual({ tasks: 2, mountSlotsUsed: 2, mountSlotsFree: 198 });
    expect((await second.getProxy('p1')).warnings.map((w) => w.code)).toEqual([
      'mount-slots-above-recommended',
    ]);
    // No temporary file or lock is left behind.
    expect((await readdir(dir)).sort()).toEqual(['scheduler.json']);
  });

  it('a scheduler killed after committing sees its exact state again in a new scheduler on the same file', async () => {
    const { lines } = await startWriter(['stop', '120'], (line) => line === 'ready');
    await killWriter();
    expect(committed(lines)).toBe(120);
    const expected = await replay(120);
    const store = fileStore();
    expect(JSON.parse(await store.read(stateToJson))).toEqual(expected.json);
    expect(await seenBy(scheduler(store, () => timeAfter(119)))).toEqual(expected.seen);
    // The script includes a failover, and the state shows it.
    const assignments = (expected.json as { assignments: { failedOverFrom?: string }[] }).assignments;
    expect(assignments.some((a) => a.failedOverFrom === 'p3')).toBe(true);
  });

  it('a scheduler killed in the middle of its writes leaves the state of its last or next commit, never a mix', async () => {
    const { lines } = await startWriter(['run'], (line) => line === 'committed 150');
    await killWriter();
    const k = committed(lines);
    expect(k).toBeGreaterThanOrEqual(150);
    const store = fileStore();
    const onFile = JSON.parse(await store.read(stateToJson));
    const candidates = [await replay(k), await replay(k + 1)].map((r) => r.json);
    expect(candidates).toContainEqual(onFile);
    // The killed writer's lock and temporary file do not block a new scheduler.
    const next = scheduler(store, () => timeAfter(k + 1));
    await next.registerProxy({ id: 'p9' });
    expect((await readdir(dir)).sort()).toEqual(['scheduler.json']);
  });

  it('refuses a file that is not a scheduler state, saying which and why', async () => {
    await writeFile(path, '{"format":"something-else"}');
    const s = scheduler(fileStore(), () => 0);
    const error = await s.listProxies().catch((e: unknown) => e);
    expect(SyncproxyError.hasCode(error, 'integrity')).toBe(true);
    expect((error as SyncproxyError).message).toBe(
      `scheduler state ${path} is not valid: format: Invalid input: expected "syncproxy-scheduler-state" (restore it from a backup, or move it away to start empty)`,
    );
    await writeFile(path, '{"format":');
    const truncated = await s.listProxies().catch((e: unknown) => e);
    expect((truncated as SyncproxyError).code).toBe('integrity');
  });

  it('refuses a state whose assignments overbook a proxy', async () => {
    const s = scheduler(fileStore(), () => 0);
    await s.registerProxy({ id: 'p1', settings: { maxMountedDisks: 2 } });
    await s.bind('p1', 'oci-fra');
    await s.assign({ id: 't1', platformId: 'oci-fra', mountSlots: 2 });
    const text = await readFile(path, 'utf8');
    await writeFile(path, text.replace('"maxMountedDisks": 2', '"maxMountedDisks": 1'));
    const error = (await s.listProxies().catch((e: unknown) => e)) as SyncproxyError;
    expect([error.code, error.message]).toEqual([
      'integrity',
      `scheduler state ${path} is not valid: proxy p1 holds more mount slots than its maximum 1 (restore it from a backup, or move it away to start empty)`,
    ]);
  });

  it('takes over the lock of a process that no longer runs', async () => {
    const dead = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    await new Promise((resolve) => dead.once('close', resolve));
    await writeFile(`${path}.lock`, `${dead.pid}\n`);
    await writeFile(`${path}.tmp-${dead.pid}-0badf00d`, '{"half":');
    const s = scheduler(fileStore(), () => 0);
    await s.registerProxy({ id: 'p1' });
    expect((await readdir(dir)).sort()).toEqual(['scheduler.json']);
  });

  it('times out with a typed error while a live process holds the lock', async () => {
    await writeFile(`${path}.lock`, `${process.pid}\n`);
    const s = scheduler(fileStore({ lockTimeoutMs: 50 }), () => 0);
    const error = (await s.registerProxy({ id: 'p1' }).catch((e: unknown) => e)) as SyncproxyError;
    expect([error.code, error.retryable, error.message]).toEqual([
      'timeout',
      true,
      `lock ${path}.lock is still held by process ${process.pid} after 50 ms (another scheduler is using the state; if that process hangs, stop it)`,
    ]);
  });
});

describe('closed file state store', () => {
  it('refuses reads and updates after close instead of leaving them pending', async () => {
    const dir2 = await mkdtemp(join(tmpdir(), 'syncproxy-file-store-'));
    const store = createFileStateStore({ path: join(dir2, 'state.json') });
    await store.close();
    const update = await store.update(() => ({ result: 1, changed: false })).catch((e: unknown) => e);
    const read = await store.read(() => 1).catch((e: unknown) => e);
    for (const error of [update, read]) {
      expect([(error as SyncproxyError).code, (error as SyncproxyError).message]).toEqual([
        'aborted',
        `file state store ${join(dir2, 'state.json')} is closed`,
      ]);
    }
    await rm(dir2, { recursive: true, force: true });
  });
});
