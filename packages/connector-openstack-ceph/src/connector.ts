import { defineConnector, type NetworkRequirement, type SourceConnector } from '@syncproxy/core';
import { parseMonitors } from './ceph/monitors.js';
import { type OpenstackCephConfig, openstackCephConfigSchema } from './config.js';
import { openSession, PLATFORM, type SessionOptions } from './session.js';

/** The version of this package, stamped on the connector. */
export const VERSION = '0.1.0';

/**
 * The endpoints a proxy must reach (PRODUCT.md network policy): Keystone from
 * the auth URL, and each Ceph monitor (6789 by default). Nova and Cinder come
 * from the catalog and are checked once connected; the OSDs follow the monitors' map.
 */
export function openstackCephNetworkRequirements(config: OpenstackCephConfig): NetworkRequirement[] {
  const keystone = new URL(config.authUrl);
  const out: NetworkRequirement[] = [
    {
      host: keystone.hostname.replace(/^\[|\]$/g, ''),
      port: Number(keystone.port || (keystone.protocol === 'https:' ? 443 : 80)),
      purpose: 'Keystone (identity API)',
    },
  ];
  for (const cluster of config.cephClusters) {
    for (const monitor of parseMonitors(cluster.monitors)) {
      const bare = monitor.replace(/^v[12]:/, '').replace(/\/\d+$/, '');
      const bracketed = /^\[(.+)\](?::(\d+))?$/.exec(bare);
      const [host, port] = bracketed ? [bracketed[1]!, bracketed[2]] : (bare.split(':') as [string, string?]);
      out.push({
        host,
        port: Number(port ?? 6789),
        purpose: `Ceph monitor (cluster ${cluster.clusterName})`,
      });
    }
  }
  return out;
}

/**
 * Makes the OpenStack + Ceph connector. `options` are for tests and embedding
 * (poll delays of the Cinder snapshot lifecycle, an injected clock).
 */
export function createOpenstackCephConnector(
  options: SessionOptions = {},
): SourceConnector<OpenstackCephConfig> {
  return defineConnector<OpenstackCephConfig>({
    id: PLATFORM,
    displayName: 'OpenStack + Ceph',
    version: VERSION,
    configSchema: openstackCephConfigSchema,
    capabilities: {
      changeTracking: 'native',
      // Cinder snapshots each volume on its own; there are no consistency-group snapshots here.
      consistentMultiDiskSnapshot: false,
      mountsDisks: false,
      quiescedSnapshots: false,
    },
    networkRequirements: openstackCephNetworkRequirements,
    connect: (config, context) => openSession(config, context, options),
  });
}

/** The OpenStack + Ceph connector: register it with `registry.register(openstackCeph)`. */
export const openstackCeph: SourceConnector<OpenstackCephConfig> = createOpenstackCephConnector();
