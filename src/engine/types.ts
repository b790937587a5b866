/**
 * The authoring API of runbooks. A step is: gather read-only facts → plan (pure, no I/O) →
 * confirm (only when there is a change) → apply → verify (re-gather and find it converged, plus
 * assertions polled until they hold). "Changed" is derived from the plan, never declared.
 */
import type { Command } from '../shell/command.js';
import type { Secret } from '../shell/secret.js';
import type { ExecOptions, ExecResult } from '../transport/types.js';
import type { Action } from './actions.js';
import type { CheckDef } from './checks.js';

// ---------------------------------------------------------------- facts

/** A read-only probe: the command to run and how to read its result (pyinfra's facts). */
export interface Fact<T> {
  /** For messages and the batch script, e.g. "pg.in_recovery". */
  name: string;
  command: Command;
  /** Run through sudo (true: the host's become user) or as a given user (e.g. "postgres"). */
  become?: boolean | string;
  /** Turn the result into a value. Non-zero exits arrive here too; throw to fail the step. */
  parse(result: ExecResult): T;
  /**
   * false: never served from the run's fact cache (a value that changes by itself, e.g. a
   * timestamp or a counter). Default: a repeat read in a later step's check, with nothing applied
   * anywhere in between, reuses the earlier result.
   */
  cache?: boolean;
  /**
   * With `cache: false`: may still be read ahead with the other checks (the run's prefetch batch)
   * and then served ONCE, to the first check that reads it, if nothing applied in between; any
   * later read is fresh. For a value that changes by itself only in ways its step's plan copes with
   * when read a moment early (a detached job's state: a job seen running that ended meanwhile is
   * waited for, not started again).
   */
  readAhead?: boolean;
  /**
   * A probe (see probe()): an observation that may write (a marker, a read-only test, a WAL
   * switch). Never cached; not run in --check ("not verified in check mode").
   */
  probe?: boolean;
}

/** A fact read on another host, e.g. the primary's state from the standby's step. */
export interface RemoteFact<T> {
  onHost: string;
  fact: Fact<T>;
  /**
   * The value when `onHost` cannot be reached over SSH (connect, auth, host key): for steps that
   * must decide about a host that may be gone (fencing). Without it, unreachable fails the step.
   */
  unreachable?: (reason: string) => T;
}

export type FactSource<T> = Fact<T> | RemoteFact<T>;

/**
 * One fact per key (usually per node, each read on its own host), gathered into a typed record:
 * `status: perHost(nodes, (n) => onHost(n.name, statusFact(…)))` gives `f.status.pg1`.
 */
export interface FactGroup<V> {
  each: { [K in keyof V]: FactSource<V[K]> };
}

export type FactInput<V> = FactSource<V> | FactGroup<V>;
export type FactMap<F> = { [K in keyof F]: FactInput<F[K]> };

// ---------------------------------------------------------------- plans

export interface NoopPlan {
  kind: 'noop';
  /** Structured findings for the JSON report (e.g. a divergence ledger); masked there. */
  data?: Record<string, unknown>;
  reason: string;
}
export interface ChangePlan<D = Record<string, unknown>> {
  kind: 'change';
  summary: string;
  /** Exactly what apply does, in order (actions.ts); run by the interpreter unless the step has its own apply. */
  actions: Action[];
  /** @deprecated the commands of the exec actions on the step's own host; read `actions`. */
  commands: Command[];
  /** Typed data: structured findings for the JSON report (masked there), and what a hand-written apply needs. */
  data?: D;
  /** Unified diff of a file change; shown with --diff. Secrets masked by the renderer. */
  diff?: string;
}
export interface BlockedPlan {
  kind: 'blocked';
  /** Structured findings for the JSON report (e.g. a divergence ledger); masked there. */
  data?: Record<string, unknown>;
  reason: string;
}
export type Plan<D = Record<string, unknown>> = NoopPlan | ChangePlan<D> | BlockedPlan;

/** An idempotent building block: the facts it needs and a pure plan from them. */
export interface Operation<F> {
  facts: FactMap<F>;
  plan(facts: F): Plan;
}

// ---------------------------------------------------------------- params

export type ParamType = 'string' | 'number' | 'boolean' | 'secret' | 'list';

export interface ParamSpec<T> {
  type: ParamType;
  description: string;
  default?: T;
  /** Without a default and not required, the value may be undefined. */
  required?: boolean;
  /** For 'string': the allowed values. */
  choices?: readonly string[];
  /** Phantom, for typing only. */
  readonly __type?: T;
}

export type ParamSpecs = Record<string, ParamSpec<unknown>>;
export type ParamValues<S extends ParamSpecs> = {
  [K in keyof S]: S[K] extends ParamSpec<infer T> ? T : never;
};

// ---------------------------------------------------------------- contexts

export interface HostView {
  name: string;
  /** Merged inventory vars (secrets as Secret values). */
  vars: Record<string, unknown>;
  groups: string[];
  /** ansible_host or the name: what other hosts use to reach it. */
  address: string;
}

export interface RunContext<P> {
  params: P;
  /** The hosts selected for this run (after --limit). */
  hosts: HostView[];
  /** Hosts of a group or pattern within the whole inventory, in inventory order. */
  select(pattern: string): HostView[];
  /** --check: gather and plan only. */
  checkMode: boolean;
  /** The run's clock: plans compute time-dependent text (a timestamped path) from it, so the plan shows it exactly. */
  now(): Date;
}

