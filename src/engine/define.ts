/**
 * Builders of the authoring API: defineRunbook, param.*, stepsFor, plan constructors, fact/onHost.
 * All are identities or tiny constructors: they exist for type inference, not behaviour.
 */
import { Command } from '../shell/command.js';
import type { Secret } from '../shell/secret.js';
import { type ActionLike, toAction } from './actions.js';
import type {
  BlockedPlan,
  ChangePlan,
  Fact,
  FactGroup,
  FactSource,
  NoopPlan,
  ParamSpec,
  ParamSpecs,
  ParamValues,
  PhaseDef,
  RemoteFact,
  RunbookDef,
  StepDef,
} from './types.js';

export function defineRunbook<S extends ParamSpecs>(def: RunbookDef<ParamValues<S>, S>): RunbookDef<ParamValues<S>, S> {
  return def;
}

/** `const { step, phase } = stepsFor<P>()`: F (the facts) is inferred from each step's gather. */
export function stepsFor<P>(): {
  step<F, D = unknown>(def: StepDef<P, F, D>): StepDef<P, F, D>;
  phase(name: string, steps: Array<StepDef<P, any>>): PhaseDef<P>;
} {
  return {
    step: (def) => def,
    phase: (name, steps) => ({ phase: name, steps }),
  };
}

export const noop = (reason: string): NoopPlan => ({ kind: 'noop', reason });
export const blocked = (reason: string): BlockedPlan => ({ kind: 'blocked', reason });
/**
 * A change: exactly the actions apply will take, in order (a Command is an exec on the step's
 * host). The third argument is a diff (string) or `{ diff, data }` (data for a hand-written apply).
 */
export function change<D = Record<string, unknown>>(summary: string, actions: readonly ActionLike[], more?: string | { diff?: string; data?: D }): ChangePlan<D> {
  const o = typeof more === 'string' ? { diff: more } : (more ?? {});
  const list = actions.map(toAction);
  const commands = list.flatMap((a) => (a.kind === 'exec' && !a.host && a.command instanceof Command ? [a.command] : []));
  return { kind: 'change', summary, actions: list, commands, ...(o.diff !== undefined ? { diff: o.diff } : {}), ...(o.data !== undefined ? { data: o.data } : {}) };
}

/** Identity, so a fact's T is inferred from parse. */
export function fact<T>(def: Fact<T>): Fact<T> {
  return def;
}

/** One fact per item (node), each read where `f` says (use onHost): a typed record by `key`. */
export function perHost<N, T>(items: readonly N[], key: (item: N) => string, f: (item: N) => FactSource<T>): FactGroup<Record<string, T>> {
  return { each: Object.fromEntries(items.map((i) => [key(i), f(i)])) };
}

/** Read `fact` on another host of the inventory (e.g. the primary's state from a standby's step). */
export function onHost<T, U = T>(host: string, f: Fact<T>, unreachable?: (reason: string) => U): RemoteFact<T | U> {
  return unreachable ? { onHost: host, fact: f, unreachable } : { onHost: host, fact: f };
}

// ---------------------------------------------------------------- params

interface BaseOpts {
  description: string;
}
type Opts<T> = BaseOpts & { choices?: readonly string[] } & ({ default: T } | { required: true } | { required?: false });

function make<T>(type: ParamSpec<T>['type']) {
  function build(opts: BaseOpts & { default: T; choices?: readonly string[] }): ParamSpec<T>;
  function build(opts: BaseOpts & { required: true; choices?: readonly string[] }): ParamSpec<T>;
  function build(opts: BaseOpts & { required?: false; choices?: readonly string[] }): ParamSpec<T | undefined>;
  function build(opts: Opts<T>): ParamSpec<T> | ParamSpec<T | undefined> {
    return { type, ...opts } as ParamSpec<T>;
  }
  return build;
}

/** Typed params: with a default or `required: true` the value is T, otherwise T | undefined. */
export const param = {
  string: make<string>('string'),
  number: make<number>('number'),
  boolean: make<boolean>('boolean'),
  /** Given with --secret NAME=env:VAR|file:PATH or a secret inventory var; masked everywhere. */
  secret: make<Secret>('secret'),
  /** From -e name=a,b,c, a YAML list in -e @file.yml, or an inventory list. */
  list: make<string[]>('list'),
};
