/**
 * Reads that ride along (issue 17): while a check step polls, its reads on a host carry, in the
 * same script,
 * - the facts the NEXT step's first evaluation will read there, when that step is a check too
 *   (standby-verify after the row round trip: its reads go with the round trip's read back);
 * - the run lock's release, when nothing after this step can change anything (every later step is
 *   skipped by its `when`, or plans noop from facts already in the run's cache).
 *
 * Correctness: a read made ahead is served once, to the one host's check it was read for, and only
 * if nothing applied anywhere since it was read (FactCache.takeAhead: any apply clears it). Checks
 * apply nothing, so a read made during the earlier check's poll is as fresh as one made when the
 * next check starts: it comes after everything the run applied, also in a converging run. When what
 * was read ahead does not hold, the check reads afresh at once (then polls as usual). A release
 * that rode along is confirmed by its own result; a host where it did not run keeps its lock to the
 * end of the run (released there as before). Should a later step plan a change after all (the look
 * ahead was wrong), the lock is taken again before anything applies (Engine.runLock.beforeApply).
 */
import type { Command } from '../shell/command.js';
import type { ExecResult } from '../transport/types.js';
import { type Engine, FactCache } from './context.js';
import { entriesOf, gatherFrom, runFactBatch } from './gather.js';
import { upFrontContext } from './prefetch.js';
import { fact } from './define.js';
import type { Fact, FactMap, StepContext, StepDef } from './types.js';

type AnyStep = StepDef<any, any>;

/** The run lock as the engine sees it (run.ts builds it from the ClusterLock). */
export interface RunLockHooks {
  /** The command that releases the lock on `host`, while the run still holds it there. */
  releaseCommand(host: string): Command | undefined;
  /** The release sent along on `host` came back (exit 0: released there). */
  released(host: string, result: ExecResult): void;
  /** Before anything applies: the lock again on every host it was released from early. */
  beforeApply(): Promise<void>;
}

interface AheadRead {
  become: boolean | string | undefined;
  fact: Fact<unknown>;
  key: string;
  /** The hosts whose check reads it (a peer's status is read by several). */
  forHosts: string[];
}

/** What rides along with the polls of one check step, per target host. */
export interface Alongside {
  stepId: string;
  reads: Map<string, AheadRead[]>;
  /** Hosts whose lock release rides on this step's reads there. */
  release: Set<string>;
}

/** Whether `step` will neither apply nor read on the host of `ctx`: skipped, or noop from cached facts alone. */
export function plansNothing(engine: Engine, step: AnyStep, ctx: StepContext<any>): boolean {
  const cache = engine.factCache;
  if (!cache) return false;
  try {
    const c = upFrontContext(ctx);
    if (step.when && step.when(c) !== true) return true;
    if (step.check || (!step.plan && !step.operation)) return false;
    const cached = (target: string, become: boolean | string | undefined, f: Fact<unknown>) =>
      (f.cache === false && !f.readAhead) || f.probe ? undefined : cache.peek(FactCache.key(target, become, f.command)!);
    const host = ctx.host.name;
    if (step.operation) {
      const op = step.operation(c);
      const facts = gatherFrom(host, step.become, op.facts as FactMap<unknown>, cached);
      return facts !== undefined && op.plan(facts).kind === 'noop';
    }
    const facts = step.gather ? gatherFrom(host, step.become, step.gather(c) as FactMap<unknown>, cached) : {};
    if (facts === undefined) return false;
    const more = step.followUp?.(facts, c) as FactMap<unknown> | undefined;
    if (more && Object.keys(more).length) {
      const extra = gatherFrom(host, step.become, more, cached);
      if (extra === undefined) return false;
      Object.assign(facts as object, extra);
    }
    return step.plan!(facts, c).kind === 'noop';
  } catch {
    return false; // needs state not set yet, or a plan that throws: not known
  }
}

/**
 * What rides along with `step`'s polls: `rest` are the steps after it in run order, `quiet` says
 * whether the run allows an early release at all (no handler pending, no later host batch).
 */
export function planAlongside(engine: Engine, step: AnyStep, rest: AnyStep[], hostsOf: (s: AnyStep) => string[], contextOf: (host: string) => StepContext<any>, quiet: boolean): Alongside | undefined {
  if (!step.check || engine.run.checkMode || !engine.factCache) return undefined;
  const next = rest[0];
  const reads = new Map<string, AheadRead[]>();
  if (next?.check && !next.check.prepare) {
    for (const host of hostsOf(next)) {
      let map: FactMap<unknown>;
      try {
        const c = upFrontContext(contextOf(host));
        if (next.when && next.when(c) !== true) continue;
        map = next.check.gather(c, {}) as FactMap<unknown>;
      } catch {
        continue; // built from state not set yet: that host's check reads its own facts
      }
      for (const e of entriesOf(host, next.become, map)) {
        const key = FactCache.key(e.host, e.become, e.fact.command)!;
        let list = reads.get(e.host);
        if (!list) reads.set(e.host, (list = []));
        const same = list.find((r) => r.key === key);
        if (same) same.forHosts.push(host);
        else list.push({ become: e.become, fact: e.fact, key, forHosts: [host] });
      }
    }
  }
  const after = next?.check ? rest.slice(1) : rest;
  const lock = engine.runLock;
  const release = new Set<string>();
  if (lock && quiet && after.every((s) => hostsOf(s).every((h) => plansNothing(engine, s, contextOf(h)))))
    for (const h of hostsOf(step)) if (lock.releaseCommand(h)) release.add(h);
  return reads.size || release.size ? { stepId: step.id, reads, release } : undefined;
}

/**
 * Send what rides along with a read of `step` on `target`: call it in the same turn of the event
 * loop as that read (runFactBatch then sends both in one script, the riders after it).
 */
export function sendAlongside(engine: Engine, step: AnyStep, target: string, timeoutSec = 120): void {
  const a = engine.alongside;
  const cache = engine.factCache;
  if (!a || a.stepId !== step.id || !cache) return;
  const byUser = new Map<string, { become: boolean | string | undefined; reads: AheadRead[] }>();
  for (const r of a.reads.get(target) ?? []) {
    const k = String(r.become ?? '');
    let g = byUser.get(k);
    if (!g) byUser.set(k, (g = { become: r.become, reads: [] }));
    g.reads.push(r);
  }
  const release = a.release.has(target) ? engine.runLock?.releaseCommand(target) : undefined;
  if (release && !byUser.has('true')) byUser.set('true', { become: true, reads: [] });
  const generation = cache.generation;
  for (const [k, g] of byUser) {
    const facts = g.reads.map((r) => r.fact);
    const withRelease = release && k === 'true';
    if (withRelease) facts.push(fact({ name: 'run lock release', command: release, become: true, cache: false, parse: (r) => r }));
    runFactBatch(engine.pool, target, g.become, facts, timeoutSec).then(
      (results) => {
        g.reads.forEach((r, i) => r.forHosts.forEach((h) => cache.storeAhead(h, r.key, results[i]!, generation)));
        if (withRelease) {
          a.release.delete(target);
          engine.runLock?.released(target, results[results.length - 1]!);
        }
      },
      () => undefined, // a failed ride: each check reads its own facts, the lock is released at the end
    );
  }
}

/** The facts of `host`'s check that were read ahead for it, all or none (see the header). */
export function servedAhead<F>(engine: Engine, step: AnyStep, host: string, map: FactMap<F>): F | undefined {
  const cache = engine.factCache;
  if (!cache || !step.check) return undefined;
  return gatherFrom(host, step.become, map, (target, become, f) => cache.takeAhead(host, FactCache.key(target, become, f.command)!));
}
