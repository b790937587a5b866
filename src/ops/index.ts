/** Generic building blocks for runbook authors (PostgreSQL, NFS… ops live in their own modules). */
export * from './files.js';
export * from './service.js';
export * from './command.js';
export * from './wait.js';
