// The bare server of the `aws-http-floor` reference row (bench/run.ts), in a process of its own as
// the mock is: every GET waits the same added latency, then answers 512 KiB with a content length,
// and nothing else (no signature check, no routing, no disk). Prints its port as one line and
// stops when its stdin closes. Arguments: the latency in ms.
import { createServer } from 'node:http';

const BLOCK = 524_288;
const latencyMs = Number(process.argv[2] ?? 10);
const block = Buffer.alloc(BLOCK, 0x5a);

const server = createServer((_request, response) => {
  setTimeout(() => {
    response.writeHead(200, { 'content-length': BLOCK, 'content-type': 'application/octet-stream' });
    response.end(block);
  }, latencyMs);
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${typeof address === 'object' && address !== null ? address.port : 0}\n`);
});
process.stdin.resume();
process.stdin.on('end', () => {
  server.closeAllConnections();
  server.close();
});
