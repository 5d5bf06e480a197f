import {
  createProxyScheduler,
  type ProxyScheduler,
  type ProxySchedulerOptions,
  type StateStore,
  SyncproxyError,
} from '@syncproxy/core';

/** What a store under test provides to the shared scheduler suite. */
export interface SchedulerSuiteOptions {
  /** Names the store in test titles (`memory`, `file`, `postgres`). */
  name: string;
  /** A new, empty store for one test. The suite closes it after the test. */
  createStore(): StateStore | Promise<StateStore>;
}

/** The one thing every test of the suite needs: a scheduler on a fresh store, closed after the test. */
export interface SchedulerSuiteContext {
  newScheduler(options?: Omit<ProxySchedulerOptions, 'store'>): Promise<ProxyScheduler>;
}

export async function rejection(promise: Promise<unknown>): Promise<SyncproxyError> {
  try {
    await promise;
  } catch (error) {
    if (SyncproxyError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

/** Makes schedulers on fresh stores and remembers them, so `closeAll` ends them after each test. */
export class SuiteResources implements SchedulerSuiteContext {
  readonly #options: SchedulerSuiteOptions;
  #open: { scheduler: ProxyScheduler; store: StateStore }[] = [];

  constructor(options: SchedulerSuiteOptions) {
    this.#options = options;
  }

  async newScheduler(options: Omit<ProxySchedulerOptions, 'store'> = {}): Promise<ProxyScheduler> {
    const store = await this.#options.createStore();
    let scheduler: ProxyScheduler;
    try {
      scheduler = createProxyScheduler({ ...options, store });
    } catch (error) {
      await store.close();
      throw error;
    }
    this.#open.push({ scheduler, store });
    return scheduler;
  }

  async closeAll(): Promise<void> {
    const open = this.#open.splice(0);
    for (const { scheduler } of open) await scheduler.close();
    for (const { store } of open) await store.close();
  }
}
