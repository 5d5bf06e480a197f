import { SyncproxyError } from '@syncproxy/core';

/** The SyncproxyError a promise rejects with; anything else (or no rejection) fails the test. */
export async function caught(promise: Promise<unknown>): Promise<SyncproxyError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!SyncproxyError.isInstance(error)) throw new Error(`expected a SyncproxyError, got ${String(error)}`);
  return error;
}
