export {
  MIGRATIONS,
  type Migration,
  SCHEMA_VERSION,
} from './migrations.js';
export type { PostgresStateStoreOptions } from './options.js';
export { createPostgresStateStore, type PostgresStateStore } from './postgres-store.js';
