/** `runbook/vip`: the vip module's params, facts and steps, for runbook authors. */
export * from './facts.js';
export * from './vip.js';
