/** `runbook/filesync`: the filesync module's params, facts and steps, for runbook authors. */
export * from './facts.js';
export * from './render.js';
export * from './spec.js';
export * from './steps.js';
