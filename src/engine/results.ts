/** What each step@host ends as, and the one exit code of a run. */
import { ExitCode } from '../errors.js';
import type { ActionView } from './actions.js';

/** `unverified`: a check that --check cannot run (it needs probes, or earlier steps would change first). */
export type StepStatus = 'ok' | 'changed' | 'would-change' | 'skipped' | 'unverified' | 'failed' | 'unreachable' | 'blocked';

/** Why a failed step failed; each maps to its own exit code. */
export type FailureKind = 'step' | 'verify' | 'confirmation' | 'interrupted' | 'input';

export interface StepFailure {
  kind: FailureKind;
  message: string;
  /** The command that failed (masked), its exit code and the tail of its stderr. */
  command?: string;
  exitCode?: number | null;
  stderrTail?: string;
}

export interface StepResult {
  stepId: string;
  title: string;
  host: string;
  status: StepStatus;
  /** Plan summary or noop / skip / block reason. */
  message: string;
  /** Actions planned (check) or started (apply), one line each (actions.ts actionLine), masked. */
  commands: string[];
  /** The same actions as data. */
  actions?: ActionView[];
  /** The step has a hand-written apply: what it runs is only known as it runs. */
  ownApply?: boolean;
  diff?: string;
  /** Structured findings of the plan (ChangePlan/BlockedPlan/NoopPlan data), masked in reports. */
  data?: Record<string, unknown>;
  failure?: StepFailure;
  durationMs: number;
  handler?: boolean;
}

export interface HostRecap {
  host: string;
  ok: number;
  changed: number;
  wouldChange: number;
  skipped: number;
  unverified: number;
  failed: number;
  unreachable: number;
  blocked: number;
}

export function recap(results: StepResult[], hosts: string[]): HostRecap[] {
  const by = new Map<string, HostRecap>(
    hosts.map((h) => [h, { host: h, ok: 0, changed: 0, wouldChange: 0, skipped: 0, unverified: 0, failed: 0, unreachable: 0, blocked: 0 }]),
  );
  for (const r of results) {
    let row = by.get(r.host);
    if (!row) by.set(r.host, (row = { host: r.host, ok: 0, changed: 0, wouldChange: 0, skipped: 0, unverified: 0, failed: 0, unreachable: 0, blocked: 0 }));
    const key = r.status === 'would-change' ? 'wouldChange' : r.status;
    row[key] += 1;
  }
  return [...by.values()];
}

/**
 * One exit code per run, the most serious outcome winning:
 *   interrupted (130) > unreachable (5) > blocked (8) > bad input (2: a value no command can carry)
 *   > confirmation (6) > verifyFailed (4)
 *   > stepFailed (3) > changesPending (7, check mode only) > ok (0).
 * Why this order: a run cut short or a host never reached says least about the hosts' state, so
 * those outrank everything; a safety guard and a missing approval stopped the run on purpose before
 * acting; a verification failure means a change was applied but did not hold, which is worse than a
 * command that failed outright; pending changes are only information.
 */
export function exitCodeOf(results: StepResult[], opts: { checkMode: boolean; interrupted: boolean }): number {
  if (opts.interrupted || results.some((r) => r.failure?.kind === 'interrupted')) return ExitCode.interrupted;
  if (results.some((r) => r.status === 'unreachable')) return ExitCode.unreachable;
  if (results.some((r) => r.status === 'blocked')) return ExitCode.blocked;
  if (results.some((r) => r.failure?.kind === 'input')) return ExitCode.badInput;
  if (results.some((r) => r.failure?.kind === 'confirmation')) return ExitCode.confirmation;
  if (results.some((r) => r.failure?.kind === 'verify')) return ExitCode.verifyFailed;
  if (results.some((r) => r.status === 'failed')) return ExitCode.stepFailed;
  if (opts.checkMode && results.some((r) => r.status === 'would-change')) return ExitCode.changesPending;
  return ExitCode.ok;
}
