/**
 * The entry of one NBD read thread (see read-threads.ts): a client per reader, each with its
 * own connections, reading into views of the readers' SharedArrayBuffers. Built as its own
 * file (dist/read-worker.js); the package's index never imports it.
 */
import { parentPort } from 'node:worker_threads';
import { toSyncproxyError } from '@syncproxy/core';
import { NbdClient } from './client.js';
import type { ReadThreadReply, ReadThreadRequest } from './read-threads.js';

const port = parentPort;
if (port) serve(port);

function serve(port: NonNullable<typeof parentPort>): void {
  const send = (reply: ReadThreadReply) => port.postMessage(reply);
  const clients = new Map<number, NbdClient>();
  const opening = new Map<number, Promise<NbdClient | undefined>>();
  const aborts = new Map<number, AbortController>();
  const failed = (error: unknown) => toSyncproxyError(error).toJSON();

  port.on('message', (request: ReadThreadRequest) => {
    switch (request.type) {
      case 'open': {
        const { client: id } = request;
        const connected = NbdClient.connect(request.options).then(
          (client) => {
            opening.delete(id);
            clients.set(id, client);
            send({
              type: 'opened',
              client: id,
              sizeBytes: client.size,
              connections: client.info.connections,
              warnings: client.warnings,
            });
            return client;
          },
          (error: unknown) => {
            opening.delete(id);
            send({ type: 'failed', client: id, error: failed(error) });
            return undefined;
          },
        );
        opening.set(id, connected);
        break;
      }
      case 'read': {
        const client = clients.get(request.client);
        if (client === undefined) {
          const error = new Error(`NBD read thread has no open client ${request.client}`);
          send({ type: 'done', id: request.id, error: failed(error) });
          break;
        }
        let signal: AbortSignal | undefined;
        if (request.abortable) {
          const controller = new AbortController();
          aborts.set(request.id, controller);
          signal = controller.signal;
        }
        const target = new Uint8Array(request.buffer, request.byteOffset, request.length);
        client.readInto(target, request.offset, { signal }).then(
          () => {
            if (signal) aborts.delete(request.id);
            send({ type: 'done', id: request.id });
          },
          (error: unknown) => {
            if (signal) aborts.delete(request.id);
            send({ type: 'done', id: request.id, error: failed(error) });
          },
        );
        break;
      }
      case 'abort':
        aborts.get(request.id)?.abort();
        break;
      case 'close': {
        const { client: id } = request;
        const client = clients.get(id);
        clients.delete(id);
        const closing = client
          ? client.close()
          : opening.get(id)?.then((c) => {
              clients.delete(id);
              return c?.close();
            });
        Promise.resolve(closing)
          .catch(() => {})
          .finally(() => send({ type: 'closed', client: id }));
        break;
      }
    }
  });
}
