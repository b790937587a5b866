/**
 * The loss budget: how many acknowledged writes a drill may lose, per fault, and whether it did.
 * A clean stop and a planned switchover must lose nothing. A crash or a partition loses what the
 * replication mode allows: nothing with synchronous replication (it promises that), otherwise
 * the drill reports the numbers and fails only when given --max-lost-writes. Pure.
 */
import type { FaultKind } from './types.js';

/** What the primary's settings promise for a crash (read at the baseline). */
export interface ReplicationMode {
  synchronous_standby_names: string;
  synchronous_commit: string;
  /** Standbys in state sync or quorum right before the fault. */
  sync_standbys: string[];
}

export function promisesNoLoss(m: ReplicationMode | undefined): boolean {
  if (!m) return false;
  return m.synchronous_standby_names.trim() !== '' && ['on', 'remote_apply', 'remote_write'].includes(m.synchronous_commit) && m.sync_standbys.length > 0;
}

export function describeMode(m: ReplicationMode | undefined): string {
  if (!m) return 'unknown';
  if (!promisesNoLoss(m)) return `asynchronous (synchronous_standby_names '${m.synchronous_standby_names}', synchronous_commit ${m.synchronous_commit})`;
  return `synchronous (${m.synchronous_standby_names}; ${m.sync_standbys.join(', ')} in sync, synchronous_commit ${m.synchronous_commit})`;
}

export interface LossBudget {
  name: string;
  /** null: no limit, the loss is only reported. */
  max: number | null;
  lost: number;
  /** Where the limit comes from. */
  basis: string;
  ok: boolean;
  detail: string;
}

export interface BudgetInput {
  fault: FaultKind;
  /** --max-lost-writes, when given. */
  maxLostWrites?: number;
  mode?: ReplicationMode;
  /** Probe writes acknowledged and missing, outside the switchover window. */
  probeLostFault: number;
  /** Probe writes acknowledged and missing, inside the switchover window. */
  probeLostSwitchover: number;
  /** pgbench's committed minus pgbench_history (cannot be split by window: counted for the fault). */
  workloadLost?: number;
  /** The failback's divergence ledger, summarised, when there is one. */
  ledger?: string;
}

export function defaultBudget(fault: FaultKind, mode: ReplicationMode | undefined): { max: number | null; basis: string } {
  if (fault === 'stop') return { max: 0, basis: 'a clean stop ships every commit before it exits' };
  if (fault === 'lag') return { max: 0, basis: 'the primary stops cleanly; the lagging standby is never promoted' };
  if (promisesNoLoss(mode)) return { max: 0, basis: `synchronous replication promises it: ${describeMode(mode)}` };
  return { max: null, basis: `${describeMode(mode)}: a ${fault} may lose what was not replicated; reported, not judged (set --max-lost-writes to judge)` };
}

export function lossBudgets(i: BudgetInput): LossBudget[] {
  const def = defaultBudget(i.fault, i.mode);
  const max = i.maxLostWrites ?? def.max;
  const basis = i.maxLostWrites !== undefined ? `--max-lost-writes ${i.maxLostWrites}` : def.basis;
  const lost = i.probeLostFault + (i.workloadLost ?? 0);
  const parts = [`probe ${i.probeLostFault}`, ...(i.workloadLost !== undefined ? [`pgbench ${i.workloadLost}`] : []), ...(i.ledger ? [`ledger: ${i.ledger}`] : [])];
  return [
    {
      name: `lost writes (${i.fault})`,
      max,
      lost,
      basis,
      ok: max === null || lost <= max,
      detail: `${lost} lost (${parts.join(', ')}); budget ${max === null ? 'none' : max}: ${basis}`,
    },
    {
      name: 'lost writes (planned switchover)',
      max: 0,
      lost: i.probeLostSwitchover,
      basis: 'a planned switchover waits for the standby to have every commit',
      ok: i.probeLostSwitchover === 0,
      detail: `${i.probeLostSwitchover} lost; budget 0`,
    },
  ];
}
