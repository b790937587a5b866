/**
 * Actions: what a change plan will do, exactly and in order. A plan is data, so `runbook plan`,
 * --check, the confirmation, the reports and the journal all show the same list, and one
 * interpreter (interpreter.ts) runs it. Four kinds:
 *   exec  — a command on the step's host or on another inventory host;
 *   wait  — poll a fact until it holds (interval + deadline);
 *   local — a named operation on the controller (a fence hook);
 *   job   — a long command run detached on a host (it outlives the connection; a re-run reattaches);
 * and, inside an exec, `later(display, build)` for a command whose text depends on what an earlier
 * action printed (the display says so in place).
 */
import { Command } from '../shell/command.js';
import { maskSecrets } from '../shell/secret.js';
import { quoteWord } from '../shell/quote.js';
import type { ExecOptions, ExecResult } from '../transport/types.js';
import type { FactSource } from './types.js';

/** A command built when it runs, from the saved output of earlier actions (`saveAs`). */
export interface Later {
  readonly later: true;
  /** The command as the plan shows it, naming what it waits for, e.g. `mv /data <stdout of: stamp>`. */
  readonly display: string;
  build(saved: Readonly<Record<string, string>>): Command;
}

export interface ExecAction {
  kind: 'exec';
  /** Inventory name of another host; absent: the step's host. */
  host?: string;
  command: Command | Later;
  /** Overrides the step's become for this command. */
  become?: boolean | string;
  timeoutSec?: number;
  /** A non-zero exit is accepted (default: it fails the step). */
  mayFail?: boolean;
  /** Keep the trimmed stdout under this name for a later `later()` command. */
  saveAs?: string;
  /** Why this command, shown after it. */
  note?: string;
}

export interface WaitAction<T = any> {
  kind: 'wait';
  /** What must hold, e.g. "pg2 replays past 0/3000148". */
  title: string;
  /** Read on the step's host, or with onHost() on another. */
  fact: FactSource<T>;
  /** true when it holds, else what is still wrong (the last one is the error at the deadline). */
  until(value: T): true | string;
  intervalMs: number;
  timeoutMs: number;
}

export interface LocalAction {
  kind: 'local';
  /** The named operation, e.g. "fence". */
  name: string;
  /** Exactly what runs, e.g. the argv of a hook; masked when shown. */
  display: string;
  run(io: LocalIO): Promise<void>;
}

export interface LocalIO {
  log(line: string): void;
  /** The interrupt signal of the run. */
  readonly signal: AbortSignal;
}

/**
 * A command run detached on a host (src/core/detached.ts builds it: `detachedJob`). The engine only
 * announces it and hands `run` a quiet exec for its start and poll scripts; shown as its id and the
 * command the job runs.
 */
export interface JobAction {
  kind: 'job';
  /** Inventory name of another host; absent: the step's host. */
  host?: string;
  /** The job's id: one per purpose and target, so a re-run finds (reattaches to) it. */
  id: string;
  /** What the job runs, as shown (the supervisor around it is not). */
  command: Command;
  run(io: JobIO): Promise<void>;
}

export interface JobIO extends LocalIO {
  /** Run a helper command (start, poll) on the job's host, with the step's become; not announced. */
  exec(command: Command, options?: ExecOptions): Promise<ExecResult>;
}

export type Action = ExecAction | WaitAction | LocalAction | JobAction;

/** What a plan may list: Commands are exec actions on the step's host. */
export type ActionLike = Action | Command;

/** The serialisable form of an action (reports, journal, plan JSON): text masked. */
export interface ActionView {
  kind: Action['kind'];
  /** exec: the target host when it is not the step's own. */
  host?: string;
  text: string;
  note?: string;
}

// ---------------------------------------------------------------- constructors

export function isAction(x: unknown): x is Action {
  return typeof x === 'object' && x !== null && !(x instanceof Command) && ['exec', 'wait', 'local', 'job'].includes((x as Action).kind);
}

export function toAction(x: ActionLike): Action {
  return x instanceof Command ? { kind: 'exec', command: x } : x;
}

type ExecOpts = Omit<ExecAction, 'kind' | 'command' | 'host'>;

/** Run on the step's host. */
export function exec(command: Command | Later, o: ExecOpts = {}): ExecAction {
  return { kind: 'exec', command, ...o };
}

/** Run on another inventory host. */
export function execOn(host: string, command: Command | Later, o: ExecOpts = {}): ExecAction {
  return { kind: 'exec', host, command, ...o };
}

