import { collectSecrets, SyncproxyError } from '@syncproxy/core';
import type { ContractContext } from '../contract-context.js';
import { ContractViolation, describeError } from '../contract-violation.js';

/** Bad credentials reject with `auth`, not retryable (retrying can lock the account). */
export async function authStep(ctx: ContractContext): Promise<void> {
  const p = ctx.need(ctx.platform, 'platform');
  const { connector, config } = ctx;
  if (p.badCredentials === undefined) {
    const found = collectSecrets(connector.configSchema, config);
    if (found.length > 0) {
      throw new ContractViolation(
        `the mock platform offers no badCredentials() but the config has ${found.length} secret field(s): a platform with credentials must show bad ones are refused`,
      );
    }
    return;
  }
  const bad = p.badCredentials(config);
  for (const secret of collectSecrets(connector.configSchema, bad)) ctx.secrets.add(secret);
  const error = await ctx.rejection(
    'connect() and verify() with bad credentials',
    async () => {
      const badSession = await connector.connect(bad, ctx.connectorContext());
      try {
        await badSession.verify();
      } finally {
        await badSession.close();
      }
    },
    'bad credentials must be refused with code auth',
  );
  if (!SyncproxyError.hasCode(error, 'auth'))
    throw new ContractViolation(`bad credentials rejected with ${describeError(error)}; expected code auth`);
  if (error.retryable)
    throw new ContractViolation(
      'an auth error must not be retryable: retrying bad credentials can lock the account',
    );
}

/** A throttling platform rejects with `throttled`, retryable. */
export async function throttledStep(ctx: ContractContext): Promise<void> {
  const p = ctx.need(ctx.platform, 'platform');
  if (p.throttle === undefined) {
    const endpoints = ctx.connector.networkRequirements(ctx.config);
    if (endpoints.length > 0) {
      throw new ContractViolation(
        `the mock platform offers no throttle() but the connector needs ${endpoints.length} network endpoint(s): a platform with an API must show throttling is reported`,
      );
    }
    return;
  }
  const stop = p.throttle();
  let error: unknown;
  try {
    error = await ctx.rejection(
      'listHosts() while throttled',
      () => ctx.need(ctx.session, 'session').listHosts(),
      'a throttled call must reject with code throttled',
    );
  } finally {
    stop();
  }
  if (!SyncproxyError.hasCode(error, 'throttled'))
    throw new ContractViolation(`throttling rejected with ${describeError(error)}; expected code throttled`);
  // Retryable, unless the connector's client owned the retries and spent them (then it says how many).
  if (!error.retryable && typeof error.details?.attempts !== 'number')
    throw new ContractViolation(
      'a throttled error must be retryable, unless the client already spent its own retries on it (details.attempts)',
    );
}
