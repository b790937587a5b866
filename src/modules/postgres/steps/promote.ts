/**
 * Making a standby the primary: fence the old primary, promote, CHECKPOINT (pg_rewind needs it
 * later), verify. Used by failover (unplanned) and, through `promoteLocal`, by failback's planned
 * switchover. The peer is judged over the network (psql to its port), so a host that is gone
 * (no SSH) does not stop a failover.
 */
import { blocked, change, fact, noop, onHost, stepsFor } from '../../../engine/define.js';
import type { ApplyContext, RunContext, StepDef } from '../../../engine/types.js';
import { UnreachableError } from '../../../errors.js';
import { layoutFact } from '../layout-facts.js';
import { MARKER_TABLE, type PeerView, type PgStatus, lsnGte, peerViewFact, psqlCommand, statusFact } from '../facts.js';
import { waitFor } from '../../../core/wait.js';
import { sql } from '../../../shell/index.js';
import { type PgCluster, type PgNode, type PgParams, clusterOf, connOfLayout, layoutOf, nodeOf, peersOf } from '../cluster.js';
import { fenceCommand, promoteCommand, stopCommand } from '../control.js';
import type { PgLayout } from '../layout.js';

export interface FailoverParams extends PgParams {
  candidate: string | undefined;
  force: boolean;
}

/** The node to promote: the param, else the first node that is not the intended primary. */
export function candidateOf(c: PgCluster, candidate: string | undefined): PgNode {
  return candidate ? nodeOf(c, candidate) : c.nodes.find((n) => !n.intendedPrimary)!;
}

export function candidateHost<P extends FailoverParams>(ctx: RunContext<P>): string[] {
  try {
    return [candidateOf(clusterOf(ctx), ctx.params.candidate).name];
  } catch {
    return [];
  }
}

/** What the candidate sees of each other node on its PostgreSQL port (over TCP, as the replication user). */
function peerFacts(c: PgCluster, self: string): Record<string, ReturnType<typeof peerViewFact>> {
  return Object.fromEntries(
    peersOf(c, self).map((n) => [`peer:${n.name}`, peerViewFact({ port: n.port, host: n.address, user: c.replicationUser })]),
  );
}

function peersFrom(f: Record<string, unknown>): Record<string, PeerView> {
  const out: Record<string, PeerView> = {};
  for (const [k, v] of Object.entries(f)) if (k.startsWith('peer:')) out[k.slice(5)] = v as PeerView;
  return out;
}

export type GuardVerdict = { kind: 'noop' | 'blocked'; reason: string } | { kind: 'go'; reason: string };

/** Pure: may `self` be promoted, given what it sees of itself and its peers? */
export function failoverVerdict(self: string, me: PgStatus, peers: Record<string, PeerView>, force: boolean): GuardVerdict {
  const writablePeers = Object.entries(peers).filter(([, v]) => v.answers && !v.inRecovery).map(([n]) => n);
  if (!me.up) return { kind: 'blocked', reason: `${self} does not answer: ${me.error}` };
  if (!me.inRecovery) {
    if (writablePeers.length) return { kind: 'blocked', reason: `${self} and ${writablePeers.join(', ')} are all writable: split brain; fence one by hand, then run failback` };
    return { kind: 'noop', reason: `${self} is already the primary (writable); no other node answers as writable` };
  }
  if (me.replayPause && me.replayPause !== 'not paused') return { kind: 'blocked', reason: `replay on ${self} is ${me.replayPause}: resume it (pg_wal_replay_resume()) first` };
  if (writablePeers.length && !force)
    return {
      kind: 'blocked',
      reason: `${writablePeers.join(', ')} is reachable and writable: refusing to promote ${self} (two writable nodes). For a planned move use failback/switchover; to abandon ${writablePeers.join(', ')} anyway, re-run with -e force=true (its fence step asks for its own confirmation)`,
    };
  const down = Object.entries(peers).filter(([, v]) => !v.answers).map(([n]) => n);
  return { kind: 'go', reason: `${self} is in recovery (received ${me.receiveLsn}, replayed ${me.replayLsn}, timeline ${me.timeline}); ${writablePeers.length ? `writable peer ${writablePeers.join(', ')} will be fenced (force)` : `not answering: ${down.join(', ') || 'none'}`}` };
}

