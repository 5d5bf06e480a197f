import {
  createDispatcher,
  defineConnector,
  type NetworkRequirement,
  type SourceConnector,
} from '@syncproxy/core';
import { VimClient } from './client.js';
import { apiEndpoint, type VmwareConfig, vmwareConfigSchema } from './config.js';
import { type DataPathOption, type DataPathResolver, templateResolver, vddkResolver } from './data-path.js';
import { VmwareSession } from './session.js';
import { certificateThumbprints } from './tls-probe.js';

/** Kept in step with package.json by the release. */
const VERSION = '0.1.0';

/** Settings of the connector itself (not of a platform). */
export interface VmwareConnectorOptions {
  /** How disk data is read. Default: nbdkit's vddk plugin with default settings. */
  dataPath?: DataPathOption;
  /** Wait between task polls, ms. Default 1000. */
  taskPollMs?: number;
  /** `maxObjects` of RetrievePropertiesEx pages. Default 100. */
  maxObjectsPerPage?: number;
}

/** vCenter/ESXi API on 443 (or the URL's port), and NFC on 902 for the disk data (PRODUCT network policy). */
export function vmwareNetworkRequirements(config: Pick<VmwareConfig, 'url'>): NetworkRequirement[] {
  const { host, port } = apiEndpoint(config);
  return [
    { host, port, purpose: 'vCenter/ESXi API (vim25 SOAP)' },
    {
      host,
      port: 902,
      purpose: 'ESXi disk data (VDDK NBD/NBDSSL over NFC); every ESXi host of the VMs needs it too',
    },
  ];
}

/** A VMware connector with its own settings (a data path, faster task polls in tests). */
export function createVmwareConnector(options: VmwareConnectorOptions = {}): SourceConnector<VmwareConfig> {
  return defineConnector<VmwareConfig>({
    id: 'vmware',
    displayName: 'VMware vSphere (vCenter / ESXi, CBT)',
    version: VERSION,
    configSchema: vmwareConfigSchema,
    capabilities: {
      changeTracking: 'native',
      consistentMultiDiskSnapshot: true,
      mountsDisks: false,
      quiescedSnapshots: true,
    },
    networkRequirements: vmwareNetworkRequirements,
    async connect(config, context) {
      const hostOverrides = { ...context.hostOverrides, ...config.hostOverrides };
      const ownsDispatcher =
        context.dispatcher === undefined || config.thumbprint !== undefined || config.ca !== undefined;
      const dispatcher = ownsDispatcher
        ? createDispatcher({
            ...(context.httpTimeoutSec !== undefined ? { httpTimeoutSec: context.httpTimeoutSec } : {}),
            ...(config.thumbprint ? { pinnedThumbprintSha256: config.thumbprint } : {}),
            ...(config.ca ? { ca: config.ca } : {}),
            hostOverrides,
          })
        : context.dispatcher!;
      const client = new VimClient({
        url: config.url,
        user: config.user,
        password: config.password,
        dispatcher,
        logger: context.logger,
        ...(options.taskPollMs !== undefined ? { taskPollMs: options.taskPollMs } : {}),
        ...(options.maxObjectsPerPage !== undefined ? { maxObjectsPerPage: options.maxObjectsPerPage } : {}),
      });
      const closeDispatcher = async (): Promise<void> => {
        if (ownsDispatcher) await dispatcher.close();
      };
      try {
        await client.connect(context.signal);
      } catch (error) {
        await closeDispatcher();
        throw error;
      }
      return new VmwareSession({
        client,
        dataPath: resolverFor(options.dataPath, config, hostOverrides, (t) => context.redactor.text(t)),
        logger: context.logger,
        ...(context.signal ? { signal: context.signal } : {}),
        onClose: closeDispatcher,
      });
    },
  });
}

function resolverFor(
  option: DataPathOption | undefined,
  config: VmwareConfig,
  hostOverrides: Record<string, string>,
  redact: (text: string) => string,
): DataPathResolver {
  if (typeof option === 'function') return option;
  if (typeof option === 'string') return templateResolver(option);
  const { host, port } = apiEndpoint(config);
  let sha1: Promise<string> | undefined;
  return vddkResolver(option?.vddk ?? {}, {
    server: hostOverrides[host] ?? host,
    port,
    user: config.user,
    password: config.password,
    thumbprintSha1: () => {
      sha1 ??= certificateThumbprints({
        host,
        port,
        ...(config.thumbprint ? { pinnedThumbprintSha256: config.thumbprint } : {}),
        ...(config.ca ? { ca: config.ca } : {}),
        hostOverrides,
      }).then((t) => t.sha1);
      return sha1;
    },
    redact,
  });
}

/** The VMware connector with default settings (data through nbdkit vddk): `registry.register(vmware)`. */
export const vmware: SourceConnector<VmwareConfig> = createVmwareConnector();
