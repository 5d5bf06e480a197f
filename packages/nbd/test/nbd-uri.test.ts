import { SyncproxyError } from '@syncproxy/core';
import { formatNbdUri, parseNbdUri } from '@syncproxy/nbd';
import { describe, expect, it } from 'vitest';

function refusal(uri: string): SyncproxyError {
  try {
    parseNbdUri(uri);
  } catch (error) {
    if (SyncproxyError.isInstance(error)) return error;
  }
  throw new Error(`${uri} was accepted`);
}

describe('parseNbdUri', () => {
  it('reads host, port and export of nbd://', () => {
    expect(parseNbdUri('nbd://esxi-proxy:10810/disk%200')).toEqual({
      address: { transport: 'tcp', host: 'esxi-proxy', port: 10810 },
      exportName: 'disk 0',
    });
  });

  it('defaults to port 10809 and the default export', () => {
    expect(parseNbdUri('nbd://127.0.0.1')).toEqual({
      address: { transport: 'tcp', host: '127.0.0.1', port: 10809 },
      exportName: '',
    });
  });

  it('unwraps IPv6 hosts', () => {
    expect(parseNbdUri('nbd://[::1]:10809/x').address).toEqual({
      transport: 'tcp',
      host: '::1',
      port: 10809,
    });
  });

  it('reads the socket of nbd+unix://', () => {
    expect(parseNbdUri('nbd+unix:///sda?socket=/tmp/nbd%20dir/s.sock')).toEqual({
      address: { transport: 'unix', socketPath: '/tmp/nbd dir/s.sock' },
      exportName: 'sda',
    });
  });

  it('round-trips through formatNbdUri', () => {
    for (const uri of ['nbd://h:1/a%2Fb', 'nbd+unix:///e?socket=%2Ftmp%2Fs']) {
      expect(parseNbdUri(formatNbdUri(parseNbdUri(uri)))).toEqual(parseNbdUri(uri));
    }
  });

  it('refuses TLS and vsock schemes as unsupported', () => {
    expect(refusal('nbds://h/x').message).toBe(
      'NBD URI scheme nbds:// needs TLS, which this client does not support',
    );
    expect(refusal('nbds://h/x').code).toBe('unsupported');
    expect(refusal('nbd+vsock://1:2/x').message).toBe('NBD URI scheme nbd+vsock:// (vsock) is not supported');
  });

  it('refuses malformed URIs with config errors that do not echo them', () => {
    expect(refusal('nbd+unix:///x').message).toBe('invalid NBD URI: nbd+unix:// needs a ?socket=PATH query');
    expect(refusal('http://h/x').message).toBe(
      'invalid NBD URI: scheme http:// is not nbd:// or nbd+unix://',
    );
    const garbage = refusal('not a uri with password hunter2');
    expect(garbage.code).toBe('config');
    expect(garbage.message).not.toContain('hunter2');
  });
});
