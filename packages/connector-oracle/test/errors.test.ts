import { mapOciError } from '@syncproxy/connector-oracle';
import * as common from 'oci-common';
import { describe, expect, it } from 'vitest';

const ociError = (status: number, serviceCode: string, message = 'm') =>
  new common.OciError(
    status,
    serviceCode,
    message,
    'REQ1',
    'Blockstorage',
    'getVolume',
    '',
    'GET https://iaas/x',
    '',
  );

describe('OCI errors map to typed errors', () => {
  it.each([
    [401, 'NotAuthenticated', 'get', 'auth', false],
    [404, 'NotAuthorizedOrNotFound', 'get', 'not-found', false],
    [404, 'NotAuthorizedOrNotFound', 'list', 'permission', false],
    [409, 'IncorrectState', 'get', 'conflict', false],
    [429, 'TooManyRequests', 'get', 'throttled', true],
    [500, 'InternalServerError', 'get', 'platform', true],
    [503, 'ServiceUnavailable', 'get', 'platform', true],
    [400, 'InvalidParameter', 'get', 'platform', false],
  ])('HTTP %i %s on a %s is %s (retryable %s)', (status, serviceCode, kind, code, retryable) => {
    const error = mapOciError(ociError(status, serviceCode), {
      operation: 'GetVolume',
      method: 'GET',
      ...(kind === 'list' ? { notFound: 'permission' as const } : {}),
    });
    expect({ code: error.code, retryable: error.retryable, platform: error.platform }).toEqual({
      code,
      retryable,
      platform: 'oracle',
    });
    expect(error.message).toContain(`HTTP ${status} ${serviceCode}`);
    expect(error.message).toContain('opc-request-id REQ1');
  });

  it("the SDK's client-side failure (no answer) is a retryable network error", () => {
    const error = mapOciError(
      { code: undefined, message: 'fetch failed', requestEndpoint: 'GET x' },
      {
        operation: 'ListInstances',
        method: 'GET',
      },
    );
    expect({ code: error.code, retryable: error.retryable }).toEqual({ code: 'network', retryable: true });
    expect(error.message).toBe('ListInstances failed: fetch failed');
  });
});
