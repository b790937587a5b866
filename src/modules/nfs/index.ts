/** `runbook/nfs`: the nfs module's params, facts and steps, for runbook authors. */
export * from './facts.js';
export * from './nfs.js';
