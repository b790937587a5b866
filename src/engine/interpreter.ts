/** The one interpreter of a change plan's actions: in order, each announced before it starts. */
import type { Command } from '../shell/command.js';
import { maskSecrets } from '../shell/secret.js';
import type { ExecOptions, ExecResult } from '../transport/types.js';
import { type Action, type ActionView, isLater, viewAction } from './actions.js';
import { poll } from './poll.js';
import type { FactSource } from './types.js';

/** What the interpreter needs from the engine (step-runner.ts builds it; tests fake it). */
export interface ActionEnv {
  /** Runs (and announces: journal, log) an exec; `view` is the action as planned. */
  exec(target: string | undefined, command: Command, options: ExecOptions, view: ActionView): Promise<ExecResult>;
  /** Announces a wait, a local operation or a job before it starts. */
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

export async function runActions(env: ActionEnv, actions: readonly Action[]): Promise<void> {
  const saved: Record<string, string> = {};
  for (const a of actions) {
    env.checkInterrupt();
    const view = viewAction(a);
    switch (a.kind) {
      case 'exec': {
        const command = isLater(a.command) ? a.command.build(saved) : a.command;
        const o: ExecOptions = { check: !a.mayFail };
        if (a.become !== undefined) o.become = a.become;
        if (a.timeoutSec !== undefined) o.timeoutSec = a.timeoutSec;
        const r = await env.exec(a.host, command, o, view);
        if (a.saveAs) saved[a.saveAs] = r.stdout.trim();
        break;
      }
      case 'wait': {
        env.started(view);
        const r = await poll(
          async () => {
            const v = a.until(await env.read(a.fact));
            return v === true ? { done: true } : { wait: v };
          },
          { intervalMs: a.intervalMs, timeoutMs: a.timeoutMs, onWait: (w) => env.log(`waiting until ${a.title}: ${maskSecrets(w)}`), check: () => env.checkInterrupt() },
        );
        if ('timedOut' in r) throw new WaitTimeoutError(maskSecrets(`timed out after ${a.timeoutMs / 1000} s waiting until ${a.title}: ${r.timedOut}`));
        break;
      }
      case 'local':
        env.started(view);
        await a.run({ log: (l) => env.log(maskSecrets(l)), signal: env.signal });
        break;
      case 'job': {
        const quiet = env.execQuiet;
        if (!quiet) throw new Error(`job ${a.id}: this runner cannot run detached jobs`);
        env.started(view);
        await a.run({ log: (l) => env.log(maskSecrets(l)), signal: env.signal, exec: (c, o = {}) => quiet(a.host, c, o) });
        break;
      }
    }
  }
}
