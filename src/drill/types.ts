/** What a drill records and what its report says. Times are epoch milliseconds. */

export type FaultKind = 'stop' | 'kill' | 'partition';

/** One write of the probe: sent, and acknowledged or failed. */
export interface ProbeSample {
  id: number;
  sentAt: number;
  /** When the server acknowledged the insert (commit returned). */
  ackAt?: number;
  /** Why it failed (connection refused, read-only, timeout …). */
  error?: string;
}

export interface PhaseRecord {
  name: string;
  startedAt: number;
  endedAt: number;
  ok: boolean;
  detail?: string;
}

export interface ExitCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface DrillMeasures {
  /** Fault → first acknowledged write after the outage began; null when writes never came back. */
  rto_ms: number | null;
  /** Longest gap between acknowledged writes during the planned switchover back. */
  switchover_outage_ms: number | null;
  /** Acknowledged writes missing on the final primary. */
  rpo_lost_writes: number;
  /** Up to 50 of the missing ids, for the report. */
  lost_ids: number[];
  /** Acknowledged writes that went missing during the switchover (must be 0). */
  switchover_lost_writes: number;
  probe_writes: number;
  probe_acknowledged: number;
  probe_failed: number;
}

export interface DrillReport extends DrillMeasures {
  version: 1;
  fault: FaultKind;
  started_at: string;
  finished_at: string;
  ok: boolean;
  /** Why the drill failed, when it did. */
  failure?: string;
  primary_before: string;
  primary_after_failover?: string;
  primary_final?: string;
  service_address: string;
  lag_before_fault_bytes: number | null;
  fault_at: number;
  phases: PhaseRecord[];
  exit_checks: ExitCheck[];
  /** Every runbook step's duration, "runbook/step@host" → ms. */
  step_timings: Record<string, number>;
  samples: ProbeSample[];
}
