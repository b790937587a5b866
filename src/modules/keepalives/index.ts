/** `runbook/keepalives`: the keepalives module's params, facts and steps, for runbook authors. */
export * from './facts.js';
export * from './keepalives.js';
