/** The public API for runbook authors: `import { defineRunbook, sh, sql, secret } from 'runbook'`. */
export * from './shell/index.js';
export * from './engine/types.js';
export { ExitCode, RunbookError, BadInputError } from './errors.js';
