import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';

/** The callback of a `dns.lookup`-compatible function. */
export type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/** A `lookup` for net/tls.connect that answers overridden names itself and asks DNS for the rest. */
export function overrideLookup(overrides: Record<string, string> = {}) {
  const table = new Map(Object.entries(overrides).map(([name, ip]) => [name.toLowerCase(), ip]));
  return (
    hostname: string,
    options: LookupOptions | number | LookupCallback,
    callback?: LookupCallback,
  ): void => {
    const cb = (typeof options === 'function' ? options : callback) as LookupCallback;
    const opts: LookupOptions = typeof options === 'object' && options !== null ? options : {};
    const ip = table.get(hostname.toLowerCase());
    if (ip === undefined) {
      dnsLookup(
        hostname,
        { ...opts, all: opts.all === true } as LookupOptions & { all: boolean },
        cb as never,
      );
      return;
    }
    const family = isIP(ip);
    if (opts.all) cb(null, [{ address: ip, family }]);
    else cb(null, ip, family);
  };
}

/** The address to dial for `host`, after overrides. */
export function resolveOverride(host: string, overrides: Record<string, string> = {}): string {
  const lower = host.toLowerCase();
  for (const [name, ip] of Object.entries(overrides)) if (name.toLowerCase() === lower) return ip;
  return host;
}
