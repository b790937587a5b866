/**
 * Prefetch (issue 17): before a step's check, the check facts of it and of every later step that
 * can be known by now are read in ONE batch per (host, become user), into the run's fact cache.
 * The later steps then plan from the cache; a converged re-run makes one round trip per host and
 * user for each level of `ctx.state` its steps depend on (e.g. the layout), not one per step.
 *
 * Correctness is the cache's: any apply clears it (the scheduler stops prefetching once anything
 * applied: each step then reads its own facts), probes and `cache: false` facts are never
 * prefetched (unless `readAhead`: then served once), and a step whose `when`, gather or operation reads a `ctx.state` key that is not set
 * yet is left for a later wave. A prefetch that fails for any reason only means the steps read
 * their facts themselves, as without it.
 */
import type { Command } from '../shell/command.js';
import type { ExecResult } from '../transport/types.js';
import { FactCache, type Engine } from './context.js';
import { factEntries, isRemote, runFactBatch } from './gather.js';
import type { Fact, FactMap, StepContext, StepDef } from './types.js';

type AnyStep = StepDef<any, any>;

const STATE_READ = Symbol('prefetch: step reads ctx.state');

/** The step's context with a `state` that refuses to read a key not set yet: an earlier step sets it. */
export function upFrontContext(ctx: StepContext<any>, state: Record<string, unknown> = ctx.state): StepContext<any> {
  const guarded = new Proxy(state, {
    get: (target, key) => {
      if (typeof key === 'symbol' || key in target) return Reflect.get(target, key);
      throw STATE_READ;
    },
    set: () => {
      throw STATE_READ; // a gather that writes state is not a pure read: leave it to its step
    },
  });
  return { ...ctx, state: guarded };
}

function factsWith(step: AnyStep, c: StepContext<any>, checkMode: boolean): FactMap<unknown> | undefined {
  if (step.when && step.when(c) !== true) return undefined;
  const map = (step.operation ? step.operation(c).facts : step.gather?.(c)) as FactMap<unknown> | undefined;
  // In --check a step with probes is "not verified" and reads nothing.
  if (map && checkMode && factEntries(map).some(([, , f]) => (isRemote(f) ? f.fact : f).probe)) return undefined;
  return map;
}

/**
 * The facts a step's check will read on `host`, if they can be known before any step ran. A step
 * that needs state an earlier step sets is built from `guess` (what an earlier run of this
 * runbook left for the host, see state-memo.ts) when there is one: a guess only says what to
 * read early; the step later uses a read only if it builds the very same command (cache key).
 */
export function upFrontFacts(step: AnyStep, ctx: StepContext<any>, checkMode: boolean, guess?: Record<string, unknown>): FactMap<unknown> | undefined {
  if (step.check) return undefined; // checks are verifications: polled, read fresh each time
  try {
    return factsWith(step, upFrontContext(ctx), checkMode);
  } catch (e) {
    if (e !== STATE_READ || !guess) return undefined; // cannot be built yet: the step reads its own facts
  }
  try {
    return factsWith(step, upFrontContext(ctx, { ...guess, ...ctx.state }), checkMode);
  } catch {
    return undefined;
  }
}

interface Batch {
  host: string;
  become: boolean | string | undefined;
  facts: Array<Fact<unknown>>;
  keys: string[];
}

/** Group the cacheable facts of `items` by (target host, become), each fact once. */
export function prefetchBatches(items: Array<{ step: AnyStep; host: string; map: FactMap<unknown> }>, cached?: (key: string) => boolean): Batch[] {
  const batches = new Map<string, Batch>();
  const seen = new Set<string>();
  for (const { step, host, map } of items) {
    for (const [, , src] of factEntries(map)) {
      const target = isRemote(src) ? src.onHost : host;
      const fact = isRemote(src) ? src.fact : src;
      if ((fact.cache === false && !fact.readAhead) || fact.probe) continue;
      const become = fact.become ?? step.become;
      const key = FactCache.key(target, become, fact.command as Command);
      if (key === undefined || seen.has(key) || cached?.(key)) continue;
      seen.add(key);
      const bk = `${target}\0${String(become ?? '')}`;
      let b = batches.get(bk);
      if (!b) batches.set(bk, (b = { host: target, become, facts: [], keys: [] }));
      b.facts.push(fact);
      b.keys.push(key);
    }
  }
  return [...batches.values()];
}

/**
 * A command that must run on a host before any of that host's up-front reads, in the same round
 * trip (the run lock): it goes first in the host's batch for become `true`, the host's batches for
 * other users wait for it, and the host's reads are kept only when `accept` says so.
 */
export interface Lead {
  hosts: string[];
  fact: (host: string) => Fact<unknown>;
  /** Whether the host's reads made after the lead may be used (e.g. the lock was taken). */
  accept: (host: string, result: ExecResult) => boolean;
}

/** The lead's own result per host: its exec result, or why the batch carrying it failed. */
export type LeadResults = Map<string, { result: ExecResult } | { error: unknown }>;

/**
 * Read the up-front facts of `steps` on their hosts into the run's cache. `hostsOf` says which of
 * the batch's hosts a step runs on; `contextOf` builds a step's context for a host. With `lead`,
 * each of its hosts runs the lead first (see Lead); its results are returned.
 */
export async function prefetchChecks(
  engine: Engine,
  steps: AnyStep[],
  hostsOf: (step: AnyStep) => string[],
  contextOf: (host: string) => StepContext<any>,
  timeoutSec = 120,
  lead?: Lead,
): Promise<LeadResults> {
  const cache = engine.factCache;
  const leads: LeadResults = new Map();
  const items = cache
    ? steps.flatMap((step) =>
        hostsOf(step).flatMap((host) => {
          const map = upFrontFacts(step, contextOf(host), Boolean(engine.run.checkMode), engine.stateGuess?.get(host));
          return map ? [{ step, host, map }] : [];
        }),
      )
    : [];
  const generation = cache?.generation ?? 0;
  const batches = prefetchBatches(items, (k) => cache?.has(k) ?? false);
  const leadHosts = new Set(lead?.hosts ?? []);
  for (const host of leadHosts)
    if (!batches.some((b) => b.host === host && b.become === true)) batches.push({ host, become: true, facts: [], keys: [] });
  const store = (b: Batch, results: ExecResult[]) => results.forEach((r, i) => cache?.store(b.keys[i]!, r, generation));
  const read = async (b: Batch) => {
    try {
      store(b, await runFactBatch(engine.pool, b.host, b.become, b.facts, timeoutSec));
    } catch {
      // Unreachable, a failing fact, an interrupt: each step meets it again in its own read.
    }
  };
  await Promise.all(
    [...new Set(batches.map((b) => b.host))].map(async (host) => {
      const own = batches.filter((b) => b.host === host);
      if (!lead || !leadHosts.has(host)) return Promise.all(own.map(read));
      const first = own.find((b) => b.become === true)!;
      let results: ExecResult[];
      try {
        results = await runFactBatch(engine.pool, host, true, [lead.fact(host), ...first.facts], timeoutSec);
      } catch (error) {
        leads.set(host, { error });
        return;
      }
      const [mine, ...rest] = results as [ExecResult, ...ExecResult[]];
      leads.set(host, { result: mine });
      if (!lead.accept(host, mine)) return;
      store(first, rest);
      await Promise.all(own.filter((b) => b !== first).map(read));
    }),
  );
  return leads;
}
