import {
  collectSecrets,
  createJsonLogger,
  defineConnector,
  type Logger,
  REDACTED,
  redact,
  SyncproxyError,
  secret,
  toJSONSchema,
} from '@syncproxy/core';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';

const configSchema = z.object({
  authUrl: z.string().url().describe('https://<vCenter or ESXi>:443'),
  user: z.string().min(1),
  password: secret(z.string().min(1)).describe('Password of the user'),
  region: z.string().default('us-east-1'),
  clusters: z
    .array(z.object({ monitors: z.string(), keyring: secret(z.string()), pool: z.string() }))
    .optional(),
});

describe('config schemas', () => {
  it('gives the JSON Schema of the form with secret fields marked writeOnly and x-secret', () => {
    const schema = toJSONSchema(configSchema);
    expect(schema).toEqual({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      properties: {
        authUrl: { type: 'string', format: 'uri', description: 'https://<vCenter or ESXi>:443' },
        user: { type: 'string', minLength: 1 },
        password: {
          type: 'string',
          minLength: 1,
          writeOnly: true,
          'x-secret': true,
          description: 'Password of the user',
        },
        region: { type: 'string', default: 'us-east-1' },
        clusters: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              monitors: { type: 'string' },
              keyring: { type: 'string', writeOnly: true, 'x-secret': true },
              pool: { type: 'string' },
            },
            required: ['monitors', 'keyring', 'pool'],
          },
        },
      },
      required: ['authUrl', 'user', 'password'],
    });
  });

  it('collects the secret values of a config, nested ones included', () => {
    const secrets = collectSecrets(configSchema, {
      authUrl: 'https://vc.local',
      user: 'admin',
      password: 'pa55-word!',
      clusters: [{ monitors: 'm1', keyring: 'AQBkeyring==', pool: 'volumes' }],
    });
    expect(secrets.sort()).toEqual(['AQBkeyring==', 'pa55-word!']);
  });

  it('redacts secret-named fields and known secret strings from values', () => {
    expect(
      redact({ user: 'u', secretAccessKey: 'abc', nested: { note: 'token is zz-top-secret' } }, [
        'zz-top-secret',
      ]),
    ).toEqual({ user: 'u', secretAccessKey: REDACTED, nested: { note: `token is ${REDACTED}` } });
  });
});

describe('secrets never leak through a connector', () => {
  const SECRET = 'Sup3r$ecret-Passw0rd';

  const leaky = defineConnector({
    id: 'leaky',
    displayName: 'Leaky',
    version: '0.0.1',
    configSchema,
    async connect(config, context) {
      context.logger.info(
        { password: config.password },
        `logging in as ${config.user} with ${config.password}`,
      );
      const inner = new Error(`server said: bad password ${config.password}`);
      (inner as NodeJS.ErrnoException).code = 'EBADPASS';
      throw new SyncproxyError(`login to ${config.authUrl} failed for ${config.password}`, {
        code: 'auth',
        cause: new Error(`wrapped ${encodeURIComponent(config.password)}`, { cause: inner }),
        details: { attempted: config.password },
      });
    },
  });

  it('keeps the secret out of the message, stack, cause chain, details and JSON of the thrown error', async () => {
    const lines: string[] = [];
    const logger: Logger = createJsonLogger({ level: 'debug', write: (l) => lines.push(l) });
    const error = await leaky
      .connect({ authUrl: 'https://vc.local', user: 'admin', password: SECRET }, { logger })
      .catch((e: unknown) => e);
    expect(SyncproxyError.isInstance(error)).toBe(true);
    const e = error as SyncproxyError;
    expect(e.code).toBe('auth');
    expect(e.platform).toBe('leaky');
    expect(e.message).toBe(`login to https://vc.local failed for ${REDACTED}`);
    const everything = [
      e.message,
      e.stack,
      JSON.stringify(e),
      JSON.stringify(e.details),
      String((e.cause as Error).message),
      String((e.cause as Error).stack),
      String(((e.cause as Error).cause as Error).message),
      String(((e.cause as Error).cause as Error).stack),
      ...lines,
    ].join('\n');
    expect(everything).not.toContain(SECRET);
    expect(everything).not.toContain(encodeURIComponent(SECRET));
    expect(((e.cause as Error).cause as NodeJS.ErrnoException).code).toBe('EBADPASS');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      level: 'info',
      message: `logging in as admin with ${REDACTED}`,
      password: REDACTED,
    });
  });

  it('maps a stray (non-SDK) error to a redacted internal SyncproxyError', async () => {
    const stray = defineConnector({
      id: 'stray',
      displayName: 'Stray',
      version: '0.0.1',
      configSchema,
      async connect(config) {
        throw new TypeError(`cannot read ${config.password}`);
      },
    });
    const error = (await stray
      .connect({ authUrl: 'https://vc.local', user: 'a', password: SECRET })
      .catch((e: unknown) => e)) as SyncproxyError;
    expect(error.code).toBe('internal');
    expect(error.retryable).toBe(false);
    expect(error.message).toBe(`connect failed: cannot read ${REDACTED}`);
    expect(JSON.stringify(error) + error.stack + String((error.cause as Error).stack)).not.toContain(SECRET);
  });

  it('rejects bad config with a config error naming each field, without echoing values', async () => {
    const error = (await leaky
      .connect({ authUrl: 'not a url', user: '', password: 42 })
      .catch((e: unknown) => e)) as SyncproxyError;
    expect(error.code).toBe('config');
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(/^invalid leaky config: authUrl: .+; user: .+; password: .+$/);
    expect((error.details!.issues as { path: string }[]).map((i) => i.path)).toEqual([
      'authUrl',
      'user',
      'password',
    ]);
    expect(error.message).not.toContain('42');
  });
});
