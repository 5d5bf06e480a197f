import {
  checkNetwork,
  type NetworkCheckResult,
  type PlatformStatus,
  toSyncproxyError,
} from '@syncproxy/core';
import { type CommandContext, connectorFor, connectorLogger, print, printJson } from '../command-context.js';
import { loadConfigFile } from '../config-file.js';
import { ExitCode } from '../exit-code.js';
import { renderTable } from '../table.js';
import type { PlatformOptions } from './hosts.js';

export interface CheckOptions extends PlatformOptions {
  /** Per endpoint (default 5000). */
  timeoutMs?: number;
}

type CredentialCheck =
  | { state: 'ok'; status: PlatformStatus }
  | { state: 'failed'; error: ReturnType<ReturnType<typeof toSyncproxyError>['toJSON']> };

/**
 * `syncproxy check`: the config against the connector's form, the network
 * preflight (every endpoint the proxy must reach), the credentials and the
 * host count, as a product shows them after "add platform". Every check runs and is reported, also
 * when an endpoint is unreachable (the credential check then says what failed on its own path).
 * Exit 0 only when every endpoint is reachable and the platform's status is normal.
 */
export async function checkPlatform(context: CommandContext, options: CheckOptions): Promise<ExitCode> {
  const connector = connectorFor(context, options.platform);
  const { input, config, path } = await loadConfigFile(connector, options.config, context.cwd, context.io);
  const network = await checkNetwork(connector.networkRequirements(config), {
    timeoutMs: options.timeoutMs ?? 5000,
    ...(context.io.signal ? { signal: context.io.signal } : {}),
  });
  const unreachable = network.filter((row) => !row.reachable);
  let credentials: CredentialCheck;
  try {
    const session = await connector.connect(input, {
      logger: connectorLogger(context, options),
      ...(context.io.signal ? { signal: context.io.signal } : {}),
    });
    try {
      credentials = { state: 'ok', status: await session.verify() };
    } finally {
      await session.close().catch(() => {});
    }
  } catch (error) {
    credentials = { state: 'failed', error: toSyncproxyError(error).toJSON() };
  }
  const ok = unreachable.length === 0 && credentials.state === 'ok' && credentials.status.status === 'normal';
  if (options.json) {
    printJson(context, {
      ok,
      platform: connector.id,
      config: { path, valid: true },
      network,
      credentials,
      hostCount: credentials.state === 'ok' ? credentials.status.hostCount : undefined,
    });
    return ok ? ExitCode.ok : ExitCode.failure;
  }
  print(context, `config: valid (${connector.displayName}, ${path})`);
  print(context, '\nnetwork preflight');
  print(context, networkTable(network));
  print(context, credentialLine(credentials));
  if (credentials.state === 'ok') print(context, `hosts: ${credentials.status.hostCount}`);
  print(context, ok ? '\ncheck passed' : '\ncheck FAILED');
  return ok ? ExitCode.ok : ExitCode.failure;
}

function networkTable(rows: NetworkCheckResult[]): string {
  if (rows.length === 0) return '(no endpoint to reach)\n';
  return renderTable(rows, [
    { header: 'ENDPOINT', value: (r) => r.host + (r.dialled ? ` (${r.dialled})` : '') },
    { header: 'PORT', value: (r) => String(r.port), align: 'right' },
    { header: 'PURPOSE', value: (r) => r.purpose },
    { header: 'REACHABLE', value: (r) => (r.reachable ? 'yes' : `NO (${r.errorCode ?? 'error'})`) },
    { header: 'LATENCY', value: (r) => `${r.latencyMs.toFixed(1)} ms`, align: 'right' },
  ]);
}

function credentialLine(check: CredentialCheck): string {
  if (check.state === 'failed') return `credentials: FAILED (${check.error.code}): ${check.error.message}`;
  const s = check.status;
  return `credentials: ok, platform status ${s.status}${s.platformVersion ? ` (${s.platformVersion})` : ''}${s.message ? `: ${s.message}` : ''}`;
}
