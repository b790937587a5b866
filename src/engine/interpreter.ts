/** The one interpreter of a change plan's actions: in order, each announced before it starts. */
import type { Command } from '../shell/command.js';
import { maskSecrets } from '../shell/secret.js';
import type { ExecOptions, ExecResult } from '../transport/types.js';
import { type Action, type ActionView, isLater, shallowView, viewAction } from './actions.js';
import { poll } from './poll.js';
import type { FactSource } from './types.js';

/** What the interpreter needs from the engine (step-runner.ts builds it; tests fake it). */
export interface ActionEnv {
  /** Runs (and announces: journal, log) an exec; `view` is the action as planned. */
  exec(target: string | undefined, command: Command, options: ExecOptions, view: ActionView): Promise<ExecResult>;
  /** Announces a wait, a local operation, a job, a choose, a group or an end before it starts. */
  started(view: ActionView): void;
  /** Runs a job's helper commands (start, poll) on `target` (undefined: the step's host), not announced. */
  execQuiet?(target: string | undefined, command: Command, options: ExecOptions): Promise<ExecResult>;
  read<T>(src: FactSource<T>): Promise<T>;
  log(line: string): void;
  readonly signal: AbortSignal;
  /** Throws once the run is interrupted. */
  checkInterrupt(): void;
}

export class WaitTimeoutError extends Error {}

/** A `done` reached: the rest of the actions do not run (inside a recovery: what it did). */
class Done {
  constructor(readonly reason: string) {}
}

/** What the list's runs share: the saved outputs, and what the last choose saw (for a `fail` in its branch). */
interface Run {
  env: ActionEnv;
  outputs: Record<string, ExecResult>;
  saw?: string | undefined;
}

export async function runActions(env: ActionEnv, actions: readonly Action[]): Promise<void> {
  try {
    await runList({ env, outputs: {} }, actions);
  } catch (e) {
    if (e instanceof Done) return;
    throw e;
  }
}

async function runList(run: Run, actions: readonly Action[]): Promise<void> {
  for (const a of actions) await runOne(run, a);
}

async function runOne(run: Run, a: Action): Promise<void> {
  const { env, outputs } = run;
  env.checkInterrupt();
  const view = viewAction(a);
  switch (a.kind) {
    case 'exec': {
      const saved = Object.fromEntries(Object.entries(outputs).map(([k, r]) => [k, r.stdout.trim()]));
      const command = isLater(a.command) ? a.command.build(saved, outputs) : a.command;
      const o: ExecOptions = { check: !a.mayFail };
      if (a.become !== undefined) o.become = a.become;
      if (a.timeoutSec !== undefined) o.timeoutSec = a.timeoutSec;
      const r = await env.exec(a.host, command, o, view);
      if (a.saveAs) outputs[a.saveAs] = r;
      return;
    }
    case 'wait': {
      env.started(view);
      const r = await poll(
        async () => {
          const v = a.until(await env.read(a.fact), outputs);
          return v === true ? { done: true } : { wait: v };
        },
        { intervalMs: a.intervalMs, timeoutMs: a.timeoutMs, onWait: (w) => env.log(`waiting until ${a.title}: ${maskSecrets(w)}`), check: () => env.checkInterrupt() },
      );
      if ('timedOut' in r) throw new WaitTimeoutError(maskSecrets(`timed out after ${a.timeoutMs / 1000} s waiting until ${a.title}: ${r.timedOut}`));
      return;
    }
    case 'local':
      env.started(view);
      await a.run({ log: (l) => env.log(maskSecrets(l)), signal: env.signal });
      return;
    case 'job': {
      const quiet = env.execQuiet;
      if (!quiet) throw new Error(`job ${a.id}: this runner cannot run detached jobs`);
      env.started(view);
      await a.run({ log: (l) => env.log(maskSecrets(l)), signal: env.signal, exec: (c, o = {}) => quiet(a.host, c, o) });
      return;
    }
    case 'choose': {
      env.started(shallowView(view));
      const value = a.fact ? await env.read(a.fact) : undefined;
      const p = a.pick(value, outputs);
      const picked = typeof p === 'string' ? { branch: p } : p;
      const b = a.branches.find((x) => x.name === picked.branch);
      if (!b) throw new Error(`${a.title}: no alternative named ${JSON.stringify(picked.branch)} (have: ${a.branches.map((x) => x.name).join(', ')})`);
      env.log(maskSecrets(`${a.title}: ${b.when}${picked.saw ? `: ${picked.saw}` : ''}`));
      run.saw = picked.saw;
      await runList(run, b.actions);
      return;
    }
    case 'guarded': {
      env.started(shallowView(view));
      try {
        await runList(run, a.actions);
      } catch (e) {
        // A done inside the group ends the step's actions (not a failure); an interrupt is no failure to recover from.
        if (e instanceof Done || isInterrupt(env)) throw e;
        const original = e instanceof Error ? e.message : String(e);
        env.log(maskSecrets(`${a.title} failed (${original}): recovering`));
        let did = a.recovered;
        try {
          await runList({ ...run, saw: undefined }, a.onFailure);
        } catch (e2) {
          if (e2 instanceof Done) did = e2.reason;
          else throw withMessage(e, `${original}; the recovery failed too: ${e2 instanceof Error ? e2.message : String(e2)}`);
        }
        throw withMessage(e, `${original}: ${did}`);
      }
      return;
    }
    case 'done':
      env.started(view);
      throw new Done(a.text);
    case 'fail':
      env.started(view);
      throw new Error(maskSecrets(a.message ? a.message(run.saw, outputs) : a.text));
  }
}

function isInterrupt(env: ActionEnv): boolean {
  try {
    env.checkInterrupt();
    return false;
  } catch {
    return true;
  }
}

/** The same error (its class counts: a failed command, a timeout) with a new message. */
function withMessage(e: unknown, message: string): Error {
  if (e instanceof Error) {
    e.message = maskSecrets(message);
    return e;
  }
  return new Error(maskSecrets(message));
}
