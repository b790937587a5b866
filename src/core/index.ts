/** Generic building blocks for runbook authors: facts and ops on files, services, commands, waits.
 * Domain modules (src/modules/*) build on these; nothing here imports a module. */
export { fact, onHost } from '../engine/define.js';
export * from './file-facts.js';
export * from './system.js';
export * from './key-values.js';
export * from './file-ops.js';
export * from './service.js';
export * from './command-op.js';
export * from './wait.js';
