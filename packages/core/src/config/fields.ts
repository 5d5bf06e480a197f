import { z } from 'zod';

/**
 * The longest string any config field may hold unless its builder says
 * otherwise. Names, ids, paths and regions are far shorter; an unbounded field
 * lets a pasted file or a hostile form make every later message, log line and
 * regex work on megabytes.
 */
export const MAX_FIELD_CHARS = 4096;

/** URLs longer than this are refused (browsers and proxies stop near 8 KiB; API endpoints are short). */
export const MAX_URL_CHARS = 2048;

/** PEM bundles (a CA chain, a keyring) may be long, but not unbounded. */
export const MAX_PEM_CHARS = 1024 * 1024;

export interface StringFieldOptions {
  /** At least this many characters. Default 0. */
  minChars?: number;
  /** At most this many characters. Default {@link MAX_FIELD_CHARS}. */
  maxChars?: number;
}

/**
 * A bounded string config field. The length check aborts the field's other
 * checks, so a regex or a refine never runs on an oversized value.
 *
 * @example
 * const configSchema = z.object({ user: boundedString({ minChars: 1, maxChars: 256 }) });
 */
export function boundedString(options: StringFieldOptions = {}): z.ZodString {
  const { minChars = 0, maxChars = MAX_FIELD_CHARS } = options;
  const schema = z.string().max(maxChars, { error: `at most ${maxChars} characters`, abort: true });
  return minChars > 0 ? schema.min(minChars, { error: `at least ${minChars} character(s)` }) : schema;
}

export interface UrlFieldOptions {
  /** Accepted schemes, without `:`. Default `['https']`. */
  protocols?: readonly string[];
  /** Default {@link MAX_URL_CHARS}. */
  maxChars?: number;
}

/**
 * A URL config field: bounded, of the given schemes, and without userinfo.
 * Credentials inside a URL (`https://admin:secret@host`) are refused because
 * the URL is not a secret field: it is printed in errors, logs and request
 * lines, and its password would leak there. The error names the field and
 * never echoes the value.
 *
 * @example
 * const configSchema = z.object({ url: urlField().describe('https://vcenter:443') });
 */
export function urlField(options: UrlFieldOptions = {}): z.ZodURL {
  const protocols = options.protocols ?? ['https'];
  const maxChars = options.maxChars ?? MAX_URL_CHARS;
  const protocol = new RegExp(`^(${protocols.map((p) => p.replace(/[^a-z0-9+.-]/gi, '')).join('|')})$`);
  const expected = protocols.map((p) => `${p}://`).join(' or ');
  return z
    .url({ protocol, error: `a URL starting with ${expected}`, abort: true })
    .max(maxChars, { error: `at most ${maxChars} characters`, abort: true })
    .refine((value) => !hasUserinfo(value), {
      error: 'must not contain a user name or password (give credentials in their own fields)',
    });
}

/** True when `value` parses as a URL with a user name or password in it. */
export function hasUserinfo(value: string): boolean {
  try {
    const url = new URL(value);
    return url.username !== '' || url.password !== '';
  } catch {
    // Unparsable: another check reports it; look for the `user@` form anyway.
    return /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(value);
  }
}
