import { type MockServer, type MockTimers, startMockServer } from '@syncproxy/testkit/mock';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';

interface State {
  hosts: string[];
}

const servers: MockServer<unknown>[] = [];
const agents: Agent[] = [];
afterEach(async () => {
  for (const agent of agents.splice(0)) await agent.close();
  for (const server of servers.splice(0)) await server.close();
});

async function start(options: { tls?: boolean; timers?: MockTimers } = {}): Promise<MockServer<State>> {
  const server = await startMockServer<State>({
    state: { hosts: ['vm-1', 'vm-2'] },
    routes: {
      'GET /v1/hosts': (_req, state) => ({ body: { hosts: state.hosts } }),
      'GET /v1/hosts/:id': (req, state) =>
        state.hosts.includes(req.params.id!)
          ? { body: { id: req.params.id } }
          : { status: 404, body: { error: 'no such host' } },
      'POST /v1/hosts': (req, state) => {
        state.hosts.push(req.json<{ id: string }>().id);
        return { status: 201, body: { ok: true } };
      },
      'GET /v1/blocks/*': (req) => ({ body: new Uint8Array(1000).fill(Number(req.params['*'])) }),
    },
    ...options,
  });
  servers.push(server as MockServer<unknown>);
  return server;
}

function agent(options: ConstructorParameters<typeof Agent>[0] = {}): Agent {
  const a = new Agent(options);
  agents.push(a);
  return a;
}

