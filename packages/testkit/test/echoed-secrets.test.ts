import { inspect } from 'node:util';
import { boundedString, defineConnector, PlatformApiError, secret, urlField } from '@syncproxy/core';
import { type MockServer, startMockServer } from '@syncproxy/testkit/mock';
import fc from 'fast-check';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';

// Issue 15 item 7, end to end: a platform that echoes the request in its error page, in each escaping,
// through a connector made by defineConnector. No form of the password may reach the caller or the logs.

const xml = (s: string) =>
  s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
const ECHOES: Record<string, (s: string) => string> = {
  'xml entities': xml,
  'html &#39;': (s) =>
    s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/'/g, '&#39;').replace(/"/g, '&#34;'),
  'json twice': (s) => JSON.stringify(JSON.stringify(s)),
  'url encoded': encodeURIComponent,
  'xml in json': (s) => JSON.stringify(xml(s)),
  'basic auth': (s) => Buffer.from(`admin:${s}`).toString('base64'),
};

let server: MockServer<unknown>;
beforeAll(async () => {
  server = await startMockServer<unknown>({
    state: {},
    routes: {
      'POST /login': (req) => {
        const { password } = req.json<{ password: string }>();
        const echo = ECHOES[req.query.get('echo') ?? '']!(password);
        return {
          status: 500,
          headers: { 'content-type': 'text/html' },
          body: `<html><body><h1>Internal error</h1><pre>request: ${echo}</pre></body></html>`,
        };
      },
    },
  });
});
afterAll(() => server.close());

function echoConnector(echo: string) {
  return defineConnector({
    id: 'echo-test',
    displayName: 'Echo test',
    version: '0.0.0',
    configSchema: z.object({
      url: urlField({ protocols: ['http'] }),
      password: secret(boundedString({ minChars: 1, maxChars: 256 })),
    }),
    async connect(config, { logger }) {
      const url = `${config.url}/login?echo=${encodeURIComponent(echo)}`;
      const res = await request(url, { method: 'POST', body: JSON.stringify({ password: config.password }) });
      const body = await res.body.text();
      logger.warn({ body }, `login refused: ${body}`);
      throw new PlatformApiError({
        operation: 'Login',
        method: 'POST',
        url,
        status: res.statusCode,
        body,
        message: `Login failed: ${body}`,
        cause: new Error(`server said ${body}`),
      });
    },
  });
}

const password = fc
  .array(fc.constantFrom(...'aZ09'.split(''), ...`'"&<>\\/%+= :#?@é€`.split('')), {
    minLength: 8,
    maxLength: 20,
  })
  .map((chars) => chars.join(''));

describe('secrets a platform echoes back', () => {
  for (const [name, escapeSecret] of Object.entries(ECHOES)) {
    it(`never reach errors or logs when echoed as ${name}`, async () => {
      const connector = echoConnector(name);
      await fc.assert(
        fc.asyncProperty(password, async (pw) => {
          const lines: string[] = [];
          const log = (...args: unknown[]) => {
            lines.push(...args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))));
          };
          const error = await connector
            .connect(
              { url: server.url, password: pw },
              { logger: { debug: log, info: log, warn: log, error: log } },
            )
            .then(
              () => undefined,
              (e: unknown) => e as PlatformApiError,
            );
          expect(error?.code).toBe('platform');
          const outputs = [
            error!.message,
            error!.stack ?? '',
            String(error!.body),
            JSON.stringify(error),
            inspect(error, { depth: 10 }),
            lines.join('\n'),
          ].join('\n');
          const form = escapeSecret(pw);
          const leaked = name === 'basic auth' ? form.replace(/=+$/, '') : form;
          expect(outputs.includes(pw) || outputs.includes(leaked)).toBe(false);
        }),
        { numRuns: 25 },
      );
    });
  }
});
