/**
 * One step on one host: when → gather → plan (pure) → [gate, in the scheduler] → apply → verify.
 * Split in two halves so the scheduler can ask for confirmation between them, once per step.
 */
import { BadInputError, ExitCode, RunbookError, UnreachableError } from '../errors.js';
import { CLOSED_BY_RUNBOOK } from '../transport/types.js';
import type { Command } from '../shell/command.js';
import { maskSecrets } from '../shell/secret.js';
import { CommandFailedError, type ExecOptions } from '../transport/types.js';
import type { TaskIO } from '../ui/types.js';
import type { Engine } from './context.js';
import { change } from './define.js';
import { gatherFacts, isRemote } from './gather.js';
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
  return { ...engine.run, host: engine.hostByName(host), state };
}

function result(step: AnyStep, host: string, started: number, r: Omit<StepResult, 'stepId' | 'title' | 'host' | 'durationMs' | 'commands'> & { commands?: string[] }): StepResult {
  return { stepId: step.id, title: step.title, host, durationMs: Date.now() - started, commands: [], ...r, message: maskSecrets(r.message) };
}

/** Map an error to the result it ends the step with. */
export function failureResult(step: AnyStep, host: string, started: number, error: unknown, kind: FailureKind = 'step'): StepResult {
  const closedByUs = error instanceof UnreachableError && error.reason === CLOSED_BY_RUNBOOK;
  if (error instanceof UnreachableError && !closedByUs) return result(step, host, started, { status: 'unreachable', message: error.reason });
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
    const { facts, plan } = await gatherAndPlan(engine, step, host, ctx, true);
    if (plan.kind === 'noop') {
      remember(step, facts, ctx);
      return { done: result(step, host, started, { status: 'ok', message: plan.reason }) };
    }
    if (plan.kind === 'blocked') return { done: result(step, host, started, { status: 'blocked', message: plan.reason }) };
    if (engine.run.checkMode) return { done: planned(step, host, started, plan, 'would-change', engine.options.diff) };
    return { pending: { plan, facts, ctx, started } };
  } catch (e) {
    return { done: failureResult(step, host, started, e) };
  }
}

function planned(step: AnyStep, host: string, started: number, plan: ChangePlan, status: 'would-change' | 'changed', withDiff: boolean): StepResult {
  const r = result(step, host, started, { status, message: plan.summary, commands: plan.commands.map((c) => c.toString()) });
  if (withDiff && plan.diff) r.diff = maskSecrets(plan.diff);
  return r;
}

function remember(step: AnyStep, facts: unknown, ctx: StepContext<any>): void {
  if (step.remember) Object.assign(ctx.state, step.remember(facts, ctx));
}

function applyContext(engine: Engine, step: AnyStep, ctx: StepContext<any>, io: TaskIO): ApplyContext<any> {
  const host = ctx.host.name;
  const withDefaults = (options?: ExecOptions): ExecOptions => {
    const o: ExecOptions = { timeoutSec: step.timeoutSec ?? DEFAULT_APPLY_TIMEOUT_SEC, check: true, ...options };
    if (o.become === undefined && step.become !== undefined) o.become = step.become;
    return o;
  };
  const run = async (target: string, command: Command, options?: ExecOptions) => {
    io.log(`${target === host ? '' : `${target}: `}$ ${command.toString()}`);
    const o = withDefaults(options);
    engine.factCache?.clear();
    const res = await engine.pool.exec(target, command, { ...o, check: false }).finally(() => engine.factCache?.clear());
    if (o.check && res.exitCode !== 0) throw new CommandFailedError(res);
    return res;
  };
  return {
    ...ctx,
    exec: (command, options) => run(host, command, options),
    execOn: (target, command, options) => run(target, command, options),
    read: async <T>(src: FactSource<T>): Promise<T> => {
      const facts = await gatherFacts(engine.pool, host, step.become, { v: src } as FactMap<{ v: T }>);
      return facts.v;
    },
    log: (line) => io.log(maskSecrets(line)),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Second half: apply the pending change (with retries), then verify it. The fact cache is cleared around it. */
export async function applyStep(engine: Engine, step: AnyStep, host: string, pending: { plan: ChangePlan; facts: unknown; ctx: StepContext<any>; started: number }, io: TaskIO): Promise<StepResult> {
  const cache = engine.factCache;
  return cache ? cache.applying(() => applyAndVerify(engine, step, host, pending, io)) : applyAndVerify(engine, step, host, pending, io);
}

async function applyAndVerify(engine: Engine, step: AnyStep, host: string, pending: { plan: ChangePlan; facts: unknown; ctx: StepContext<any>; started: number }, io: TaskIO): Promise<StepResult> {
  const { ctx, started } = pending;
  let { plan, facts } = pending;
  const actx = applyContext(engine, step, ctx, io);
  const attempts = 1 + (step.retries ?? 0);
  for (let attempt = 1; ; attempt++) {
    try {
      if (step.apply) await step.apply(actx, plan, facts);
      else for (const c of plan.commands) await actx.exec(c);
      break;
    } catch (e) {
      if (attempt >= attempts || e instanceof UnreachableError || (e instanceof RunbookError && e.exitCode === ExitCode.interrupted))
        return { ...failureResult(step, host, started, e), commands: plan.commands.map(String) };
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
  const ok = planned(step, host, started, plan, 'changed', engine.options.diff);
  try {
    const verified = await verifyStep(engine, step, host, ctx, actx);
    if (verified !== true) return { ...ok, status: 'failed', failure: { kind: 'verify', message: maskSecrets(verified) }, durationMs: Date.now() - started };
  } catch (e) {
    return { ...failureResult(step, host, started, e, 'verify'), commands: ok.commands };
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
  for (const a of step.verify?.assertions?.(ctx) ?? []) {
    const interval = a.intervalMs ?? 1000;
    const deadline = Date.now() + (a.timeoutMs ?? 30_000);
    for (;;) {
      engine.interrupt.check();
      const r = await a.check(actx);
      if (r === true) break;
      if (Date.now() + interval > deadline) return `verification failed: ${a.name}: ${r}`;
      await sleep(interval);
    }
  }
  return true;
}

/** Hosts of a fact source other than `host` (for connection warm-up / messages). */
export function remoteHostsOf(map: FactMap<unknown>): string[] {
  return Object.values(map as Record<string, FactSource<unknown>>).filter(isRemote).map((f) => f.onHost);
}
