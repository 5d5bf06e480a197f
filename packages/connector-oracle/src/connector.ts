import { createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  type Clock,
  createDispatcher,
  defineConnector,
  type NetworkRequirement,
  type RetryOptions,
  type SourceConnector,
  SyncproxyError,
  systemClock,
} from '@syncproxy/core';
import { OracleClient } from './client.js';
import { endpointFor, type OracleConfig, oracleConfigSchema } from './config.js';
import { IscsiadmInitiator } from './iscsi-initiator.js';
import type { LifecycleWaitOptions } from './lifecycle-wait.js';
import { SgLbaStatusScanner } from './mapped-range-scanner.js';
import { OracleSession, type ProxyHostTools } from './session.js';

/** Kept in step with package.json by the release. */
const VERSION = '0.1.0';

/** Settings of the connector itself (not of a platform): timing, retries, proxy-side tools. */
export interface OracleConnectorOptions {
  /** Time source for lifecycle waits and backoff. Default: the system clock. */
  clock?: Clock;
  /** Retries of throttled, 5xx and network-failed calls. */
  retry?: RetryOptions;
  /** How backups, volumes and attachments are polled through their lifecycle. */
  wait?: LifecycleWaitOptions;
  /**
   * The proxy-side tools of the data path. Default: `iscsiadm` and
   * `sg_get_lba_status`; the mock brings its own.
   */
  tools?: ProxyHostTools;
  /** The engine's chunk size, for the delta block size when no previous manifest says it. Default 4 MiB. */
  chunkSizeBytes?: number;
}

/** The endpoints a proxy must reach: Core Services and Identity, on 443 (or the override's port). */
export function oracleNetworkRequirements(
  config: Pick<OracleConfig, 'region' | 'endpoints'>,
): NetworkRequirement[] {
  return (['core', 'identity'] as const).map((service) => {
    const url = new URL(endpointFor(config, service));
    const port = url.port ? Number(url.port) : url.protocol === 'http:' ? 80 : 443;
    return {
      host: url.hostname,
      port,
      purpose:
        service === 'core'
          ? 'OCI Core Services API (instances, backups, volumes, attachments)'
          : 'OCI Identity API (compartments)',
    };
  });
}

async function privateKeyOf(config: OracleConfig): Promise<string> {
  if (config.privateKey !== undefined) return config.privateKey;
  try {
    return await readFile(config.privateKeyPath!, 'utf8');
  } catch (error) {
    // The path is no secret; the file's content never reaches a message.
    throw new SyncproxyError(
      `privateKeyPath: cannot read the private key file ${config.privateKeyPath} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      { code: 'config', retryable: false, details: { field: 'privateKeyPath' } },
    );
  }
}

/** An Oracle Cloud connector with its own settings (fast waits in tests, the mock's proxy-side tools). */
export function createOracleConnector(options: OracleConnectorOptions = {}): SourceConnector<OracleConfig> {
  const clock = options.clock ?? systemClock;
  return defineConnector<OracleConfig>({
    id: 'oracle',
    displayName: 'Oracle Cloud Infrastructure (volume backups, backup-delta volumes)',
    version: VERSION,
    configSchema: oracleConfigSchema,
    capabilities: {
      // Between two backups OCI names the changed blocks (the delta volume's mapped ranges).
      changeTracking: 'native',
      // Backups of an instance's volumes are taken one by one, not as a volume group.
      consistentMultiDiskSnapshot: false,
      mountsDisks: true,
      quiescedSnapshots: false,
    },
    networkRequirements: oracleNetworkRequirements,
    async connect(config, context) {
      const privateKeyPem = await privateKeyOf(config);
      // A key read from a file is a secret the config form never saw: the redactor learns it here.
      const redactor = context.redactor.with([privateKeyPem, ...privateKeyPem.split('\n')]);
      try {
        // Checked here with Node's own parser: the SDK's (sshpk) also emits the failure on a stream nobody listens to.
        createPrivateKey({
          key: privateKeyPem,
          ...(config.passphrase ? { passphrase: config.passphrase } : {}),
        });
      } catch (error) {
        throw new SyncproxyError(
          `${config.privateKeyPath ? 'privateKeyPath' : 'privateKey'}: the private key cannot be read (a PEM key, with its passphrase if it is encrypted): ${redactor.text((error as Error).message)}`,
          {
            code: 'config',
            retryable: false,
            details: { field: config.privateKeyPath ? 'privateKeyPath' : 'privateKey' },
          },
        );
      }
      const dispatcher =
        context.dispatcher ??
        createDispatcher({
          ...(context.httpTimeoutSec !== undefined ? { httpTimeoutSec: context.httpTimeoutSec } : {}),
          ...(context.hostOverrides ? { hostOverrides: context.hostOverrides } : {}),
        });
      const ownsDispatcher = context.dispatcher === undefined;
      let client: OracleClient;
      try {
        client = new OracleClient({
          config,
          privateKeyPem,
          dispatcher,
          logger: context.logger,
          redactor,
          clock,
          ...(options.retry ? { retry: options.retry } : {}),
          ...(context.signal ? { signal: context.signal } : {}),
        });
      } catch (error) {
        if (ownsDispatcher) await dispatcher.close();
        throw new SyncproxyError(
          'privateKey: the private key cannot be parsed (a PEM RSA key, with its passphrase if it has one)',
          {
            code: 'config',
            retryable: false,
            details: { field: 'privateKey' },
            cause: redactor.text(String(error)),
          },
        );
      }
      return new OracleSession({
        config,
        client,
        logger: context.logger,
        clock,
        tools: options.tools ?? {
          iscsi: new IscsiadmInitiator(),
          scanner: new SgLbaStatusScanner(context.devices ? { devices: context.devices } : {}),
        },
        // Without the product's slots, core's process-wide default (50) applies.
        ...(context.mountSlots ? { mountSlots: context.mountSlots } : {}),
        ...(context.devices ? { devices: context.devices } : {}),
        ...(options.wait ? { wait: options.wait } : {}),
        ...(options.chunkSizeBytes ? { chunkSizeBytes: options.chunkSizeBytes } : {}),
        ...(context.signal ? { signal: context.signal } : {}),
        ...(ownsDispatcher ? { onClose: () => dispatcher.close() } : {}),
      });
    },
  });
}

/** The Oracle Cloud connector with default settings: `registry.register(oracle)`. */
export const oracle: SourceConnector<OracleConfig> = createOracleConnector();
