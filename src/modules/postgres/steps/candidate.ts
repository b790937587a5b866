/**
 * failover's first step: read every node (each over its own SSH, an unreachable host is a value,
 * not an error) and choose the candidate by data (../candidate.ts). The choice is kept for the run
 * so that the later steps' `on` (a function of the run, not of facts) can name the candidate and
 * the standbys that must follow it.
 *
 * The step runs on one coordinator host: -e candidate, else the first node that is not the intended
 * primary. It must answer SSH (it is usually the candidate itself).
 */
import { blocked, noop, onHost, perHost, stepsFor } from '../../../engine/define.js';
import type { FactMap, RunContext, StepContext, StepDef } from '../../../engine/types.js';
import { statusFact } from '../facts.js';
import { type PgCluster, type PgParams, clusterOf, connOfNode, nodeOf, resolveCluster } from '../cluster.js';
import { type NodeView, type ReceiverView, approveCandidateId, chooseCandidate, DEFAULT_MAX_LAG, parseSize, receiverFact } from '../candidate.js';
import type { PgStatus } from '../facts.js';

export interface CandidateParams extends PgParams {
  candidate: string | undefined;
  max_lag_on_failover: string;
}

interface Choice {
  candidate: string;
  followers: string[];
}

/** The run's choice, keyed by its params object (one per run, shared by every step context). */
const chosen = new WeakMap<object, Choice>();

function coordinatorOf(c: PgCluster, named: string | undefined): string {
  return named ? nodeOf(c, named).name : (c.nodes.find((n) => !n.intendedPrimary) ?? c.nodes[0]!).name;
}

export function coordinatorHost<P extends CandidateParams>(ctx: RunContext<P>): string[] {
  const c = resolveCluster(ctx, ctx.params);
  if (Array.isArray(c)) return [];
  try {
    return [coordinatorOf(c, ctx.params.candidate)];
  } catch {
    return [];
  }
}

/** The chosen candidate (once the choice step ran), else the coordinator. */
export function candidateHost<P extends CandidateParams>(ctx: RunContext<P>): string[] {
  const ch = chosen.get(ctx.params as object);
  return ch ? [ch.candidate] : coordinatorHost(ctx);
}

/** The standbys that follow the new primary (every other node that answered in recovery). */
export function followerHosts<P extends CandidateParams>(ctx: RunContext<P>): string[] {
  return chosen.get(ctx.params as object)?.followers ?? [];
}

export function candidateAndFollowers<P extends CandidateParams>(ctx: RunContext<P>): string[] {
  return [...candidateHost(ctx), ...followerHosts(ctx)];
}

type Unreachable = { unreachable: string };
/** Every node's status and WAL receiver, each read over its own SSH; unreachable is a value. */
export interface CandidateFacts {
  st: Record<string, PgStatus | Unreachable>;
  rx: Record<string, ReceiverView | null | Unreachable>;
}

function candidateFacts(c: PgCluster): FactMap<CandidateFacts> {
  const unreachable = (reason: string): Unreachable => ({ unreachable: reason });
  return {
    st: perHost(c.nodes, (n) => n.name, (n) => onHost(n.name, statusFact(connOfNode(n)), unreachable)),
    rx: perHost(c.nodes, (n) => n.name, (n) => onHost(n.name, receiverFact(connOfNode(n)), unreachable)),
  };
}

/** The views from the gathered facts. */
export function nodeViews(c: PgCluster, f: CandidateFacts): NodeView[] {
  const { st, rx } = f;
  return c.nodes.map((n) => {
    const s = st[n.name];
    const priority = Number(n.vars.pg_priority ?? 100);
    if (!s || 'unreachable' in s) return { name: n.name, priority, reachable: false, unreachableReason: s && 'unreachable' in s ? s.unreachable : 'not read' };
    const r = rx[n.name];
    return { name: n.name, priority, reachable: true, status: s, receiver: r && 'unreachable' in r ? null : (r ?? null) };
  });
}

export function chooseCandidateStep<P extends CandidateParams>(): StepDef<P, CandidateFacts> {
  const { step } = stepsFor<P>();
  const decide = (f: CandidateFacts, ctx: StepContext<P>) => {
    const c = clusterOf(ctx);
    const views = nodeViews(c, f);
    const writable = views.filter((v) => v.status?.up && !v.status.inRecovery);
    const knownPrimaryLsn = writable.length === 1 && writable[0]!.status!.up ? writable[0]!.status!.currentLsn : null;
    return chooseCandidate({
      views,
      named: ctx.params.candidate,
      maxLagBytes: parseSize(ctx.params.max_lag_on_failover ?? DEFAULT_MAX_LAG),
      knownPrimaryLsn,
      approved: (n) => ctx.approvedByName?.(approveCandidateId(n)) ?? false,
      force: Boolean((ctx.params as { force?: boolean }).force),
      intendedPrimary: c.intendedPrimary.name,
    });
  };
  return step({
    id: 'failover-candidate',
    title: 'Choose the candidate by data: most advanced healthy standby (LSNs, timeline, replay, receiver), pg_priority on ties',
    on: coordinatorHost,
    become: true,
    gather: (ctx) => candidateFacts(clusterOf(ctx)),
    plan: (f, ctx) => {
      const v = decide(f, ctx);
      if (v.kind === 'blocked') return { ...blocked(v.reason), data: { ranking: v.ranking } };
      return { ...noop(`candidate ${v.candidate}${v.followers.length ? `, followers ${v.followers.join(', ')}` : ''}: ${v.reason}`), data: { candidate: v.candidate, followers: v.followers, ranking: v.ranking } };
    },
    remember: (f, ctx) => {
      const v = decide(f, ctx);
      if (v.kind === 'go') chosen.set(ctx.params as object, { candidate: v.candidate, followers: v.followers });
      return {};
    },
  });
}
