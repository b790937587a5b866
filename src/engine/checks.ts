/**
 * Probes and checks: verification is not a fact. A fact is a read-only observation and may be
 * cached; a probe may write (a marker, the read-only CREATE TABLE test, a WAL switch), is never
 * cached and never runs in --check. A check states what must hold, polled with an interval and a
 * deadline; when it does not hold the step fails with kind `verify` (exit 4). `blocked` (exit 8)
 * stays for guards.
 */
import { factEntries } from './gather.js';
import type { Fact, FactMap, FactSource, StepContext, StepDef } from './types.js';

/** A remote observation that may write. Never cached, skipped in --check. */
export function probe<T>(def: Omit<Fact<T>, 'cache' | 'probe'>): Fact<T> {
  return { ...def, cache: false, probe: true };
}

export function isProbe(src: FactSource<unknown>): boolean {
  const f = 'onHost' in src && 'fact' in src ? src.fact : (src as Fact<unknown>);
  return f.probe === true;
}

/** What holds (with what was seen), or what does not. */
export type CheckVerdict = { holds: true; message: string } | { holds: false; problems: string[] };

/** `true`, a message of what was seen ({ok}), a problem, or problems ([] = holds). */
export type CheckAnswer = true | { ok: string } | string | string[] | CheckVerdict;

export interface CheckDef<P, F, S = Record<string, never>> {
  /** What must hold, for messages: "pg2 streams from pg1". */
  name: string;
  /**
   * Read once per evaluation, before `gather`: probes whose results the polled facts need (e.g. the
   * LSN of a message written on the primary, which the standby must then replay).
   */
  prepare?: (ctx: StepContext<P>) => FactMap<S>;
  /** Read on every poll. */
  gather: (ctx: StepContext<P>, prepared: S) => FactMap<F>;
  holds: (facts: F, ctx: StepContext<P>, prepared: S) => CheckAnswer;
  /** Between polls (default 1000). */
  intervalMs?: number;
  /** Give up after (default 30 000; 0: evaluate once). */
  timeoutMs?: number;
}

export function verdictOf(name: string, a: CheckAnswer): CheckVerdict {
  if (a === true) return { holds: true, message: name };
  if (typeof a === 'string') return { holds: false, problems: [a] };
  if (Array.isArray(a)) return a.length ? { holds: false, problems: a } : { holds: true, message: name };
  if ('ok' in a) return { holds: true, message: a.ok };
  return a;
}

/** Whether a check's facts include probes (then it cannot run in --check). */
export function checkUsesProbes<P>(c: CheckDef<P, any, any>, ctx: StepContext<P>): boolean {
  if (c.prepare) return true;
  // gather's map shape does not depend on the prepared values: build it with an empty object.
  return factEntries(c.gather(ctx, {}) as FactMap<unknown>).some(([, , f]) => isProbe(f));
}

export interface CheckStepDef<P, F, S> extends CheckDef<P, F, S> {
  id: string;
  title: string;
  on?: StepDef<P, F>['on'];
  when?: StepDef<P, F>['when'];
  become?: boolean | string;
  tags?: string[];
  runOnce?: boolean;
}

/** A step that only checks: no change, ok when it holds, failed (verify, exit 4) when it does not by the deadline. */
export function defineCheck<P, F, S = Record<string, never>>(def: CheckStepDef<P, F, S>): StepDef<P, F> {
  const { id, title, on, when, become, tags, runOnce, ...check } = def;
  return {
    id,
    title,
    ...(on !== undefined ? { on } : {}),
    ...(when !== undefined ? { when } : {}),
    ...(become !== undefined ? { become } : {}),
    ...(tags !== undefined ? { tags } : {}),
    ...(runOnce !== undefined ? { runOnce } : {}),
    check: check as CheckDef<P, any, any>,
  };
}

/** `const { check } = checksFor<P>()`: F and S inferred from gather / prepare. */
export function checksFor<P>(): { check<F, S = Record<string, never>>(def: CheckStepDef<P, F, S>): StepDef<P, F>; checkDef<F, S = Record<string, never>>(def: CheckDef<P, F, S>): CheckDef<P, F, S> } {
  return { check: (def) => defineCheck(def), checkDef: (def) => def };
}

export const NOT_VERIFIED = 'not verified in check mode';
