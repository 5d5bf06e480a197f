// NBD client
export {
  connectNbd,
  MAX_NBD_CONNECTIONS,
  NbdClient,
  type NbdClientOptions,
  type NbdExportInfo,
  type NbdExtent,
  type NbdRequestOptions,
  type NbdWriteOptions,
  type NbdWriteZeroesOptions,
} from './client.js';
export { nbdErrnoName } from './nbd-error.js';
export { formatNbdUri, NBD_DEFAULT_PORT, type NbdAddress, type NbdTarget, parseNbdUri } from './nbd-uri.js';
export { STATE_HOLE as NBD_STATE_HOLE, STATE_ZERO as NBD_STATE_ZERO } from './protocol.js';

// Block source and block sink
export { NbdReadThreadPool, type NbdReadThreadPoolOptions } from './read-threads.js';
export { NbdReader, type NbdReaderOptions } from './reader.js';
export { NbdSink, type NbdSinkOptions } from './sink.js';