describe('startMockServer', () => {
  it('listens on 127.0.0.1, routes by method and path with params, and logs every call', async () => {
    const server = await start();
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const dispatcher = agent();
    const list = await request(`${server.url}/v1/hosts?page=2`, { dispatcher });
    expect(list.statusCode).toBe(200);
    expect(await list.body.json()).toEqual({ hosts: ['vm-1', 'vm-2'] });
    const created = await request(`${server.url}/v1/hosts`, {
      method: 'POST',
      body: JSON.stringify({ id: 'vm-3' }),
      dispatcher,
    });
    expect(created.statusCode).toBe(201);
    await created.body.dump();
    const one = await request(`${server.url}/v1/hosts/vm-3`, { dispatcher });
    expect(await one.body.json()).toEqual({ id: 'vm-3' });
    const missing = await request(`${server.url}/v1/nothing`, { dispatcher });
    expect(missing.statusCode).toBe(404);
    expect(await missing.body.json()).toEqual({ error: 'no route', method: 'GET', path: '/v1/nothing' });
    expect(server.state.hosts).toEqual(['vm-1', 'vm-2', 'vm-3']);
    expect(server.calls.map((c) => [c.method, c.path, c.query, c.route, c.status, c.requestBytes])).toEqual([
      ['GET', '/v1/hosts', '?page=2', 'GET /v1/hosts', 200, 0],
      ['POST', '/v1/hosts', '', 'POST /v1/hosts', 201, 13],
      ['GET', '/v1/hosts/vm-3', '', 'GET /v1/hosts/:id', 200, 0],
      ['GET', '/v1/nothing', '', undefined, 404, 0],
    ]);
  });

  it('serves bytes with the exact length', async () => {
    const server = await start();
    const res = await request(`${server.url}/v1/blocks/7`, { dispatcher: agent() });
    expect(res.headers['content-length']).toBe('1000');
    expect(new Uint8Array(await res.body.arrayBuffer())).toEqual(new Uint8Array(1000).fill(7));
  });

  it('injects a 5xx for the matching requests only, the given number of times', async () => {
    const server = await start();
    const fault = server.faults.add({
      kind: 'status',
      status: 503,
      path: '/v1/hosts',
      method: 'GET',
      skip: 1,
      times: 2,
    });
    const dispatcher = agent();
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await request(`${server.url}/v1/hosts`, { dispatcher });
      statuses.push(res.statusCode);
      await res.body.dump();
    }
    expect(statuses).toEqual([200, 503, 503, 200]);
    expect(fault.hits).toBe(2);
    expect(server.calls.map((c) => c.fault)).toEqual([undefined, 'status', 'status', undefined]);
  });

  it('answers throttled with 429 and Retry-After, or with a platform-specific status and body', async () => {
    const server = await start();
    const dispatcher = agent();
    const rule = server.faults.add({ kind: 'throttle', retryAfterSec: 3 });
    const res = await request(`${server.url}/v1/hosts`, { dispatcher });
    expect([res.statusCode, res.headers['retry-after'], await res.body.json()]).toEqual([
      429,
      '3',
      { error: 'throttled' },
    ]);
    rule.remove();
    server.faults.add({ kind: 'throttle', status: 400, body: { __type: 'ThrottlingException' }, times: 1 });
    const aws = await request(`${server.url}/v1/hosts`, { dispatcher });
    expect([aws.statusCode, await aws.body.json()]).toEqual([400, { __type: 'ThrottlingException' }]);
    const after = await request(`${server.url}/v1/hosts`, { dispatcher });
    expect(after.statusCode).toBe(200);
    await after.body.dump();
  });

  it('resets the connection without answering', async () => {
    const server = await start();
    server.faults.add({ kind: 'reset', path: '/v1/hosts', times: 1 });
    await expect(request(`${server.url}/v1/hosts`, { dispatcher: agent() })).rejects.toMatchObject({
      code: expect.stringMatching(/^(ECONNRESET|UND_ERR_SOCKET)$/),
    });
    expect(server.calls[0]).toMatchObject({ status: 0, fault: 'reset' });
  });

  it('truncates a body: announces the full length, sends part, drops the connection', async () => {
    const server = await start();
    server.faults.add({ kind: 'truncate', bytes: 100 });
    const res = await request(`${server.url}/v1/blocks/1`, { dispatcher: agent() });
    expect(res.headers['content-length']).toBe('1000');
    await expect(res.body.arrayBuffer()).rejects.toMatchObject({
      code: expect.stringMatching(/^(UND_ERR_SOCKET|ECONNRESET)$/),
    });
    expect(server.calls[0]).toMatchObject({ status: 200, fault: 'truncate', responseBytes: 1000 });
  });

  it('delays an answer by the latency fault, on an injected clock', async () => {
    const timers = new ManualTimers();
    const server = await start({ timers });
    server.faults.add({ kind: 'latency', ms: 30_000, times: 1 });
    let answered = false;
    const pending = request(`${server.url}/v1/hosts`, { dispatcher: agent() }).then((res) => {
      answered = true;
      return res;
    });
    const ms = await timers.scheduled();
    expect(ms).toBe(30_000);
    expect(answered).toBe(false);
    timers.fireAll();
    const res = await pending;
    expect(res.statusCode).toBe(200);
    await res.body.dump();
  });

  it('close() releases pending latency and open connections', async () => {
    const timers = new ManualTimers();
    const server = await start({ timers });
    server.faults.add({ kind: 'latency', ms: 60_000 });
    const pending = request(`${server.url}/v1/hosts`, { dispatcher: agent() });
    await timers.scheduled();
    await server.close();
    await expect(pending).rejects.toBeInstanceOf(Error);
    expect(timers.cleared).toBe(1);
    await server.close();
  });

  it('serves HTTPS with a certificate a client can trust by CA or by thumbprint', async () => {
    const server = await start({ tls: true });
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(server.tls?.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    const res = await request(`${server.url}/v1/hosts`, {
      dispatcher: agent({ connect: { ca: server.tls!.cert } }),
    });
    expect(await res.body.json()).toEqual({ hosts: ['vm-1', 'vm-2'] });
    await expect(request(`${server.url}/v1/hosts`, { dispatcher: agent() })).rejects.toMatchObject({
      code: 'DEPTH_ZERO_SELF_SIGNED_CERT',
    });
  });
});

/** A clock the test advances by hand. */
class ManualTimers implements MockTimers {
  readonly #timers = new Map<number, () => void>();
  #next = 1;
  #waiters: Array<(ms: number) => void> = [];
  cleared = 0;

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, callback);
    for (const w of this.#waiters.splice(0)) w(ms);
    return id;
  }

  clearTimeout(handle: unknown): void {
    if (this.#timers.delete(handle as number)) this.cleared++;
  }

  /** Resolves with the delay of the next timer set. */
  scheduled(): Promise<number> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  fireAll(): void {
    const all = [...this.#timers.values()];
    this.#timers.clear();
    for (const f of all) f();
  }
}
