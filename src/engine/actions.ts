/**
 * Actions: what a change plan will do, exactly and in order. A plan is data, so `runbook plan`,
 * --check, the confirmation, the reports and the journal all show the same list, and one
 * interpreter (interpreter.ts) runs it. Four kinds:
 *   exec  — a command on the step's host or on another inventory host;
 *   wait  — poll a fact until it holds (interval + deadline);
 *   local — a named operation on the controller (a fence hook);
 *   job   — a long command run detached on a host (it outlives the connection; a re-run reattaches);
 * and, inside an exec, `later(display, build)` for a command whose text depends on what an earlier
 * action printed (the display says so in place). Three more shape the flow, each shown in place
 * with what it may lead to:
 *   choose  — read saved outputs (or a fact) when reached and run one of several named action lists;
 *   guarded — a group of actions with the recovery actions that run if one of them fails;
 *   done / fail — end the step here: done (nothing more to do, a reason) or fail (an error).
 */
import { Command } from '../shell/command.js';
import { maskSecrets } from '../shell/secret.js';
import { quoteWord } from '../shell/quote.js';
import type { ExecOptions, ExecResult } from '../transport/types.js';
import type { FactSource } from './types.js';

/** What earlier actions of the step returned, by their `saveAs` name. */
export type Outputs = Readonly<Record<string, ExecResult>>;

