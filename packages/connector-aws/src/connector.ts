import {
  type Clock,
  defineConnector,
  type NetworkRequirement,
  type RetryOptions,
  type SourceConnector,
  systemClock,
} from '@syncproxy/core';
import { AwsClient, type AwsCredentials } from './client.js';
import { type AwsConfig, awsConfigSchema, awsProviderConfigSchema, endpointFor } from './config.js';
import { AwsSession, type ReaderTuning, type SnapshotWaitOptions } from './session.js';

/** Kept in step with package.json by the release. */
const VERSION = '0.1.0';

/** Settings of the connector itself (not of a platform): timing, retries, reader tuning. */
export interface AwsConnectorOptions {
  /** Time source for token expiry, snapshot waits and backoff. Default: the system clock. */
  clock?: Clock;
  /** Retries of throttled, 5xx, network-failed and checksum-failed calls. */
  retry?: RetryOptions;
  /** How `createSnapshot` waits for the snapshots to complete. */
  snapshotWait?: SnapshotWaitOptions;
  reader?: ReaderTuning;
  /**
   * An AWS SDK credential provider instead of the form's keys (the form then has none): e.g.
   * `fromNodeProviderChain()`, `fromIni({ profile: 'backup' })` or
   * `fromTemporaryCredentials({ params: { RoleArn } })` from `@aws-sdk/credential-providers`.
   * Without it, the keys of the config are the only credentials: nothing is read from files, the
   * environment or the instance metadata service.
   */
  credentials?: AwsCredentials;
}

/** The endpoints a proxy must reach: EC2 and EBS direct, on 443 (or the override's port). */
export function awsNetworkRequirements(
  config: Pick<AwsConfig, 'region' | 'endpoints'>,
): NetworkRequirement[] {
  return (['ec2', 'ebs'] as const).map((service) => {
    const url = new URL(endpointFor(config, service));
    const port = url.port ? Number(url.port) : url.protocol === 'http:' ? 80 : 443;
    return {
      host: url.hostname,
      port,
      purpose:
        service === 'ec2' ? 'EC2 API (inventory, snapshots)' : 'EBS direct APIs (changed blocks, block data)',
    };
  });
}

/** An AWS connector with its own settings (a manual clock in tests, other retry limits). */
export function createAwsConnector(options: AwsConnectorOptions = {}): SourceConnector<AwsConfig> {
  const clock = options.clock ?? systemClock;
  return defineConnector<AwsConfig>({
    id: 'aws',
    displayName: 'Amazon Web Services (EC2 + EBS direct APIs)',
    version: VERSION,
    configSchema: options.credentials ? awsProviderConfigSchema : awsConfigSchema,
    capabilities: {
      changeTracking: 'native',
      consistentMultiDiskSnapshot: true,
      mountsDisks: false,
      quiescedSnapshots: false,
    },
    networkRequirements: awsNetworkRequirements,
    async connect(config, context) {
      const client = new AwsClient({
        config,
        ...(options.credentials ? { credentials: options.credentials } : {}),
        logger: context.logger,
        ...(context.hostOverrides ? { hostOverrides: context.hostOverrides } : {}),
        ...(context.httpTimeoutSec !== undefined ? { httpTimeoutSec: context.httpTimeoutSec } : {}),
        ...(options.retry ? { retry: options.retry } : {}),
        clock,
      });
      return new AwsSession({
        config,
        client,
        logger: context.logger,
        clock,
        ...(context.signal ? { signal: context.signal } : {}),
        ...(options.snapshotWait ? { snapshotWait: options.snapshotWait } : {}),
        ...(options.reader ? { reader: options.reader } : {}),
      });
    },
  });
}

/** The AWS connector with default settings: `registry.register(aws)`. */
export const aws: SourceConnector<AwsConfig> = createAwsConnector();
