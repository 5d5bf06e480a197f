import { aws } from '@syncproxy/connector-aws';
import { fusionCompute } from '@syncproxy/connector-fusioncompute';
import { hcs } from '@syncproxy/connector-hcs';
import { huaweicloud } from '@syncproxy/connector-huaweicloud';
import { localdisk } from '@syncproxy/connector-localdisk';
import { openstackCeph } from '@syncproxy/connector-openstack-ceph';
import { oracle } from '@syncproxy/connector-oracle';
import { vmware } from '@syncproxy/connector-vmware';
import { type ConnectorRegistry, createRegistry } from '@syncproxy/core';

/**
 * A registry of the connectors the CLI ships: every connector package of the repository, registered
 * explicitly (none registers itself; test/registry.test.ts fails for a package left out).
 */
export function createCliRegistry(): ConnectorRegistry {
  return createRegistry([aws, fusionCompute, hcs, huaweicloud, localdisk, openstackCeph, oracle, vmware]);
}
