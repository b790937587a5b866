/** What a drill records and what its report says. Times are epoch milliseconds. */
import type { LossBudget, ReplicationMode } from './budget.js';
import type { GuardLog } from './partition.js';
import type { DrillLedger } from './ledger.js';
import type { WorkloadResult } from './workload.js';

export type FaultKind = 'stop' | 'kill' | 'partition' | 'lag';

/** A moment on the timeline: the fault, the promotion, the switchover, the link's return. */
export interface Marker {
  name: string;
  at: number;
  detail?: string;
}

/** A stretch without any acknowledged probe write: from the last ack before to the first after. */
export interface WriteGap {
  from: number;
  to: number;
}

/** How the old primary was proved dead or fenced before the promotion (the failover's words). */
export interface FenceEvidence {
  /** down-ssh-pgctl | refused-port | fence-command | approved-unfenced | unknown */
  verdict: string;
  detail: string;
}

export interface PartitionRecord {
  tool: string;
  addresses: string[];
  guard: string;
  deadline: string;
  /** From the guard's own log on the host. */
  log?: GuardLog;
  cut_verified?: string;
  restored_verified?: string;
}

export interface LagRecord {
  standby: string;
  /** received − replayed on the lagging standby when the primary was stopped. */
  lag_bytes: number | null;
  refused?: string;
  promoted?: string;
}

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
  version: 2;
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
  /** The probe's interval, for the timeline. */
  probe_interval_ms?: number;
  markers: Marker[];
  write_gaps: WriteGap[];
  replication_mode?: ReplicationMode & { promises_no_loss: boolean };
  budgets: LossBudget[];
  workload?: WorkloadResult;
  fence?: FenceEvidence;
  partition?: PartitionRecord;
  lag?: LagRecord;
  /** The failback's divergence ledger: what the rejoined nodes had past the divergence, discarded by the rejoin. */
  ledger?: DrillLedger;
  /** Faults asked for that cannot be done safely, and why. */
  notes?: string[];
}