export interface StepContext<P> extends RunContext<P> {
  host: HostView;
  /** Values remembered on this host by earlier steps (StepDef.remember). */
  state: Record<string, unknown>;
  /**
   * True only when `--approve ID` was given for exactly this id: for decisions `--yes` must never
   * cover (promoting with the old primary unfenced, discarding writes). Absent in unit fixtures.
   */
  approvedByName?: (id: string) => boolean;
  /**
   * In --check: the `step@host` pairs earlier steps would change. Evidence that depends on them (a
   * connection an earlier pg_hba change would admit) is "not verified", not a refusal. Absent in
   * unit fixtures.
   */
  pendingChanges?: () => string[];
}

export interface ApplyContext<P> extends StepContext<P> {
  /** Run on this host with the step's become; throws CommandFailedError on a non-zero exit unless check: false. */
  exec(command: Command, options?: ExecOptions): Promise<ExecResult>;
  /** Run on another host of the inventory. */
  execOn(host: string, command: Command, options?: ExecOptions): Promise<ExecResult>;
  /** Read a fact now (verification, polling). */
  read<T>(fact: FactSource<T>): Promise<T>;
  /** A progress line, shown in the task list or the log. */
  log(line: string): void;
}

export interface Assertion<P> {
  name: string;
  /** true when it holds, or what is wrong. Polled every intervalMs until timeoutMs. */
  check(ctx: ApplyContext<P>): Promise<true | string>;
  intervalMs?: number;
  timeoutMs?: number;
}

// ---------------------------------------------------------------- steps and runbooks

export interface Confirmation<P> {
  /** Destructive steps need a confirmation in a TTY and --yes / --approve in CI. */
  destructive: boolean;
  message(ctx: StepContext<P>, plan: ChangePlan): string;
}

export interface StepDef<P, F = Record<string, unknown>, D = any> {
  id: string;
  title: string;
  /** Hosts: a pattern (group, host, glob, a:&b …) or a function of the run; default: all selected. */
  on?: string | ((ctx: RunContext<P>) => string[]);
  /** true to run, or the reason to skip (reported "skipped: reason"). */
  when?: (ctx: StepContext<P>) => true | string;
  become?: boolean | string;
  gather?: (ctx: StepContext<P>) => FactMap<F>;
  /**
   * Facts that depend on what gather found (which node to ask, whether to ask at all): read in a
   * second batch after gather and merged into the same facts; undefined or {} reads nothing more.
   */
  followUp?: (facts: F, ctx: StepContext<P>) => Partial<FactMap<F>> | undefined;
  plan?: (facts: F, ctx: StepContext<P>) => Plan<D>;
  /** Alternative to gather + plan: one building block. */
  operation?: (ctx: StepContext<P>) => Operation<F>;
  confirm?: Confirmation<P>;
  /** The exception: a hand-written apply. Default: the interpreter runs plan.actions in order. */
  apply?: (ctx: ApplyContext<P>, plan: ChangePlan<D>, facts: F) => Promise<void>;
  verify?: {
    /** Re-gather after apply and require a noop plan (default true). */
    converge?: boolean;
    /** What must hold after apply, polled (checks.ts); a failure fails the step with kind verify (exit 4). */
    checks?: (ctx: StepContext<P>) => Array<CheckDef<P, any, any>>;
    assertions?: (ctx: StepContext<P>) => Assertion<P>[];
  };
  /** Set by defineCheck: the step is a check (no change, only what must hold). */
  check?: CheckDef<P, any, any>;
  /** Values for later steps on this host (state), from this step's facts. */
  remember?: (facts: F, ctx: StepContext<P>) => object;
  tags?: string[];
  retries?: number;
  /** Handler ids to run (once, at the end of the phase) when this step changed the host. */
  notify?: string[];
  /** Run on the first selected host only. */
  runOnce?: boolean;
  timeoutSec?: number;
}

/** Steps whose handlers flush at the phase's end. */
export interface PhaseDef<P> {
  phase: string;
  steps: Array<StepDef<P, any>>;
}

export interface RunbookDef<P, S extends ParamSpecs = ParamSpecs> {
  id: string;
  description: string;
  params: S;
  /** All problems at once; empty when fine. Runs before any host is touched. */
  validate?: (params: P, ctx: RunContext<P>) => string[];
  steps: Array<StepDef<P, any> | PhaseDef<P>>;
  /** Steps run on the hosts notified by a changed step, at the end of its phase / the runbook. */
  handlers?: Array<StepDef<P, any>>;
  /** Hosts per batch (Ansible's serial); default: all at once. */
  serial?: number;
  /** Stop every host when any host fails. */
  anyErrorsFatal?: boolean;
  /** Default hosts when no --limit is given. */
  hosts?: string;
  /** Extra text for `runbook describe` (e.g. the inventory contract). A module may also export `docs`. */
  docs?: string;
}

/** The param values of a spec map: `type P = ParamsOf<typeof params>`. */
export type ParamsOf<S extends ParamSpecs> = ParamValues<S>;

export type SecretParam = Secret;