export const TIMELINE_BEFORE = 'pg.timeline_before';

export function failoverGuardStep<P extends FailoverParams>(): StepDef<P, Record<string, unknown>> {
  const { step } = stepsFor<P>();
  return step({
    id: 'failover-guard',
    title: 'Guard: the candidate is a healthy standby and no other node is writable (unless force)',
    on: candidateHost,
    become: true,
    gather: (ctx) => ({ self: statusFact(connOfLayout(layoutOf(ctx))), ...peerFacts(clusterOf(ctx), ctx.host.name) }) as never,
    plan: (f, ctx) => {
      const v = failoverVerdict(ctx.host.name, f.self as PgStatus, peersFrom(f), ctx.params.force);
      return v.kind === 'blocked' ? blocked(v.reason) : noop(v.reason);
    },
    remember: (f) => {
      const me = f.self as PgStatus;
      return me.up && me.inRecovery ? { [TIMELINE_BEFORE]: me.timeline, 'pg.received_lsn': me.receiveLsn } : {};
    },
  });
}

/** Stop `peer` and keep it from starting as a primary; false when its host cannot be reached. */
async function fencePeer<P>(ctx: ApplyContext<P>, peer: PgNode): Promise<boolean> {
  try {
    const l = await ctx.read(onHost(peer.name, layoutFact(peer.vars)));
    if (typeof l === 'string') throw new Error(`${peer.name}: ${l}`);
    await ctx.execOn(peer.name, stopCommand(l), { become: true });
    await ctx.execOn(peer.name, fenceCommand(l), { become: true });
    ctx.log(`${peer.name}: stopped and fenced (standby.signal${l.family === 'debian' ? ', start.conf manual' : ''}${l.ctl === 'systemd' ? ', unit disabled' : ''})`);
    return true;
  } catch (e) {
    if (e instanceof UnreachableError || (e as Error).name === 'UnreachableError') {
      ctx.log(`${peer.name}: host unreachable (${(e as Error).message}): cannot fence it; it does not answer on its port either`);
      return false;
    }
    throw e;
  }
}

export function fenceStep<P extends FailoverParams>(): StepDef<P, Record<string, unknown>> {
  const { step } = stepsFor<P>();
  return step({
    id: 'fence-old-primary',
    title: 'Fence the old primary: stop it and keep it from starting as a primary',
    on: candidateHost,
    become: true,
    gather: (ctx) => ({ self: statusFact(connOfLayout(layoutOf(ctx))), ...peerFacts(clusterOf(ctx), ctx.host.name) }) as never,
    plan: (f, ctx) => {
      const me = f.self as PgStatus;
      const peers = peersFrom(f);
      const v = failoverVerdict(ctx.host.name, me, peers, ctx.params.force);
      if (v.kind !== 'go') return v.kind === 'blocked' ? blocked(v.reason) : noop(v.reason);
      const names = peersOf(clusterOf(ctx), ctx.host.name).map((n) => {
        const p = peers[n.name];
        return `${n.name} (${p?.answers ? (p.inRecovery ? 'in recovery' : 'WRITABLE') : 'not answering'})`;
      });
      return change(`fence ${names.join(', ')}: stop PostgreSQL, standby.signal, no start at boot`, []);
    },
    confirm: {
      destructive: true,
      message: (ctx, plan) => `${plan.summary}. ${ctx.params.force ? 'force=true: a WRITABLE primary loses its clients and any write not yet replicated to ' + ctx.host.name + '.' : ''}`,
    },
    apply: async (ctx) => {
      for (const peer of peersOf(clusterOf(ctx), ctx.host.name)) await fencePeer(ctx, peer);
    },
    verify: {
      converge: false,
      assertions: (ctx) =>
        peersOf(clusterOf(ctx), ctx.host.name).map((n) => ({
          name: `${n.name} is not writable`,
          timeoutMs: 20_000,
          check: async (a: ApplyContext<P>) => {
            const v = await a.read(peerViewFact({ port: n.port, host: n.address, user: clusterOf(a).replicationUser }));
            return v.answers && !v.inRecovery ? `${n.name} still answers as writable` : true;
          },
        })),
    },
  });
}

