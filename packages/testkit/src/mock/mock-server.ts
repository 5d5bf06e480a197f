import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { type ActiveFault, type Fault, FaultInjector, type FaultKind, type FaultRule } from './faults.js';
import { type MockCertificate, mockCertificate } from './tls-certificate.js';

/** A request as a route handler sees it. */
export interface MockRequest {
  method: string;
  /** The path without the query string. */
  path: string;
  url: URL;
  /** Values of `:name` segments, and `*` for a trailing wildcard. */
  params: Record<string, string>;
  query: URLSearchParams;
  headers: Record<string, string | string[] | undefined>;
  body: Uint8Array;
  text(): string;
  json<T = unknown>(): T;
}

/** A handler's answer. A `body` that is neither a string nor bytes is sent as JSON. */
export interface MockResponse {
  status?: number;
  headers?: Record<string, string | string[]>;
  body?: unknown;
}

export type RouteHandler<State> = (
  request: MockRequest,
  state: State,
) => MockResponse | Promise<MockResponse>;

/**
 * Routes keyed by `'METHOD /path'`: `:name` matches one segment, a trailing
 * `*` the rest, and `*` as the method any method.
 * @example { 'GET /v1/hosts': list, 'GET /v1/disks/:id/blocks/:index': block, '* /health': ok }
 */
export type RouteTable<State> = Record<string, RouteHandler<State>>;

/** One entry of a mock server's request log. */
export interface RecordedCall {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string | string[] | undefined>;
  /** The route key that answered, if one did. */
  route?: string;
  /** The status sent; 0 when the connection was reset before an answer. */
  status: number;
  requestBytes: number;
  /** The body length the answer announced. */
  responseBytes: number;
  /** The terminal fault applied, if any. */
  fault?: FaultKind;
}

export interface MockServerOptions<State> {
  routes: RouteTable<State>;
  state: State;
  /** Serve HTTPS with a self-signed certificate for 127.0.0.1 (`tls` in the result says how to trust it). */
  tls?: boolean;
  /** The answer for a request no route matches. Default 404 `{ error: 'no route', method, path }`. */
  notFound?: RouteHandler<State>;
  /** The clock latency faults wait on; tests inject one to release requests without sleeping. */
  timers?: MockTimers;
}

/** Where latency faults get their timers: the global ones by default. */
export interface MockTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: MockTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** A running mock platform server, on 127.0.0.1 and a free port. */
export interface MockServer<State> {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  readonly port: number;
  /** The platform's state: a back door for arranging and asserting (snapshots left, bytes served). */
  readonly state: State;
  /** Every request, in arrival order. */
  readonly calls: RecordedCall[];
  readonly faults: {
    add(rule: FaultRule): ActiveFault;
    clear(): void;
  };
  /** Present for `tls: true`. */
  readonly tls: MockCertificate | undefined;
  /** Stops listening, drops every connection and pending latency. Safe to call twice. */
  close(): Promise<void>;
}

interface CompiledRoute<State> {
  key: string;
  method: string;
  pattern: RegExp;
  names: string[];
  handler: RouteHandler<State>;
}

/**
 * Starts a real HTTP(S) server on loopback for a connector's mock platform.
 * undici's own API is invisible to msw, so mocks are servers, not interceptors.
 */
