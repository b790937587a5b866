/** The public API for runbook authors: `import { defineRunbook, sh, sql, secret } from 'runbook'`. */
export * from './shell/index.js';
export * from './engine/types.js';
export { defineRunbook, stepsFor, param, noop, change, blocked, fact, onHost } from './engine/define.js';
export type { StepResult, StepStatus, HostRecap } from './engine/results.js';
export * from './core/index.js';
export { ExitCode, RunbookError, BadInputError } from './errors.js';
