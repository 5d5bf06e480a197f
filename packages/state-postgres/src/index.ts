export { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';
export type { PostgresStateStoreOptions } from './options.js';
export { createPostgresStateStore, type PostgresStateStore } from './postgres-store.js';
