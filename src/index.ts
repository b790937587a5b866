/** The public API for runbook authors: `import { defineRunbook, sh, sql, secret } from 'runbook'`. */
export * from './shell/index.js';
export * from './engine/types.js';
export { defineRunbook, stepsFor, param, noop, change, blocked, fact, onHost, perHost } from './engine/define.js';
export { exec, execOn, waitUntil, local, localCommand, later, choose, chooseOn, branch, guarded, done, fail, actionLines, viewAction, followsPlan } from './engine/actions.js';
export type { Action, ActionLike, ActionView, ExecAction, WaitAction, LocalAction, LocalIO, Later, Outputs, Picked, Branch, ChooseAction, GuardedAction, EndAction } from './engine/actions.js';
export { probe, defineCheck, checksFor, NOT_VERIFIED } from './engine/checks.js';
export type { CheckDef, CheckAnswer, CheckVerdict, CheckStepDef } from './engine/checks.js';
export type { StepResult, StepStatus, HostRecap } from './engine/results.js';
export * from './core/index.js';
export { ExitCode, RunbookError, BadInputError } from './errors.js';
