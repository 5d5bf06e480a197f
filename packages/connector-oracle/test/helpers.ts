import {
  createOracleConnector,
  type OracleConnectorOptions,
  type ProxyHostTools,
} from '@syncproxy/connector-oracle';
import type { MockOci } from '@syncproxy/connector-oracle/mock';

/**
 * A connector whose proxy-side tools are those of whichever mock is current:
 * the contract suite starts its mock after the connector is made.
 */
export function connectorForMocks(options: OracleConnectorOptions = {}) {
  let current: MockOci | undefined;
  const mock = () => {
    if (!current) throw new Error('no OCI mock is bound');
    return current;
  };
  const tools: ProxyHostTools = {
    iscsi: {
      login: (target, signal) => mock().tools.iscsi.login(target, signal),
      logout: (target) => mock().tools.iscsi.logout(target),
    },
    scanner: { scan: (scan) => mock().tools.scanner.scan(scan) },
  };
  const connector = createOracleConnector({
    wait: { initialDelayMs: 1, maxDelayMs: 5 },
    retry: { baseDelayMs: 1, maxDelayMs: 10 },
    ...options,
    tools,
  });
  return {
    connector,
    bind(oci: MockOci) {
      current = oci;
      return oci;
    },
  };
}