export async function startMockServer<State>(options: MockServerOptions<State>): Promise<MockServer<State>> {
  const routes = compileRoutes(options.routes);
  const injector = new FaultInjector();
  const calls: RecordedCall[] = [];
  const timers = options.timers ?? realTimers;
  const pending = new Set<{ timer: unknown; resolve: () => void }>();
  const sockets = new Set<Socket>();
  const certificate = options.tls ? await mockCertificate() : undefined;
  let closed = false;

  const delay = (ms: number, response: ServerResponse): Promise<void> =>
    new Promise((resolve) => {
      const entry = {
        timer: timers.setTimeout(() => {
          pending.delete(entry);
          response.off('close', done);
          resolve();
        }, ms),
        resolve,
      };
      const done = (): void => {
        timers.clearTimeout(entry.timer);
        pending.delete(entry);
        resolve();
      };
      // The response closes early only when the client goes away.
      response.once('close', done);
      pending.add(entry);
    });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = (req.method ?? 'GET').toUpperCase();
    const body = await readBody(req);
    const call: RecordedCall = {
      method,
      path: url.pathname,
      query: url.search,
      headers: { ...req.headers },
      status: 0,
      requestBytes: body.length,
      responseBytes: 0,
    };
    calls.push(call);

    const faults = injector.take({ method, path: url.pathname, headers: req.headers });
    let terminal: Fault | undefined;
    for (const fault of faults) {
      if (fault.kind === 'latency') await delay(fault.ms, res);
      else terminal = fault;
    }
    if (closed || req.socket.destroyed) return;
    if (terminal !== undefined) call.fault = terminal.kind;
    if (terminal?.kind === 'reset') {
      resetSocket(req.socket);
      return;
    }
    if (terminal?.kind === 'status') {
      send(res, call, {
        status: terminal.status,
        headers: terminal.headers,
        body: terminal.body ?? { error: `injected HTTP ${terminal.status}` },
      });
      return;
    }
    if (terminal?.kind === 'throttle') {
      const headers: Record<string, string> = {
        'retry-after': String(terminal.retryAfterSec ?? 1),
        ...terminal.headers,
      };
      send(res, call, {
        status: terminal.status ?? 429,
        headers,
        body: terminal.body ?? { error: 'throttled' },
      });
      return;
    }

    const request: MockRequest = {
      method,
      path: url.pathname,
      url,
      params: {},
      query: url.searchParams,
      headers: req.headers,
      body,
      text: () => Buffer.from(body).toString('utf8'),
      json: <T>() => JSON.parse(Buffer.from(body).toString('utf8')) as T,
    };
    let answer: MockResponse;
    const route = match(routes, method, url.pathname, request.params);
    try {
      if (route !== undefined) call.route = route.key;
      answer = route
        ? await route.handler(request, options.state)
        : options.notFound
          ? await options.notFound(request, options.state)
          : { status: 404, body: { error: 'no route', method, path: url.pathname } };
    } catch (error) {
      answer = {
        status: 500,
        body: { error: 'mock handler failed', message: (error as Error)?.message ?? String(error) },
      };
    }
    if (closed || req.socket.destroyed) return;
    if (terminal?.kind === 'truncate') {
      const bytes = encodeBody(answer.body);
      const keep = Math.min(terminal.bytes ?? Math.floor(bytes.length / 2), Math.max(0, bytes.length - 1));
      call.status = answer.status ?? 200;
      call.responseBytes = bytes.length;
      res.writeHead(call.status, {
        ...contentType(answer.body),
        ...answer.headers,
        'content-length': String(bytes.length),
      });
      res.flushHeaders();
      res.write(bytes.subarray(0, keep), () => resetSocket(req.socket));
      return;
    }
    send(res, call, answer);
  };

  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'mock server failed', message: (error as Error)?.message }));
      }
    });
  };
  const server: Server = certificate
    ? createHttpsServer({ key: certificate.key, cert: certificate.cert }, listener)
    : createHttpServer(listener);
  // Idle keep-alive connections stay open until the client closes them: a connector
  // that leaves sockets behind is then caught however slow the machine is.
  server.keepAliveTimeout = 0;
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('secureConnection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;

  return {
    url: `${certificate ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    state: options.state,
    calls,
    faults: { add: (rule) => injector.add(rule), clear: () => injector.clear() },
    tls: certificate,
    close() {
      closing ??= new Promise<void>((resolve) => {
        closed = true;
        for (const entry of pending) {
          timers.clearTimeout(entry.timer);
          entry.resolve();
        }
        pending.clear();
        server.close(() => resolve());
        server.closeAllConnections();
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}

function compileRoutes<State>(table: RouteTable<State>): CompiledRoute<State>[] {
  return Object.entries(table).map(([key, handler]) => {
    const space = key.indexOf(' ');
    if (space <= 0) throw new Error(`route ${JSON.stringify(key)} must look like 'GET /path'`);
    const method = key.slice(0, space).toUpperCase();
    const path = key.slice(space + 1).trim();
    const names: string[] = [];
    const source = path
      .split('/')
      .map((segment, i, all) => {
        if (segment === '*' && i === all.length - 1) {
          names.push('*');
          return '(.*)';
        }
        if (segment.startsWith(':')) {
          names.push(segment.slice(1));
          return '([^/]+)';
        }
        return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      })
      .join('/');
    return { key, method, pattern: new RegExp(`^${source}$`), names, handler };
  });
}

function match<State>(
  routes: CompiledRoute<State>[],
  method: string,
  path: string,
  params: Record<string, string>,
): CompiledRoute<State> | undefined {
  for (const route of routes) {
    if (route.method !== '*' && route.method !== method) continue;
    const m = route.pattern.exec(path);
    if (!m) continue;
    route.names.forEach((name, i) => {
      params[name] = decodeURIComponent(m[i + 1] ?? '');
    });
    return route;
  }
  return undefined;
}

function send(res: ServerResponse, call: RecordedCall, answer: MockResponse): void {
  const bytes = encodeBody(answer.body);
  call.status = answer.status ?? 200;
  call.responseBytes = bytes.length;
  res.writeHead(call.status, {
    ...contentType(answer.body),
    ...answer.headers,
    'content-length': String(bytes.length),
  });
  res.end(bytes);
}

function encodeBody(body: unknown): Uint8Array {
  if (body === undefined) return new Uint8Array(0);
  if (body instanceof Uint8Array) return body;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  return Buffer.from(JSON.stringify(body), 'utf8');
}

function contentType(body: unknown): Record<string, string> {
  if (body === undefined) return {};
  if (body instanceof Uint8Array) return { 'content-type': 'application/octet-stream' };
  if (typeof body === 'string') return { 'content-type': 'text/plain; charset=utf-8' };
  return { 'content-type': 'application/json' };
}

async function readBody(req: IncomingMessage): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/** A TCP RST where the platform would reset; a plain destroy where Node cannot. */
function resetSocket(socket: Socket): void {
  const withReset = socket as Socket & { resetAndDestroy?: () => void };
  try {
    if (typeof withReset.resetAndDestroy === 'function' && !socket.destroyed) {
      withReset.resetAndDestroy();
      return;
    }
  } catch {
    // TLS sockets have no TCP handle of their own to reset.
  }
  socket.destroy();
}
