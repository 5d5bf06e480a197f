import type { SchedulerState, StateStore, StateUpdate } from '../contracts/scheduler.js';
import { SyncproxyError } from '../errors/syncproxy-error.js';
import { emptyState } from './state.js';

/**
 * A store that keeps the state in this process only: for one control-plane
 * process that can lose its state on restart, and for tests. Mutations run
 * synchronously, so concurrent callers are serialised by the event loop.
 */
export function createMemoryStateStore(): StateStore {
  const state = emptyState();
  let closed = false;
  const assertOpen = (): void => {
    if (closed)
      throw new SyncproxyError('memory state store is closed', { code: 'aborted', retryable: false });
  };
  return {
    kind: 'memory',
    async read<T>(view: (state: Readonly<SchedulerState>) => T): Promise<T> {
      assertOpen();
      return view(state);
    },
    async update<T>(mutate: (state: SchedulerState) => StateUpdate<T>): Promise<T> {
      assertOpen();
      return mutate(state).result;
    },
    async close(): Promise<void> {
      closed = true;
    },
  };
}
