import { SyncproxyError } from '@syncproxy/core';

/** One entry of `rbd diff --format json`. */
export interface RbdDiffEntry {
  offset: number;
  length: number;
  /** False where the range was discarded since the base: it reads as zeroes. */
  exists: boolean;
}

type Token =
  | { kind: 'punct'; value: '[' | ']' | '{' | '}' | ':' | ',' }
  | { kind: 'string'; value: string }
  | { kind: 'number'; value: number }
  | { kind: 'literal'; value: boolean | null };

/** Longest single token accepted; a longer one cannot be part of an rbd diff and is not buffered. */
const MAX_TOKEN_CHARS = 4096;

/**
 * Parses the output of `rbd diff --format json` as it arrives: a bare array of
 * `{"offset":N,"length":N,"exists":"true"|"false"}` (`exists` is a string in
 * ceph's Diff.cc; booleans are accepted too). Memory stays bounded by one
 * token whatever the number of entries. Anything else is a `protocol` error.
 */
export async function* parseRbdDiffJson(
  source: AsyncIterable<Uint8Array>,
): AsyncGenerator<RbdDiffEntry, void, undefined> {
  const tokens = tokenize(source);
  const next = async (what: string): Promise<Token> => {
    const r = await tokens.next();
    if (r.done) throw diffJsonError(`output ended before ${what}`);
    return r.value;
  };
  try {
    const open = await next('the opening [');
    if (!isPunct(open, '[')) throw diffJsonError(`expected [ at the start, got ${describe(open)}`);
    let first = true;
    while (true) {
      let token = await next('the closing ]');
      if (isPunct(token, ']')) break;
      if (!first) {
        if (!isPunct(token, ','))
          throw diffJsonError(`expected , or ] between entries, got ${describe(token)}`);
        token = await next('an entry');
      }
      first = false;
      if (!isPunct(token, '{')) throw diffJsonError(`expected an entry object, got ${describe(token)}`);
      yield await readEntry(next);
    }
    const trailing = await tokens.next();
    if (!trailing.done) throw diffJsonError(`unexpected ${describe(trailing.value)} after the closing ]`);
  } finally {
    await tokens.return(undefined);
  }
}

async function readEntry(next: (what: string) => Promise<Token>): Promise<RbdDiffEntry> {
  const fields: Record<string, number | string | boolean | null> = {};
  let token = await next('an entry field');
  if (!isPunct(token, '}')) {
    while (true) {
      if (token.kind !== 'string') throw diffJsonError(`expected a field name, got ${describe(token)}`);
      const key = token.value;
      const colon = await next('a :');
      if (!isPunct(colon, ':')) throw diffJsonError(`expected : after "${key}", got ${describe(colon)}`);
      const value = await next(`the value of "${key}"`);
      if (value.kind === 'punct')
        throw diffJsonError(`field "${key}" holds ${describe(value)}, not a scalar`);
      fields[key] = value.value;
      const after = await next(', or }');
      if (isPunct(after, '}')) break;
      if (!isPunct(after, ',')) throw diffJsonError(`expected , or } in an entry, got ${describe(after)}`);
      token = await next('an entry field');
    }
  }
  const { offset, length, exists } = fields;
  if (!isCount(offset) || !isCount(length)) {
    throw diffJsonError(`entry lacks a valid offset/length: ${JSON.stringify({ offset, length })}`);
  }
  if (offset + length > Number.MAX_SAFE_INTEGER)
    throw diffJsonError(`entry ${offset}+${length} is out of range`);
  let isData: boolean;
  if (exists === 'true' || exists === true) isData = true;
  else if (exists === 'false' || exists === false) isData = false;
  else throw diffJsonError(`entry at ${offset} has exists=${JSON.stringify(exists)}`);
  return { offset, length, exists: isData };
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isPunct(token: Token, value: string): boolean {
  return token.kind === 'punct' && token.value === value;
}

function describe(token: Token): string {
  if (token.kind === 'punct') return token.value;
  if (token.kind === 'string') return `"${token.value.slice(0, 40)}"`;
  return String(token.value);
}

function diffJsonError(what: string): SyncproxyError {
  return new SyncproxyError(`rbd diff --format json: ${what}`, { code: 'protocol', retryable: false });
}

const PUNCT = new Set(['[', ']', '{', '}', ':', ',']);
const WHITESPACE = /[\s]/;
const NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

/** JSON tokens from a byte stream; a token split across chunks waits for the next chunk. */
async function* tokenize(source: AsyncIterable<Uint8Array>): AsyncGenerator<Token, void, undefined> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let text = '';
  let ended = false;
  const iterator = source[Symbol.asyncIterator]();
  try {
    while (true) {
      let at = 0;
      while (at < text.length) {
        const ch = text[at]!;
        if (WHITESPACE.test(ch)) {
          at++;
          continue;
        }
        if (PUNCT.has(ch)) {
          yield { kind: 'punct', value: ch as '[' };
          at++;
          continue;
        }
        const end = tokenEnd(text, at);
        if (end === -1 && !ended) break;
        const raw = text.slice(at, end === -1 ? text.length : end);
        yield scalar(raw);
        at = end === -1 ? text.length : end;
      }
      text = text.slice(at);
      if (text.length > MAX_TOKEN_CHARS)
        throw diffJsonError(`a token longer than ${MAX_TOKEN_CHARS} characters`);
      if (ended) return;
      const next = await iterator.next();
      if (next.done) {
        ended = true;
        try {
          text += decoder.decode();
        } catch {
          throw diffJsonError('output is not UTF-8');
        }
      } else {
        try {
          text += decoder.decode(next.value, { stream: true });
        } catch {
          throw diffJsonError('output is not UTF-8');
        }
      }
    }
  } finally {
    await iterator.return?.();
  }
}

/** Index just past the scalar token at `start`, or -1 when the text ends inside it. */
function tokenEnd(text: string, start: number): number {
  if (text[start] === '"') {
    for (let i = start + 1; i < text.length; i++) {
      if (text[i] === '\\') i++;
      else if (text[i] === '"') return i + 1;
    }
    return -1;
  }
  for (let i = start; i < text.length; i++) {
    const ch = text[i]!;
    if (PUNCT.has(ch) || WHITESPACE.test(ch)) return i;
  }
  return -1;
}

function scalar(raw: string): Token {
  if (raw.startsWith('"')) {
    if (raw.length < 2 || !raw.endsWith('"')) throw diffJsonError('output ended inside a string');
    try {
      return { kind: 'string', value: JSON.parse(raw) as string };
    } catch {
      throw diffJsonError(`invalid string ${raw.slice(0, 40)}`);
    }
  }
  if (raw === 'true' || raw === 'false') return { kind: 'literal', value: raw === 'true' };
  if (raw === 'null') return { kind: 'literal', value: null };
  if (NUMBER.test(raw)) return { kind: 'number', value: Number(raw) };
  throw diffJsonError(`unexpected ${JSON.stringify(raw.slice(0, 40))}`);
}
