import { createProxyScheduler, type ProxyScheduler, type StateStore } from '@syncproxy/core';

export interface AssignRun {
  assigns: number;
  seconds: number;
  /** Milliseconds from the call to its answer, per assign. */
  latenciesMs: number[];
}

/** Registers `proxies` proxies bound to `bench` with `slots` mount slots each (concurrently: the stores batch it). */
export async function setUpProxies(store: StateStore, proxies: number, slots: number): Promise<void> {
  const scheduler = createProxyScheduler({ store, heartbeatTimeoutMs: 86_400_000 });
  const ids = Array.from({ length: proxies }, (_, i) => `p${String(i).padStart(5, '0')}`);
  await Promise.all(ids.map((id) => scheduler.registerProxy({ id, settings: { maxMountedDisks: slots } })));
  await Promise.all(ids.map((id) => scheduler.bind(id, 'bench')));
  await scheduler.close();
}

/** `count` assigns of one mount slot each, at most `inFlight` at a time, each timed from call to answer. */
export async function runAssigns(
  scheduler: ProxyScheduler,
  options: { count: number; inFlight: number; prefix: string },
): Promise<AssignRun> {
  const latenciesMs: number[] = [];
  let next = 0;
  const started = performance.now();
  const lane = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= options.count) return;
      const t0 = performance.now();
      await scheduler.assign({ id: `${options.prefix}${i}`, platformId: 'bench', mountSlots: 1 });
      latenciesMs.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: options.inFlight }, lane));
  return { assigns: options.count, seconds: (performance.now() - started) / 1000, latenciesMs };
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}
