/**
 * Making a standby the primary: guard, promote, CHECKPOINT (pg_rewind needs it later), verify.
 * Used by failover (unplanned; the candidate is chosen in ./candidate.ts, the old primary fenced in
 * ./fence.ts) and, through `promoteActions`, by failback's planned switchover.
 */
import { blocked, change, fact, noop, perHost, stepsFor } from '../../../engine/define.js';
import { type Action, exec, waitUntil } from '../../../engine/actions.js';
import type { FactGroup, FactMap, StepContext, StepDef } from '../../../engine/types.js';
import { MARKER_TABLE, type PeerView, type PgStatus, lsnGte, peerViewFact, psqlCommand, statusFact } from '../facts.js';
import { sql } from '../../../shell/index.js';
import { type PgCluster, clusterOf, connOfLayout, layoutOf, peersOf } from '../cluster.js';
import { promoteCommand } from '../control.js';
import type { PgLayout } from '../layout.js';
import { type CandidateParams, candidateHost } from './candidate.js';

export interface FailoverParams extends CandidateParams {
  force: boolean;
  /** Run on the controller to fence an old primary that SSH cannot reach (see ../fence.ts). */
  fence_command: string | undefined;
}

/** What the candidate sees of each other node on its PostgreSQL port (over TCP, as the replication user), by node name. */
export function peerFacts(c: PgCluster, self: string): FactGroup<Record<string, PeerView>> {
  return perHost(peersOf(c, self), (n) => n.name, (n) => peerViewFact({ port: n.port, host: n.address, user: c.replicationUser }));
}

/** The candidate's own status and its view of every peer: what the failover guards decide from. */
export interface GuardFacts {
  self: PgStatus;
  peers: Record<string, PeerView>;
}
export function guardFacts(ctx: StepContext<FailoverParams>): FactMap<GuardFacts> {
  return { self: statusFact(connOfLayout(layoutOf(ctx))), peers: peerFacts(clusterOf(ctx), ctx.host.name) };
}

export type GuardVerdict = { kind: 'noop' | 'blocked'; reason: string } | { kind: 'go'; reason: string };

/** Pure: may `self` be promoted, given what it sees of itself and its peers? */
export function failoverVerdict(self: string, me: PgStatus, peers: Record<string, PeerView>, force: boolean, pauseDecided = false): GuardVerdict {
  const writablePeers = Object.entries(peers).filter(([, v]) => v.answers && !v.inRecovery).map(([n]) => n);
  if (!me.up) return { kind: 'blocked', reason: `${self} does not answer: ${me.error}` };
  if (!me.inRecovery) {
    if (writablePeers.length) return { kind: 'blocked', reason: `${self} and ${writablePeers.join(', ')} are all writable: split brain; fence one by hand, then run failback` };
    return { kind: 'noop', reason: `${self} is already the primary (writable); no other node answers as writable` };
  }
  // The candidate step decides about a paused replay (refused unless approved by name).
  if (!pauseDecided && me.replayPause && me.replayPause !== 'not paused') return { kind: 'blocked', reason: `replay on ${self} is ${me.replayPause}: resume it (pg_wal_replay_resume()) first` };
  if (writablePeers.length && !force)
    return {
      kind: 'blocked',
      reason: `${writablePeers.join(', ')} is reachable and writable: refusing to promote ${self} (two writable nodes). For a planned move use failback/switchover; to abandon ${writablePeers.join(', ')} anyway, re-run with -e force=true (its fence step asks for its own confirmation)`,
    };
  const down = Object.entries(peers).filter(([, v]) => !v.answers).map(([n]) => n);
  return { kind: 'go', reason: `${self} is in recovery (received ${me.receiveLsn}, replayed ${me.replayLsn}, timeline ${me.timeline}); ${writablePeers.length ? `writable peer ${writablePeers.join(', ')} will be fenced (force)` : `not answering: ${down.join(', ') || 'none'}`}` };
}

export const TIMELINE_BEFORE = 'pg.timeline_before';

export function failoverGuardStep<P extends FailoverParams>(): StepDef<P, GuardFacts> {
  const { step } = stepsFor<P>();
  return step({
    id: 'failover-guard',
    title: 'Guard: the candidate is a healthy standby and no other node is writable (unless force)',
    on: candidateHost,
    become: true,
    gather: guardFacts,
    plan: (f, ctx) => {
      const v = failoverVerdict(ctx.host.name, f.self, f.peers, ctx.params.force, true);
      return v.kind === 'blocked' ? blocked(v.reason) : noop(v.reason);
    },
    remember: (f) => {
      const me = f.self;
      return me.up && me.inRecovery ? { [TIMELINE_BEFORE]: me.timeline, 'pg.received_lsn': me.receiveLsn } : {};
    },
  });
}

const isPaused = (s: PgStatus) => s.up && s.inRecovery && Boolean(s.replayPause) && s.replayPause !== 'not paused';
const caughtUp = (s: PgStatus): true | string =>
  s.up && s.inRecovery ? (lsnGte(s.replayLsn, s.receiveLsn) ? true : `replayed ${s.replayLsn} < received ${s.receiveLsn}`) : 'not a running standby';
const writable = (s: PgStatus): true | string => (s.up && !s.inRecovery ? true : 'still in recovery');

/**
 * The promote as actions, from the candidate's status at plan time: resume a paused replay (only
 * reached when approved by name), wait until replay caught up with receive, promote, wait until it
 * accepts writes, CHECKPOINT (so the new timeline is in pg_control: pg_rewind needs it later).
 */
export function promoteActions(l: PgLayout, me: PgStatus): Action[] {
  const conn = connOfLayout(l);
  return [
    ...(isPaused(me) ? [exec(psqlCommand(conn, sql`SELECT pg_wal_replay_resume();`), { note: `replay was ${me.up ? me.replayPause : ''}: approved by name` })] : []),
    waitUntil('replay caught up with receive', statusFact(conn), caughtUp, { intervalMs: 200, timeoutMs: 30_000 }),
    exec(promoteCommand(l)),
    waitUntil('it accepts writes', statusFact(conn), writable, { intervalMs: 200, timeoutMs: 60_000 }),
    exec(psqlCommand(conn, sql`CHECKPOINT;`)),
  ];
}

export function promoteStep<P extends FailoverParams>(): StepDef<P, GuardFacts> {
  const { step } = stepsFor<P>();
  return step({
    id: 'promote',
    title: 'Promote the candidate (replay caught up), then CHECKPOINT',
    on: candidateHost,
    become: true,
    gather: guardFacts,
    plan: (f, ctx) => {
      // force no longer counts here: the fence step ran, so a writable peer now means it failed.
      const v = failoverVerdict(ctx.host.name, f.self, f.peers, ctx.checkMode && ctx.params.force, true);
      if (v.kind !== 'go') return v.kind === 'blocked' ? blocked(v.reason) : noop(v.reason);
      const me = f.self;
      const at = me.up ? ` (last received ${me.receiveLsn}, replayed ${me.replayLsn}, timeline ${me.timeline})` : '';
      return change(`promote ${ctx.host.name}${at}: ${v.reason}`, promoteActions(layoutOf(ctx), me));
    },
    confirm: { destructive: true, message: (ctx, plan) => `${plan.summary}. ${ctx.host.name} starts a new timeline; the old primary can only come back through failback.` },
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
