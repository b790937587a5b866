/** Generic facts for runbook authors (PostgreSQL, NFS… facts live in their own modules). */
export { fact, onHost } from '../engine/define.js';
export * from './files.js';
export * from './system.js';
