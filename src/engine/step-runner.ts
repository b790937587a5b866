/**
 * One step on one host: when → gather → plan (pure) → [gate, in the scheduler] → apply → verify.
 * Split in two halves so the scheduler can ask for confirmation between them, once per step.
 */
import { BadInputError, ExitCode, RunbookError, UnreachableError } from '../errors.js';
import { CLOSED_BY_RUNBOOK } from '../transport/types.js';
import type { Command } from '../shell/command.js';
import { maskDeep, maskSecrets } from '../shell/secret.js';
import { CommandFailedError, type ExecOptions } from '../transport/types.js';
import type { TaskIO } from '../ui/types.js';
import { type ActionView, actionLine, viewAction } from './actions.js';
import { type CheckDef, NOT_VERIFIED, checkUsesProbes, isProbe, verdictOf } from './checks.js';
import type { Engine } from './context.js';
import { change } from './define.js';
import { factEntries, gatherFacts, isRemote } from './gather.js';
import { sendAlongside, servedAhead } from './alongside.js';
import { type ActionEnv, runActions } from './interpreter.js';
import { poll } from './poll.js';
import type { FailureKind, StepResult } from './results.js';
import type { ApplyContext, ChangePlan, FactMap, FactSource, Plan, StepContext, StepDef } from './types.js';

type AnyStep = StepDef<any, any>;

/** A step checked on a host: either finished (ok, skipped, blocked, failed…) or a pending change. */
export type Checked =
  | { done: StepResult }
  | { pending: { plan: ChangePlan; facts: unknown; ctx: StepContext<any>; started: number } };

const DEFAULT_APPLY_TIMEOUT_SEC = 600;

export function stepContext(engine: Engine, host: string): StepContext<any> {
  let state = engine.state.get(host);
  if (!state) engine.state.set(host, (state = {}));
  return { ...engine.run, host: engine.hostByName(host), state, approvedByName: (id: string) => engine.options.approvals.steps.has(id), pendingChanges: () => [...(engine.wouldChange ?? [])] };
}

function result(step: AnyStep, host: string, started: number, r: Omit<StepResult, 'stepId' | 'title' | 'host' | 'durationMs' | 'commands'> & { commands?: string[] }): StepResult {
  return { stepId: step.id, title: step.title, host, durationMs: Date.now() - started, commands: [], ...r, message: maskSecrets(r.message) };
}

/** Map an error to the result it ends the step with. */
export function failureResult(step: AnyStep, host: string, started: number, error: unknown, kind: FailureKind = 'step'): StepResult {
  const closedByUs = error instanceof UnreachableError && error.reason === CLOSED_BY_RUNBOOK;
  if (error instanceof UnreachableError && !closedByUs) return result(step, host, started, { status: 'unreachable', message: error.reason });
  // A guard that could only decide inside apply (evidence read then) still blocks: exit 8.
  if (error instanceof RunbookError && error.exitCode === ExitCode.blocked) return result(step, host, started, { status: 'blocked', message: maskSecrets(error.message) });
  if (error instanceof BadInputError) return result(step, host, started, { status: 'failed', message: maskSecrets(error.message), failure: { kind: 'input', message: maskSecrets(error.message) } });
  if (closedByUs || (error instanceof RunbookError && error.exitCode === ExitCode.interrupted))
    return result(step, host, started, { status: 'failed', message: 'interrupted', failure: { kind: 'interrupted', message: 'interrupted' } });
  const message = maskSecrets(error instanceof Error ? error.message : String(error));
  if (error instanceof CommandFailedError) {
    const r = error.result;
    return result(step, host, started, {
      status: 'failed',
      message,
      failure: { kind, message, command: r.command, exitCode: r.exitCode, stderrTail: r.stderr.trim().split('\n').slice(-10).join('\n') },
    });
  }
  return result(step, host, started, { status: 'failed', message, failure: { kind, message } });
}

/** `cached`: the check stage may reuse facts from the run's cache; verification and retries never do. */
async function gatherAndPlan(engine: Engine, step: AnyStep, host: string, ctx: StepContext<any>, cached = false): Promise<{ facts: unknown; plan: Plan }> {
  engine.interrupt.check();
  const cache = cached ? engine.factCache : undefined;
  if (step.operation) {
    const op = step.operation(ctx);
    const facts = await gatherFacts(engine.pool, host, step.become, op.facts as FactMap<unknown>, undefined, cache);
    return { facts, plan: op.plan(facts) };
  }
  const map = step.gather ? (step.gather(ctx) as FactMap<unknown>) : undefined;
  const facts = map ? await gatherFacts(engine.pool, host, step.become, map, undefined, cache) : {};
  const more = step.followUp?.(facts, ctx) as FactMap<unknown> | undefined;
  if (more && Object.keys(more).length) Object.assign(facts as object, await gatherFacts(engine.pool, host, step.become, more, undefined, cache));
  // A step with neither plan nor operation always applies (its own apply decides what to do).
  const plan = step.plan ? step.plan(facts, ctx) : change(step.title, []);
  return { facts, plan };
}

