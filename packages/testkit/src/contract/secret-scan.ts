import { inspect } from 'node:util';

/** Where the suite saw each piece of text a secret could hide in. */
export interface ObservedText {
  /** e.g. `error from listHosts()`, `log line`, `snapshot ref`. */
  source: string;
  text: string;
}

/** Everything an error can show: message, stack, JSON, and each cause, inspected deeply. */
export function errorTexts(error: unknown): string[] {
  const texts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 10 && current !== undefined && current !== null; depth++) {
    if (current instanceof Error) {
      texts.push(current.message, current.stack ?? '');
    }
    current = (current as { cause?: unknown })?.cause;
  }
  texts.push(inspect(error, { depth: 12, showHidden: false }));
  try {
    texts.push(JSON.stringify(error) ?? '');
  } catch {
    // A cyclic error cannot be stored as JSON either; inspect covered it.
  }
  return texts;
}

/** Text forms of a returned value (host list, snapshot ref, status). */
export function valueTexts(value: unknown): string[] {
  const texts = [inspect(value, { depth: 12 })];
  try {
    texts.push(JSON.stringify(value) ?? '');
  } catch {
    // inspect covered it.
  }
  return texts;
}

/** The first observation that contains a secret, with the secret masked in the report. */
export function findLeaks(observed: readonly ObservedText[], secrets: readonly string[]): string[] {
  const leaks: string[] = [];
  for (const secret of secrets) {
    const forms = [
      secret,
      encodeURIComponent(secret),
      Buffer.from(secret).toString('base64').replace(/=+$/, ''),
    ];
    const hit = observed.find((o) => forms.some((form) => o.text.includes(form)));
    if (hit !== undefined) leaks.push(`a config secret (${mask(secret)}) appears in ${hit.source}`);
  }
  return leaks;
}

function mask(secret: string): string {
  return `${secret.length} characters, starting ${JSON.stringify(secret.slice(0, 2))}`;
}
