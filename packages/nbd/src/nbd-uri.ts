import { SyncproxyError } from '@syncproxy/core';

/** Where an NBD server listens. */
export type NbdAddress =
  | { transport: 'tcp'; host: string; port: number }
  | { transport: 'unix'; socketPath: string };

/** An export on a server: what an NBD URI names. */
export interface NbdTarget {
  address: NbdAddress;
  /** Empty for the server's default export. */
  exportName: string;
}

/** IANA port of NBD. */
export const NBD_DEFAULT_PORT = 10809;

/**
 * Parses an NBD URI (NetworkBlockDevice/nbd doc/uri.md): `nbd://host[:port]/[export]`
 * and `nbd+unix:///[export]?socket=/path`. TLS (`nbds`) and vsock are refused with
 * an `unsupported` error rather than silently connecting in the clear.
 */
export function parseNbdUri(uri: string): NbdTarget {
  let url: URL;
  try {
    url = new URL(uri);
  } catch (cause) {
    // The text itself is not echoed: a URI can carry credentials in its user part.
    throw new SyncproxyError(
      'invalid NBD URI: not a URI (expected nbd://host[:port]/export or nbd+unix:///export?socket=PATH)',
      {
        code: 'config',
        cause,
      },
    );
  }
  const scheme = url.protocol.slice(0, -1);
  // The export name is everything after the first slash of the path, percent-decoded.
  const exportName = decodeURIComponent(url.pathname.replace(/^\//, ''));
  switch (scheme) {
    case 'nbd': {
      if (url.hostname === '')
        throw new SyncproxyError('invalid NBD URI: nbd:// needs a host', { code: 'config' });
      const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
      const port = url.port === '' ? NBD_DEFAULT_PORT : Number(url.port);
      return { address: { transport: 'tcp', host, port }, exportName };
    }
    case 'nbd+unix': {
      const socketPath = url.searchParams.get('socket');
      if (!socketPath) {
        throw new SyncproxyError('invalid NBD URI: nbd+unix:// needs a ?socket=PATH query', {
          code: 'config',
        });
      }
      if (url.hostname !== '') {
        throw new SyncproxyError(
          'invalid NBD URI: nbd+unix:// takes no host (write nbd+unix:///export?socket=PATH)',
          {
            code: 'config',
          },
        );
      }
      return { address: { transport: 'unix', socketPath }, exportName };
    }
    case 'nbds':
    case 'nbds+unix':
      throw new SyncproxyError(`NBD URI scheme ${scheme}:// needs TLS, which this client does not support`, {
        code: 'unsupported',
      });
    case 'nbd+vsock':
    case 'nbds+vsock':
      throw new SyncproxyError(`NBD URI scheme ${scheme}:// (vsock) is not supported`, {
        code: 'unsupported',
      });
    default:
      throw new SyncproxyError(`invalid NBD URI: scheme ${scheme}:// is not nbd:// or nbd+unix://`, {
        code: 'config',
      });
  }
}

/** A URI for `target`, as nbdinfo and nbdcopy accept it. */
export function formatNbdUri(target: NbdTarget): string {
  const path = `/${encodeURIComponent(target.exportName)}`;
  if (target.address.transport === 'unix') {
    return `nbd+unix://${path}?socket=${encodeURIComponent(target.address.socketPath)}`;
  }
  const host = target.address.host.includes(':') ? `[${target.address.host}]` : target.address.host;
  return `nbd://${host}:${target.address.port}${path}`;
}

/** How an address reads in messages. */
export function describeAddress(address: NbdAddress): string {
  return address.transport === 'unix' ? `unix:${address.socketPath}` : `${address.host}:${address.port}`;
}