/** First half: decide whether this step changes this host. */
export async function checkStep(engine: Engine, step: AnyStep, host: string): Promise<Checked> {
  const started = Date.now();
  const ctx = stepContext(engine, host);
  try {
    if (step.when) {
      const w = step.when(ctx);
      if (w !== true) return { done: result(step, host, started, { status: 'skipped', message: w }) };
    }
    if (step.check) return { done: await checkOnly(engine, step, step.check, host, ctx, started) };
    if (engine.run.checkMode && step.gather) {
      const probes = [...new Set(factEntries(step.gather(ctx) as FactMap<unknown>).filter(([, , f]) => isProbe(f)).map(([k]) => k))];
      if (probes.length) return { done: result(step, host, started, { status: 'unverified', message: `${NOT_VERIFIED} (probes: ${probes.join(', ')})` }) };
    }
    const { facts, plan } = await gatherAndPlan(engine, step, host, ctx, true);
    if (plan.kind === 'noop') {
      remember(step, facts, ctx);
      return { done: result(step, host, started, { status: 'ok', message: plan.reason, ...withData(plan) }) };
    }
    if (plan.kind === 'blocked') return { done: result(step, host, started, { status: 'blocked', message: plan.reason, ...withData(plan) }) };
    if (engine.run.checkMode) {
      engine.wouldChange?.add(`${step.id}@${host}`);
      return { done: planned(step, host, started, plan, 'would-change', engine.options.diff) };
    }
    engine.onPlanned?.({ stepId: step.id, host, summary: maskSecrets(plan.summary), actions: plan.actions.map(viewAction), ...(step.apply ? { ownApply: true } : {}) });
    return { pending: { plan, facts, ctx, started } };
  } catch (e) {
    return { done: failureResult(step, host, started, e) };
  }
}

/** A change as a result: `actions` are the planned ones (would-change) or the ones started (changed). */
function planned(step: AnyStep, host: string, started: number, plan: ChangePlan<unknown>, status: 'would-change' | 'changed', withDiff: boolean, ran?: ActionView[]): StepResult {
  const actions = ran ?? plan.actions.map(viewAction);
  const r = result(step, host, started, { status, message: plan.summary, commands: actions.map(actionLine), ...withData(plan) });
  r.actions = actions;
  if (step.apply) r.ownApply = true;
  if (withDiff && plan.diff) r.diff = maskSecrets(plan.diff);
  return r;
}

/**
 * A check step: in --check it is evaluated once, unless it needs probes ("not verified in check
 * mode") or an earlier step would change something (its facts are not yet what apply leaves).
 * Otherwise it is polled until it holds or its deadline passes: failed, kind verify.
 */
async function checkOnly(engine: Engine, step: AnyStep, c: CheckDef<any, any, any>, host: string, ctx: StepContext<any>, started: number): Promise<StepResult> {
  if (engine.run.checkMode && checkUsesProbes(c, ctx)) return result(step, host, started, { status: 'unverified', message: `${NOT_VERIFIED}: ${c.name}` });
  const v = await evaluateCheck(engine, step, host, ctx, c, !engine.run.checkMode);
  if (v === true) return result(step, host, started, { status: 'ok', message: lastMessage.get(ctx) ?? c.name });
  if (engine.run.checkMode && engine.wouldChange?.size)
    return result(step, host, started, { status: 'unverified', message: `${NOT_VERIFIED}: ${c.name} does not hold yet, and earlier steps would change (${[...engine.wouldChange][0]}…): ${v}` });
  const message = `verification failed: ${c.name}: ${v}`;
  return result(step, host, started, { status: 'failed', message, failure: { kind: 'verify', message } });
}

const lastMessage = new WeakMap<StepContext<any>, string>();

