import { SyncproxyError } from '@syncproxy/core';

/** An error the suite raises when a connector breaks the contract. */
export class ContractViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ContractViolation';
  }
}

/** An error as a violation message shows it: its code and message, or what it is when not a SyncproxyError. */
export function describeError(error: unknown): string {
  if (SyncproxyError.isInstance(error))
    return `code ${error.code}${error.retryable ? ' (retryable)' : ''}: ${JSON.stringify(error.message)}`;
  if (error instanceof Error)
    return `a ${error.name} that is not a SyncproxyError: ${JSON.stringify(error.message)}`;
  return `a non-error value ${JSON.stringify(String(error))}`;
}