/** Promote this node, wait until it accepts writes, CHECKPOINT (so the new timeline is in pg_control). */
export async function promoteLocal<P>(ctx: ApplyContext<P>, l: PgLayout): Promise<void> {
  const conn = connOfLayout(l);
  await waitFor(ctx, {
    name: 'replay caught up with receive',
    timeoutMs: 30_000,
    intervalMs: 200,
    check: async (c) => {
      const s = await c.read(statusFact(conn));
      return s.up && s.inRecovery ? (lsnGte(s.replayLsn, s.receiveLsn) ? true : `replayed ${s.replayLsn} < received ${s.receiveLsn}`) : 'not a running standby';
    },
  });
  const before = await ctx.read(statusFact(conn));
  if (before.up) ctx.log(`last received LSN ${before.receiveLsn}, replayed ${before.replayLsn}, timeline ${before.timeline}`);
  await ctx.exec(promoteCommand(l));
  await waitFor(ctx, {
    name: 'accepts writes',
    timeoutMs: 60_000,
    intervalMs: 200,
    check: async (c) => {
      const s = await c.read(statusFact(conn));
      return s.up && !s.inRecovery ? true : 'still in recovery';
    },
  });
  await ctx.exec(psqlCommand(conn, sql`CHECKPOINT;`));
}

export function promoteStep<P extends FailoverParams>(): StepDef<P, Record<string, unknown>> {
  const { step } = stepsFor<P>();
  return step({
    id: 'promote',
    title: 'Promote the candidate (replay caught up), then CHECKPOINT',
    on: candidateHost,
    become: true,
    gather: (ctx) => ({ self: statusFact(connOfLayout(layoutOf(ctx))), ...peerFacts(clusterOf(ctx), ctx.host.name) }) as never,
    plan: (f, ctx) => {
      // force no longer counts here: the fence step ran, so a writable peer now means it failed.
      const v = failoverVerdict(ctx.host.name, f.self as PgStatus, peersFrom(f), ctx.checkMode && ctx.params.force);
      if (v.kind !== 'go') return v.kind === 'blocked' ? blocked(v.reason) : noop(v.reason);
      return change(`promote ${ctx.host.name}: ${v.reason}`, []);
    },
    confirm: { destructive: true, message: (ctx, plan) => `${plan.summary}. ${ctx.host.name} starts a new timeline; the old primary can only come back through failback.` },
    apply: async (ctx) => promoteLocal(ctx, layoutOf(ctx)),
  });
}

/** Verify a fresh primary: writable, timeline advanced, a test write succeeds. */
export function verifyPrimaryStep<P extends FailoverParams>(): StepDef<P, { self: PgStatus; wrote: boolean }> {
  const { step } = stepsFor<P>();
  return step({
    id: 'verify-new-primary',
    title: 'New primary verified: writable, timeline advanced, a test write succeeds',
    on: candidateHost,
    become: true,
    when: (ctx) => (ctx.checkMode ? 'writes a marker row: not in --check' : true),
    gather: (ctx) => ({ self: statusFact(connOfLayout(layoutOf(ctx))), wrote: writeMarkerFact(connOfLayout(layoutOf(ctx)), `failover ${ctx.host.name} ${new Date().toISOString()}`) }),
    plan: (f, ctx) => {
      if (!f.self.up || f.self.inRecovery) return blocked(`${ctx.host.name} is not writable`);
      const before = ctx.state[TIMELINE_BEFORE] as number | undefined;
      if (before !== undefined && !(f.self.timeline > before)) return blocked(`timeline did not advance (${before} → ${f.self.timeline})`);
      if (!f.wrote) return blocked('the test write failed');
      return noop(`writable; timeline ${before !== undefined ? `${before} → ` : ''}${f.self.timeline}; test write ok`);
    },
  });
}

/** INSERT a marker row; true when it committed. */
export function writeMarkerFact(conn: ReturnType<typeof connOfLayout>, note: string) {
  return fact({
    name: 'verify.write',
    become: true,
    command: psqlCommand(conn, sql`INSERT INTO ${sql.ident(MARKER_TABLE)} (note) VALUES (${note}) RETURNING id;`),
    parse: (r) => r.exitCode === 0 && /^\d+/.test(r.stdout.trim()),
  });
}
