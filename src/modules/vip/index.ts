/** `runbook/vip`: the vip module's params, facts and steps, for runbook authors. */
export * from './facts.js';
export * from './vip.js';
/** What keepalived.conf cannot take in a word (for the VIP's params). */
export { keepalivedWordProblem } from '../../shell/config-text.js';