/** A command built when it runs, from the saved output of earlier actions (`saveAs`). */
export interface Later {
  readonly later: true;
  /** The command as the plan shows it, naming what it waits for, e.g. `mv /data <stdout of: stamp>`. */
  readonly display: string;
  /** `saved`: each saved action's trimmed stdout; `outputs`: the whole results. */
  build(saved: Readonly<Record<string, string>>, outputs: Outputs): Command;
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
  /** Keep the result under this name: for a `later()` command, a `choose`, a wait's `until`. */
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
  /** true when it holds, else what is still wrong (the last one is the error at the deadline); `outputs`: what earlier actions saved. */
  until(value: T, outputs: Outputs): true | string;
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

/** The alternative a `choose` picks, and what it saw (logged; handed to a `fail` in that branch). */
export type Picked = string | { branch: string; saw?: string };

/** One alternative of a choose: its name (what `pick` returns), its condition as shown, its actions. */
export interface Branch {
  name: string;
  /** The condition, shown as `if WHEN:` (`otherwise` as is). */
  when: string;
  actions: Action[];
}

/**
 * A decision taken when the step reaches it, on what earlier actions saved (or on a fact read
 * then): one of the branches runs, then the actions after the choose (unless it ended the step).
 */
export interface ChooseAction<T = any> {
  kind: 'choose';
  /** What decides, e.g. "what pg_rewind --dry-run says". */
  title: string;
  /** Read when the choose is reached (on the step's host, or onHost()); absent: outputs only. */
  fact?: FactSource<T>;
  pick(value: T, outputs: Outputs): Picked;
  branches: Branch[];
}

/**
 * Actions with their recovery: if one of `actions` fails, `onFailure` runs, and the step still fails,
 * with the original error and what the recovery did (`recovered`, or the reason of a `done` the
 * recovery reached). If the recovery fails too, both errors.
 */
export interface GuardedAction {
  kind: 'guarded';
  /** What the group does, e.g. "the promote". */
  title: string;
  actions: Action[];
  onFailure: Action[];
  recovered: string;
}

/** The end of the step's actions: `done` ends them (the step did what it had to), `fail` fails the step. */
export interface EndAction {
  kind: 'done' | 'fail';
  /** As shown: the reason (done) or the error (fail), naming in <…> what it takes from the run. */
  text: string;
  /** fail: the message at run time, from what the choose that led here saw. */
  message?: (saw: string | undefined, outputs: Outputs) => string;
}

export type Action = ExecAction | WaitAction | LocalAction | JobAction | ChooseAction | GuardedAction | EndAction;

/** What a plan may list: Commands are exec actions on the step's host. */
export type ActionLike = Action | Command;

/** The serialisable form of an action (reports, journal, plan JSON): text masked. */
export interface ActionView {
  kind: Action['kind'];
  /** exec: the target host when it is not the step's own. */
  host?: string;
  text: string;
  note?: string;
  /** choose: each alternative, its condition and its actions. */
  branches?: Array<{ when: string; actions: ActionView[] }>;
  /** guarded: the actions guarded, and those that run if one of them fails. */
  actions?: ActionView[];
  onFailure?: ActionView[];
}

// ---------------------------------------------------------------- constructors

const ACTION_KINDS: ReadonlyArray<Action['kind']> = ['exec', 'wait', 'local', 'job', 'choose', 'guarded', 'done', 'fail'];

export function isAction(x: unknown): x is Action {
  return typeof x === 'object' && x !== null && !(x instanceof Command) && ACTION_KINDS.includes((x as Action).kind);
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
export function waitUntil<T>(title: string, fact: FactSource<T>, until: (value: T, outputs: Outputs) => true | string, o: { intervalMs?: number; timeoutMs: number }): WaitAction<T> {
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
export function later(display: string, build: (saved: Readonly<Record<string, string>>, outputs: Outputs) => Command): Later {
  return { later: true, display, build };
}

/** An alternative of a choose: `if WHEN:` then `actions` (none: carry on after the choose). */
export function branch(name: string, when: string, actions: Action[] = []): Branch {
  return { name, when, actions };
}

/** Decide on what earlier actions saved: `pick` names the branch to run. */
export function choose(title: string, pick: (outputs: Outputs) => Picked, branches: Branch[]): ChooseAction<undefined> {
  return { kind: 'choose', title, pick: (_v, o) => pick(o), branches };
}

/** Decide on a fact read when the choose is reached (and on saved outputs). */
export function chooseOn<T>(title: string, fact: FactSource<T>, pick: (value: T, outputs: Outputs) => Picked, branches: Branch[]): ChooseAction<T> {
  return { kind: 'choose', title, fact, pick, branches };
}

/** `actions`, and if one fails `onFailure`; the step then fails with the error and `recovered`. */
export function guarded(title: string, actions: Action[], onFailure: Action[], recovered: string): GuardedAction {
  return { kind: 'guarded', title, actions, onFailure, recovered };
}

/** End the step's actions here, with the reason (inside a recovery: what the recovery did). */
export function done(reason: string): EndAction {
  return { kind: 'done', text: reason };
}

/** Fail the step here: `text` as shown; `message` builds the error from what the choose saw. */
export function fail(text: string, message?: (saw: string | undefined, outputs: Outputs) => string): EndAction {
  return message ? { kind: 'fail', text, message } : { kind: 'fail', text };
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
    case 'choose': {
      const f = x.fact ? ('onHost' in x.fact ? { where: `${x.fact.onHost}: `, fact: x.fact.fact } : { where: '', fact: x.fact }) : undefined;
      const text = f ? `${x.title} (reads ${f.where}${f.fact.command.toString()})` : x.title;
      return { kind: 'choose', text: maskSecrets(text), branches: x.branches.map((b) => ({ when: maskSecrets(b.when), actions: b.actions.map(viewAction) })) };
    }
    case 'guarded':
      return { kind: 'guarded', text: maskSecrets(x.title), actions: x.actions.map(viewAction), onFailure: x.onFailure.map(viewAction), note: maskSecrets(x.recovered) };
    case 'done':
    case 'fail':
      return { kind: x.kind, text: maskSecrets(x.text) };
  }
}

/** A view without its nested lists: how a choose or a group is announced when it starts. */
export function shallowView(v: ActionView): ActionView {
  const { branches: _b, actions: _a, onFailure: _f, ...rest } = v;
  return rest;
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
  // A choose lists each alternative under its condition; a group its actions, then its recovery.
  if (v.kind === 'choose' && v.branches)
    return [`[choose] ${v.text}:`, ...v.branches.flatMap((b) => [b.when === 'otherwise' ? '  otherwise:' : `  if ${b.when}:`, ...nested(b.actions, '    ', 'carry on')])].join('\n');
  if (v.kind === 'guarded' && v.actions && v.onFailure)
    return [`[guarded] ${v.text}:`, ...nested(v.actions, '  ', 'nothing'), '  if any of these fails:', ...nested(v.onFailure, '    ', 'nothing'), `    then the step fails${v.note ? `: ${v.note}` : ''}`].join('\n');
  return `[${v.kind}] ${v.text}${v.kind === 'choose' || v.kind === 'guarded' ? '' : note}`;
}

/** Nested actions, one `$ ` line each (continuation lines aligned under it); `none`: said when empty. */
function nested(views: readonly ActionView[], indent: string, none: string): string[] {
  if (!views.length) return [`${indent}(${none})`];
  return views.flatMap((a) => actionLine(a).split('\n').map((l, i) => `${indent}${i === 0 ? '$ ' : '  '}${l}`));
}

/**
 * Whether a run's announced actions (`ran`, in order) are one path through the plan (`planned`):
 * one branch taken at each choose, a group's recovery after any of its actions, the run ending
 * where a done or a failure ended it. Alternatives not taken are not "planned but not run".
 * `explained`: how many of `ran` the best path accounts for (all of them: every action sent was
 * planned); `complete`: that path ran to the plan's end or to a `done` (the step did not fail).
 */
export function followsPlan(planned: readonly ActionView[], ran: readonly ActionView[]): { explained: number; complete: boolean } {
  const same = (a: ActionView, b: ActionView | undefined) => b !== undefined && a.kind === b.kind && (a.host ?? '') === (b.host ?? '') && a.text === b.text;
  type R = { explained: number; complete: boolean };
  const best = (...rs: R[]): R => rs.reduce((x, y) => (y.explained > x.explained || (y.explained === x.explained && y.complete && !x.complete) ? y : x));
  const ended = (j: number): R => ({ explained: j, complete: false });
  // k: the rest of the plan after this list; f: where a failure after ran[j-1] leads; d: where a done leads.
  interface Ways {
    k: (j: number) => R;
    f: (j: number) => R;
    d: (j: number) => R;
  }
  const walk = (list: readonly ActionView[], j: number, w: Ways): R => {
    const a = list[0];
    if (!a) return w.k(j);
    if (j === ran.length || !same(a, ran[j])) return ended(j);
    const next = (j2: number) => walk(list.slice(1), j2, w);
    switch (a.kind) {
      case 'done':
        return w.d(j + 1);
      case 'fail':
        return w.f(j + 1);
      case 'choose':
        return best(ended(j + 1), ...(a.branches ?? []).map((b) => walk(b.actions, j + 1, { ...w, k: next })));
      case 'guarded': {
        // The recovery ends the step (failed), whether it runs to its end or to a done.
        const recover = (j2: number) => walk(a.onFailure ?? [], j2, { k: ended, f: ended, d: ended });
        return walk(a.actions ?? [], j + 1, { k: next, f: recover, d: w.d });
      }
      default:
        return best(next(j + 1), w.f(j + 1));
    }
  };
  const finished = (j: number): R => ({ explained: j, complete: true });
  const r = walk(planned, 0, { k: finished, f: ended, d: finished });
  // A path that ends before the run does leaves actions unexplained: never complete.
  return r.explained < ran.length ? { explained: r.explained, complete: false } : r;
}

export const actionLines = (actions: readonly ActionLike[]): string[] => actions.map((a) => actionLine(viewAction(a)));