/** Poll `fact` every intervalMs until `until` says true, or fail the step at timeoutMs. */
export function waitUntil<T>(title: string, fact: FactSource<T>, until: (value: T) => true | string, o: { intervalMs?: number; timeoutMs: number }): WaitAction<T> {
  return { kind: 'wait', title, fact, until, intervalMs: o.intervalMs ?? 1000, timeoutMs: o.timeoutMs };
}

/** A named operation on the controller. Prefer localCommand, whose display is its exact argv. */
export function local(name: string, display: string, run: (io: LocalIO) => Promise<void>): LocalAction {
  return { kind: 'local', name, display, run };
}

/**
 * A program run on the controller (no shell of ours: argv as given), e.g. the fence hook
 * `['/bin/sh', '-c', fence_command, 'runbook-fence', host, address]`. Non-zero exit fails the step.
 */
export function localCommand(name: string, argv: string[], o: { env?: Record<string, string>; timeoutSec?: number } = {}): LocalAction {
  const env = Object.entries(o.env ?? {}).map(([k, v]) => `${k}=${quoteWord(v)}`);
  const display = [...env, ...argv.map(quoteWord)].join(' ');
  return local(name, display, async (io) => {
    const { spawn } = await import('node:child_process');
    await new Promise<void>((resolve, reject) => {
      const p = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'], signal: io.signal });
      let err = '';
      const timer = o.timeoutSec ? setTimeout(() => p.kill('SIGKILL'), o.timeoutSec * 1000) : undefined;
      p.stdout.on('data', (d: Buffer) => d.toString().split('\n').filter(Boolean).forEach((l) => io.log(maskSecrets(l))));
      p.stderr.on('data', (d: Buffer) => (err += d.toString()));
      p.on('error', (e) => reject(new Error(`${name}: ${maskSecrets(e.message)}`)));
      p.on('close', (code, signal) => {
        if (timer) clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new Error(`${name} failed (${signal ? `killed by ${signal}` : `exit code ${code}`}): ${maskSecrets(display)}${err.trim() ? `\n${maskSecrets(err.trim().split('\n').slice(-5).join('\n'))}` : ''}`));
      });
    });
  });
}

/** A command whose text depends on earlier actions' saved output; `display` says so in place. */
export function later(display: string, build: (saved: Readonly<Record<string, string>>) => Command): Later {
  return { later: true, display, build };
}

export function isLater(c: Command | Later): c is Later {
  return !(c instanceof Command) && (c as Later).later === true;
}

// ---------------------------------------------------------------- rendering

function waitText(a: WaitAction): string {
  const src = a.fact;
  const f = 'onHost' in src ? src.fact : src;
  const where = 'onHost' in src ? `${src.onHost}: ` : '';
  return `until ${a.title} (every ${a.intervalMs / 1000} s, up to ${a.timeoutMs / 1000} s): ${where}${f.command.toString()}`;
}

/** The one rendering of an action, used by every output. */
export function viewAction(a: ActionLike): ActionView {
  const x = toAction(a);
  switch (x.kind) {
    case 'exec': {
      const text = isLater(x.command) ? x.command.display : x.command.toString();
      return { kind: 'exec', ...(x.host ? { host: x.host } : {}), text: maskSecrets(text), ...(x.note ? { note: maskSecrets(x.note) } : {}) };
    }
    case 'wait':
      return { kind: 'wait', text: maskSecrets(waitText(x)) };
    case 'local':
      return { kind: 'local', text: maskSecrets(`${x.name}: ${x.display}`) };
    case 'job':
      return { kind: 'job', ...(x.host ? { host: x.host } : {}), text: maskSecrets(`${x.id}: ${x.command.toString()}`) };
  }
}

/**
 * One line per action for text outputs: an exec on the step's host is its command as is; others
 * are prefixed so the reader sees where and what: `[on pg1] …`, `[wait] until …`, `[local] fence: …`,
 * `[job] ID: command` (`[job on pg1]` on another host).
 */
export function actionLine(v: ActionView): string {
  const note = v.note ? `    # ${v.note}` : '';
  if (v.kind === 'exec') return `${v.host ? `[on ${v.host}] ` : ''}${v.text}${note}`;
  if (v.kind === 'job') return `[job${v.host ? ` on ${v.host}` : ''}] ${v.text}${note}`;
  return `[${v.kind}] ${v.text}${note}`;
}

export const actionLines = (actions: readonly ActionLike[]): string[] => actions.map((a) => actionLine(viewAction(a)));
