/**
 * How one secret can look once a server or a library has escaped it. A server
 * that echoes the request back in an error page writes the password
 * XML-escaped (`&apos;`, `&#39;`, `&#x27;`), JSON-escaped once or twice,
 * `\u`-escaped, URL- or form-encoded, or inside a base64 `Basic` header; a
 * plain substring search finds none of these.
 *
 * Each character of the secret may appear in any of its forms (up to two
 * escapings deep, e.g. XML inside JSON), independently of its neighbours, so
 * mixed escaping is caught too. Letters and digits are never escaped.
 */

const XML_NAMED: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

const isPlain = (ch: string): boolean => /^[A-Za-z0-9]$/.test(ch);

function hexCases(text: string): string[] {
  return [...new Set([text, text.replace(/[a-f]/g, (c) => c.toUpperCase()), text.toLowerCase()])];
}

/** Every XML/HTML form of one character: named, decimal and hex entities. */
function xmlForms(ch: string): string[] {
  const cp = ch.codePointAt(0)!;
  const out = [`&#${cp};`, ...hexCases(`&#x${cp.toString(16)};`)];
  if (XML_NAMED[ch] !== undefined) out.push(XML_NAMED[ch]);
  return out;
}

/** Every JSON form of one character: the standard escape, `\uXXXX` (surrogates for astral) and `\/`. */
function jsonForms(ch: string): string[] {
  const out = [JSON.stringify(ch).slice(1, -1)];
  const units = [...Array(ch.length).keys()].map((i) => ch.charCodeAt(i).toString(16).padStart(4, '0'));
  for (const variant of hexCases(units.map((u) => `\\u${u}`).join(''))) out.push(variant);
  if (ch === '/') out.push('\\/');
  return out;
}

/** Every URL form of one character: percent-encoded UTF-8 bytes in either case, `+` for a space. */
function urlForms(ch: string): string[] {
  const bytes = [...Buffer.from(ch, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
  const out = hexCases(bytes);
  if (ch === ' ') out.push('+');
  return out;
}

/** The canonical escape of a whole string, for the second level (a form escaped again). */
const canonical: ((text: string) => string)[] = [
  (text) => text.replace(/[&<>"']/g, (c) => XML_NAMED[c]!),
  (text) => JSON.stringify(text).slice(1, -1),
  (text) => encodeURIComponent(text),
];

function charForms(ch: string): string[] {
  if (isPlain(ch)) return [ch];
  const first = new Set([ch, ...xmlForms(ch), ...jsonForms(ch), ...urlForms(ch)]);
  const all = new Set(first);
  for (const form of first) for (const escapeAll of canonical) all.add(escapeAll(form));
  return [...all].sort((a, b) => b.length - a.length);
}

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Secrets longer than this (a PEM private key) are searched for as whole
 * strings in their canonical escapes only ({@link literalForms}): a pattern
 * per character over megabytes would be too large for the regex engine.
 */
export const MAX_PATTERN_SECRET_CHARS = 4096;

/** The whole-string forms of a long secret: raw, XML-, JSON- and URL-escaped, and its base64 runs. */
export function literalForms(secret: string): string[] {
  return [...new Set([secret, ...canonical.map((escapeAll) => escapeAll(secret)), ...base64Forms(secret)])];
}

/** A regular-expression source matching `secret` in any mix of its escaped forms. */
export function escapedFormsPattern(secret: string): string {
  return [...secret]
    .map((ch) => {
      const forms = charForms(ch);
      return forms.length === 1 ? escapeRegExp(forms[0]!) : `(?:${forms.map(escapeRegExp).join('|')})`;
    })
    .join('');
}

/** Base64 runs shorter than this are not searched for: they would match unrelated text. */
const MIN_BASE64_CHARS = 8;

/**
 * The base64 text that `secret` produces wherever it sits inside a longer
 * encoded value (a `Basic user:password` header): for each of the three byte
 * alignments, the characters that depend on the secret's bytes alone; also in
 * the URL-safe alphabet.
 */
export function base64Forms(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  const out = new Set<string>();
  for (let shift = 0; shift < 3; shift++) {
    const encoded = Buffer.concat([Buffer.alloc(shift), bytes]).toString('base64');
    const from = Math.ceil((8 * shift) / 6);
    const to = Math.floor((8 * (shift + bytes.length)) / 6);
    const middle = encoded.slice(from, to);
    if (middle.length < MIN_BASE64_CHARS) continue;
    out.add(middle);
    out.add(middle.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return [...out];
}
