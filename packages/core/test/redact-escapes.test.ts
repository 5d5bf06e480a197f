import { inspect } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PlatformApiError, Redactor, redactingLogger, SyncproxyError } from '../src/index.js';

/** The ways servers echo a request back: each takes the secret and returns how it appears in a body. */
const xmlNamed = (s: string) =>
  s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
const escapings: Record<string, (s: string) => string> = {
  raw: (s) => s,
  'xml named entities': xmlNamed,
  'html decimal entities': (s) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`),
  'html hex entities': (s) =>
    s.replace(/[^A-Za-z0-9]/gu, (c) => `&#x${c.codePointAt(0)!.toString(16).toUpperCase()};`),
  'html &#39; with &amp;': (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/'/g, '&#39;'),
  'json once': (s) => JSON.stringify(s).slice(1, -1),
  'json twice': (s) => JSON.stringify(JSON.stringify(s)).slice(1, -1),
  'json ascii-only': (s) =>
    JSON.stringify(s)
      .slice(1, -1)
      .replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
  'url encoded': encodeURIComponent,
  'form encoded': (s) =>
    encodeURIComponent(s)
      .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
      .replace(/%20/g, '+'),
  'url encoded lowercase': (s) => encodeURIComponent(s).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
  'xml inside json': (s) => JSON.stringify(xmlNamed(s)).slice(1, -1),
  base64: (s) => Buffer.from(s).toString('base64'),
};

const secretChars = fc.constantFrom(
  ...'abcXYZ0129'.split(''),
  ...`'"&<>\\/%+= :;#?@!()*\t\n`.split(''),
  'é',
  '€',
  '𝄞',
);
const secretArb = fc.array(secretChars, { minLength: 8, maxLength: 24 }).map((cs) => cs.join(''));

function leaked(text: string, secret: string): string | undefined {
  for (const [name, echo] of Object.entries(escapings)) {
    const form = echo(secret);
    if (text.includes(form)) return name;
  }
  return undefined;
}

describe('redactor and escaped secrets', () => {
  for (const [name, echo] of Object.entries(escapings)) {
    it(`removes a secret echoed ${name} from message, stack, cause, body, toJSON, inspect and logs`, () => {
      fc.assert(
        fc.property(secretArb, fc.string({ maxLength: 5 }), (secret, user) => {
          const echoed =
            name === 'base64'
              ? `Authorization: Basic ${echo(`${user}:${secret}`)} refused; token ${echo(secret)}`
              : `<fault><request>${echo(secret)}</request></fault>`;
          const raw = new PlatformApiError({
            operation: 'Login',
            method: 'POST',
            url: 'https://vc.example.com/sdk',
            status: 500,
            body: echoed,
            message: `Login failed: ${echoed}`,
            cause: Object.assign(new Error(`socket said ${echoed}`), { body: echoed }),
          });
          const redactor = new Redactor([secret]);
          const error = redactor.error(raw);
          const lines: string[] = [];
          const logger = redactingLogger(
            {
              debug: () => {},
              info: () => {},
              warn: () => {},
              error: (...args: unknown[]) => {
                lines.push(...args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))));
              },
            },
            redactor,
          );
          logger.error({ body: echoed, nested: { text: echoed } }, `failed: ${echoed}`);
          const outputs = {
            message: error.message,
            stack: error.stack ?? '',
            toJSON: JSON.stringify(error.toJSON()),
            inspect: inspect(error, { depth: 10 }),
            body: String((error as PlatformApiError).body),
            logs: lines.join('\n'),
          };
          for (const [where, text] of Object.entries(outputs)) {
            const form = name === 'base64' ? leakedBase64(text, user, secret) : leaked(text, secret);
            if (form !== undefined)
              throw new Error(`secret ${JSON.stringify(secret)} left in ${where} (${form})`);
          }
          expect(SyncproxyError.isInstance(error)).toBe(true);
        }),
        { numRuns: 150 },
      );
    });
  }
});

function leakedBase64(text: string, user: string, secret: string): string | undefined {
  const whole = Buffer.from(`${user}:${secret}`).toString('base64');
  if (text.includes(whole.replace(/=+$/, ''))) return 'base64 of user:secret';
  return leaked(text, secret);
}

describe('redactor and long secrets', () => {
  it('redacts a secret too long for a pattern (a 1 MiB private key) as a whole string, raw and escaped', () => {
    const key = `-----BEGIN PRIVATE KEY-----\n${'A/b+'.repeat(262_144)}\n-----END PRIVATE KEY-----`;
    const redactor = new Redactor([key, "short'&secret"]);
    const out = redactor.text(`x ${key} y ${JSON.stringify(key)} z short&apos;&amp;secret`);
    expect(out).toBe('x [REDACTED] y "[REDACTED]" z [REDACTED]');
  });
});