/** Poll a check (or evaluate it once): true, or what does not hold. */
async function evaluateCheck(engine: Engine, step: AnyStep, host: string, ctx: StepContext<any>, c: CheckDef<any, any, any>, polled: boolean): Promise<true | string> {
  // Probes that set up what the polls wait for run once (a marker written on every poll would race its own read).
  const prepared = c.prepare ? await gatherFacts(engine.pool, host, step.become, c.prepare(ctx) as FactMap<unknown>) : {};
  // A check step's reads carry what rides along with them (alongside.ts); its first evaluation may
  // be served from what rode along with the step before it, and when that does not hold it reads afresh at once.
  const own = c === step.check;
  const evaluate = (facts: unknown) => verdictOf(c.name, c.holds(facts, ctx, prepared));
  const fresh = async (map: FactMap<unknown>) => {
    const read = gatherFacts(engine.pool, host, step.become, map);
    if (own) sendAlongside(engine, step, host);
    return evaluate(await read);
  };
  let first = true;
  const r = await poll(
    async () => {
      const map = c.gather(ctx, prepared) as FactMap<unknown>;
      const ahead = first && own ? servedAhead(engine, step, host, map) : undefined;
      first = false;
      let v = ahead === undefined ? undefined : evaluate(ahead);
      if (!v?.holds) v = await fresh(map);
      if (v.holds) {
        lastMessage.set(ctx, v.message);
        return { done: true as const };
      }
      return { wait: v.problems.join('; ') };
    },
    { intervalMs: c.intervalMs ?? 1000, timeoutMs: polled ? (c.timeoutMs ?? 30_000) : 0, check: () => engine.interrupt.check() },
  );
  return 'done' in r ? true : r.timedOut;
}

function withData(plan: { data?: unknown }): { data?: Record<string, unknown> } {
  return plan.data ? { data: maskDeep(plan.data) as Record<string, unknown> } : {};
}

function remember(step: AnyStep, facts: unknown, ctx: StepContext<any>): void {
  if (step.remember) Object.assign(ctx.state, step.remember(facts, ctx));
}

