import {
  createHuaweiCloudConnector,
  type HuaweiCloudConnectorOptions,
} from '@syncproxy/connector-huaweicloud';

/** The connector with fast polls and retries: the mock finishes jobs after one poll and never sleeps. */
export function fastConnector(options: HuaweiCloudConnectorOptions = {}) {
  return createHuaweiCloudConnector({
    poll: { initialDelayMs: 1, maxDelayMs: 5 },
    retry: { baseDelayMs: 1, maxDelayMs: 10 },
    locateTimeoutMs: 2000,
    ...options,
  });
}

export const INVALID_CONFIGS = [
  {
    input: {
      accessKeyId: 'HPUAMOCKSYNCPROXY0001',
      secretAccessKey: 's',
      project: '0123456789abcdef0123456789abcdef',
      proxy: 'p',
      bucket: 'syncproxy-cache',
    },
    path: 'project',
  },
  {
    input: {
      accessKeyId: 'HPUAMOCKSYNCPROXY0001',
      project: 'tr-west-1',
      proxy: 'p',
      bucket: 'syncproxy-cache',
    },
    path: 'secretAccessKey',
  },
];