/** What apply runs through: every exec and action is announced (log, journal) before it starts, and remembered. */
function applyEnv(engine: Engine, step: AnyStep, ctx: StepContext<any>, io: TaskIO, handler: boolean): { actx: ApplyContext<any>; env: ActionEnv; ran: ActionView[] } {
  const host = ctx.host.name;
  const ran: ActionView[] = [];
  const announce = (view: ActionView, resolved?: string) => {
    ran.push(view);
    engine.onAction?.({ stepId: step.id, host, ...(handler ? { handler } : {}), action: view, ...(resolved !== undefined ? { resolved } : {}) });
  };
  const withDefaults = (options?: ExecOptions): ExecOptions => {
    const o: ExecOptions = { timeoutSec: step.timeoutSec ?? DEFAULT_APPLY_TIMEOUT_SEC, check: true, ...options };
    if (o.become === undefined && step.become !== undefined) o.become = step.become;
    return o;
  };
  const run = async (target: string, command: Command, options: ExecOptions | undefined, planned?: ActionView) => {
    engine.interrupt.check();
    const text = command.toString();
    const view = planned ?? viewAction({ kind: 'exec', command, ...(target !== host ? { host: target } : {}) });
    announce(view, planned && planned.text !== maskSecrets(text) ? maskSecrets(text) : undefined);
    io.log(`${target === host ? '' : `${target}: `}$ ${text}`);
    const o = withDefaults(options);
    engine.factCache?.clear();
    const res = await engine.pool.exec(target, command, { ...o, check: false }).finally(() => engine.factCache?.clear());
    if (o.check && res.exitCode !== 0) throw new CommandFailedError(res);
    return res;
  };
  const quiet = async (target: string, command: Command, options: ExecOptions | undefined) => {
    engine.interrupt.check();
    const o = withDefaults(options);
    engine.factCache?.clear();
    const res = await engine.pool.exec(target, command, { ...o, check: false }).finally(() => engine.factCache?.clear());
    if (o.check && res.exitCode !== 0) throw new CommandFailedError(res);
    return res;
  };
  const read = async <T>(src: FactSource<T>): Promise<T> => {
    const facts = await gatherFacts(engine.pool, host, step.become, { v: src } as FactMap<{ v: T }>);
    return facts.v;
  };
  const log = (line: string) => io.log(maskSecrets(line));
  const actx: ApplyContext<any> = {
    ...ctx,
    exec: (command, options) => run(host, command, options),
    execOn: (target, command, options) => run(target, command, options),
    read,
    log,
  };
  const env: ActionEnv = {
    exec: (target, command, options, view) => run(target ?? host, command, options, view),
    started: (view) => {
      announce(view);
      io.log(actionLine(view));
    },
    execQuiet: (target, command, options) => quiet(target ?? host, command, options),
    read,
    log,
    signal: engine.interrupt.signal,
    checkInterrupt: () => engine.interrupt.check(),
  };
  return { actx, env, ran };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Second half: apply the pending change (with retries), then verify it. The fact cache is cleared around it. */
export async function applyStep(engine: Engine, step: AnyStep, host: string, pending: { plan: ChangePlan; facts: unknown; ctx: StepContext<any>; started: number }, io: TaskIO, handler = false): Promise<StepResult> {
  try {
    await engine.runLock?.beforeApply(); // the run lock, where a release rode along early (alongside.ts)
  } catch (e) {
    return failureResult(step, host, pending.started, e);
  }
  const cache = engine.factCache;
  return cache ? cache.applying(() => applyAndVerify(engine, step, host, pending, io, handler)) : applyAndVerify(engine, step, host, pending, io, handler);
}

async function applyAndVerify(engine: Engine, step: AnyStep, host: string, pending: { plan: ChangePlan; facts: unknown; ctx: StepContext<any>; started: number }, io: TaskIO, handler: boolean): Promise<StepResult> {
  const { ctx, started } = pending;
  let { plan, facts } = pending;
  const { actx, env, ran } = applyEnv(engine, step, ctx, io, handler);
  const withRan = (r: StepResult): StepResult => ({ ...r, commands: ran.map(actionLine), actions: [...ran] });
  const attempts = 1 + (step.retries ?? 0);
  for (let attempt = 1; ; attempt++) {
    try {
      if (step.apply) await step.apply(actx, plan, facts);
      else await runActions(env, plan.actions);
      break;
    } catch (e) {
      if (attempt >= attempts || e instanceof UnreachableError || (e instanceof RunbookError && e.exitCode === ExitCode.interrupted))
        return withRan(failureResult(step, host, started, e));
      io.log(`attempt ${attempt}/${attempts} failed; retrying`);
      await sleep(engine.options.retryDelayMs ?? 2000);
      try {
        const again = await gatherAndPlan(engine, step, host, ctx);
        if (again.plan.kind !== 'change') break; // converged meanwhile
        ({ plan, facts } = { plan: again.plan, facts: again.facts });
      } catch (e2) {
        return failureResult(step, host, started, e2);
      }
    }
  }
  const ok = planned(step, host, started, plan, 'changed', engine.options.diff, [...ran]);
  try {
    const verified = await verifyStep(engine, step, host, ctx, actx);
    if (verified !== true) return { ...ok, status: 'failed', failure: { kind: 'verify', message: maskSecrets(verified) }, durationMs: Date.now() - started };
  } catch (e) {
    return { ...failureResult(step, host, started, e, 'verify'), commands: ok.commands, actions: ok.actions ?? [] };
  }
  return { ...ok, durationMs: Date.now() - started };
}

/** Re-gather (the step must now plan noop), then poll every assertion until it holds or times out. */
async function verifyStep(engine: Engine, step: AnyStep, host: string, ctx: StepContext<any>, actx: ApplyContext<any>): Promise<true | string> {
  const hasPlan = Boolean(step.plan || step.operation);
  if (hasPlan && step.verify?.converge !== false) {
    const { facts, plan } = await gatherAndPlan(engine, step, host, ctx);
    if (plan.kind !== 'noop') return `verification failed: after applying, the step still plans ${plan.kind === 'change' ? `a change (${plan.summary})` : `blocked (${plan.reason})`}`;
    remember(step, facts, ctx);
  } else if (!hasPlan && step.remember) {
    remember(step, {}, ctx);
  }
  for (const c of step.verify?.checks?.(ctx) ?? []) {
    const v = await evaluateCheck(engine, step, host, ctx, c, true);
    if (v !== true) return `verification failed: ${c.name}: ${v}`;
  }
  for (const a of step.verify?.assertions?.(ctx) ?? []) {
    const r = await poll(
      async () => {
        const v = await a.check(actx);
        return v === true ? { done: true } : { wait: v };
      },
      { intervalMs: a.intervalMs ?? 1000, timeoutMs: a.timeoutMs ?? 30_000, check: () => engine.interrupt.check() },
    );
    if ('timedOut' in r) return `verification failed: ${a.name}: ${r.timedOut}`;
  }
  return true;
}

/** Hosts of a fact source other than `host` (for connection warm-up / messages). */
export function remoteHostsOf(map: FactMap<unknown>): string[] {
  return factEntries(map).flatMap(([, , f]) => (isRemote(f) ? [f.onHost] : []));
}
