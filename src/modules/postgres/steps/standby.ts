/**
 * Standby-side steps shared by every runbook that ends with a streaming standby: its upstream
 * (primary_conninfo, primary_slot_name), no stale slots, and the verifications of the issue —
 * in recovery, the exact read-only error, pg_stat_replication streaming, slot active, a row
 * written on the primary visible on the standby. Verifications write a marker row, so they are
 * skipped in --check.
 */
import { blocked, change, fact, noop, stepsFor } from '../../../engine/define.js';
import type { Fact, RunContext, StepDef } from '../../../engine/types.js';
import {
  MARKER_TABLE,
  type PgSender,
  type PgSlot,
  type PgStatus,
  type PgWalReceiver,
  psqlCommand,
  replicationFact,
  slotsFact,
  statusFact,
  walReceiverFact,
} from '../facts.js';
import { dataDirFact, type DataDirState } from '../layout-facts.js';
import { planSlots, planUpstream } from '../ops.js';
import { Command, sh, sql } from '../../../shell/index.js';
import { type PgParams, clusterOf, conninfoFor, connOfLayout, connOfNode, layoutOf, nodeOf } from '../cluster.js';
import { unfenceCommand } from '../control.js';
import { type Statuses, clusterStatusFacts, perNode, pick, statusesOf, topology } from '../topology.js';

type On<P> = (ctx: RunContext<P>) => string[];

export const READ_ONLY_ERROR = 'cannot execute CREATE TABLE in a read-only transaction';

/** primary_conninfo / primary_slot_name: a standby's point at the primary; reset on the primary. */
export function upstreamStep<P extends PgParams>(id: string, on: On<P>): StepDef<P, Record<string, unknown>> {
  const { step } = stepsFor<P>();
  return step({
    id,
    title: 'Upstream settings: primary_conninfo and primary_slot_name (standby), empty (primary)',
    on,
    become: true,
    gather: (ctx) => clusterStatusFacts(clusterOf(ctx)) as never,
    plan: (f, ctx) => {
      const c = clusterOf(ctx);
      const self = nodeOf(c, ctx.host.name);
      const statuses = statusesOf(f);
      const me = statuses[self.name]!;
      const t = topology(c, statuses);
      if (!me.up) return noop('not running');
      if (!me.inRecovery) return planUpstream(connOfLayout(layoutOf(ctx)), me, null);
      if (!t.primary) return blocked(`no single writable node to follow (writable: ${t.writable.map((n) => n.name).join(', ') || 'none'})`);
      return planUpstream(connOfLayout(layoutOf(ctx)), me, { conninfo: conninfoFor(c, t.primary, self), slot: self.slotName });
    },
  });
}

/**
 * After a promotion: empty primary_conninfo / primary_slot_name, reading only this node (the old
 * primary's host may be gone). A node still in recovery is left alone.
 */
export function resetUpstreamStep<P extends PgParams>(id: string, on: On<P>): StepDef<P, { self: PgStatus }> {
  const { step } = stepsFor<P>();
  return step({
    id,
    title: 'Upstream settings of the new primary: primary_conninfo and primary_slot_name empty',
    on,
    become: true,
    gather: (ctx) => ({ self: statusFact(connOfLayout(layoutOf(ctx))) }),
    plan: (f, ctx) => (f.self.up && f.self.inRecovery ? noop('still a standby: nothing to reset') : planUpstream(connOfLayout(layoutOf(ctx)), f.self, null)),
  });
}

/** Slots named after cluster nodes on a standby are leftovers of its life as primary. */
export function staleSlotsStep<P extends PgParams>(id: string, on: On<P>): StepDef<P, { self: PgStatus; slots: PgSlot[] | null }> {
  const { step } = stepsFor<P>();
  return step({
    id,
    title: 'No stale replication slots on standbys',
    on,
    become: true,
    gather: (ctx) => ({ self: statusFact(connOfLayout(layoutOf(ctx))), slots: slotsFact(connOfLayout(layoutOf(ctx))) }),
    plan: (f, ctx) => {
      if (!f.self.up) return noop('not running');
      if (!f.self.inRecovery) return noop('primary: its slots serve the standbys');
      const c = clusterOf(ctx);
      return planSlots(connOfLayout(layoutOf(ctx)), f.slots, [], c.nodes.map((n) => n.slotName));
    },
  });
}

/** Debian start.conf back to auto / systemd enabled, once a node is a standby again. */
export function unfenceStep<P extends PgParams>(id: string, on: On<P>): StepDef<P, { self: PgStatus; dataDir: DataDirState }> {
  const { step } = stepsFor<P>();
  return step({
    id,
    title: 'Start at boot again (undo the fence) once the node is a standby',
    on,
    become: true,
    gather: (ctx) => ({ self: statusFact(connOfLayout(layoutOf(ctx))), dataDir: dataDirFact(layoutOf(ctx)) }),
    plan: (f, ctx) => {
      const l = layoutOf(ctx);
      const fenced = f.dataDir.startConf === 'manual' || (f.dataDir.enabled !== null && f.dataDir.enabled !== 'enabled');
      if (!fenced) return noop('starts at boot');
      if (!f.self.up || !f.self.inRecovery) return noop('fenced and not a running standby: stays fenced');
      const cmd = unfenceCommand(l);
      return cmd ? change('start at boot again', [cmd]) : noop('nothing starts it at boot in this layout');
    },
  });
}

// ---------------------------------------------------------------- verification

/** The primary inserts a marker row, if it is the writable one (a DO block is harmless on a standby). */
function insertMarkerFact(conn: ReturnType<typeof connOfNode>, note: string): Fact<boolean> {
  return fact({
    name: 'verify.insert_marker',
    become: true,
    command: psqlCommand(
      conn,
      sql`DO $rb$ BEGIN IF NOT pg_is_in_recovery() THEN INSERT INTO ${sql.ident(MARKER_TABLE)} (note) VALUES (${note}); END IF; END $rb$;`,
    ),
    parse: (r) => r.exitCode === 0,
  });
}

/** Polls the standby for the marker row for up to `seconds`; true once seen. */
function markerSeenFact(conn: ReturnType<typeof connOfLayout>, note: string, seconds: number): Fact<boolean> {
  // A writable node answers 1 at once: it wrote the row itself, nothing to wait for.
  const query = sql`SELECT CASE WHEN pg_is_in_recovery() THEN (SELECT count(*) FROM ${sql.ident(MARKER_TABLE)} WHERE note = ${note}) ELSE 1 END`;
  // The query arrives once on stdin and is replayed into psql on every poll.
  const psql = new Command(psqlCommand(conn, query).parts);
  return fact({
    name: 'verify.marker_seen',
    become: true,
    command: sh`q=$(cat); i=0; while [ $i -lt ${seconds * 5} ]; do [ "$(printf '%s\n' "$q" | ${psql} 2>/dev/null)" = 1 ] && { echo seen; exit 0; }; sleep 0.2; i=$((i+1)); done; echo missing`.withStdin(query),
    parse: (r) => r.stdout.includes('seen'),
  });
}

/** The read-only test of seed 002, run on the standby: returns psql's error line. */
function readOnlyTestFact(conn: ReturnType<typeof connOfLayout>): Fact<string> {
  return fact({
    name: 'verify.read_only',
    become: true,
    command: psqlCommand(conn, sql`CREATE TABLE test (name char(10));`),
    parse: (r) => (r.exitCode === 0 ? 'CREATE TABLE succeeded: the standby is WRITABLE' : r.stderr.trim()),
  });
}

export function rowRoundTripStep<P extends PgParams>(id: string, on: On<P>): StepDef<P, { self: PgStatus; seen: boolean }> {
  const { step } = stepsFor<P>();
  return step({
    id,
    title: 'A row written on the primary is visible on the standby within 30 s',
    on,
    become: true,
    when: (ctx) => (ctx.checkMode ? 'writes a marker row: not in --check' : true),
    gather: (ctx) => {
      const c = clusterOf(ctx);
      const note = `verify ${ctx.host.name} ${new Date().toISOString()} ${Math.random().toString(36).slice(2, 8)}`;
      const peers = c.nodes.filter((n) => n.name !== ctx.host.name);
      return {
        self: statusFact(connOfLayout(layoutOf(ctx))),
        ...perNode('inserted', peers, (n) => insertMarkerFact(connOfNode(n), note)),
        seen: markerSeenFact(connOfLayout(layoutOf(ctx)), note, 30),
      };
    },
    plan: (f) => {
      if (!f.self.up) return blocked(`not running: ${f.self.error}`);
      if (!f.self.inRecovery) return noop('primary');
      return f.seen ? noop('the marker row written on the primary arrived') : blocked('the marker row written on the primary did not arrive within 30 s');
    },
  });
}

export interface VerifyFacts {
  statuses: Statuses;
  readOnly: string;
  receiver: PgWalReceiver | null;
  /** By node name. */
  senders: Record<string, PgSender[] | null>;
  slots: Record<string, PgSlot[] | null>;
}

type FlatVerifyFacts = { readOnly: string; receiver: PgWalReceiver | null } & Record<string, unknown>;

function unflatten(f: FlatVerifyFacts): VerifyFacts {
  return { statuses: statusesOf(f), readOnly: f.readOnly, receiver: f.receiver, senders: pick(f, 'senders'), slots: pick(f, 'slots') };
}

/** Pure: what is wrong with this standby (empty when verified). */
export function standbyProblems(self: string, f: VerifyFacts, c: ReturnType<typeof clusterOf>): string[] {
  const node = nodeOf(c, self);
  const t = topology(c, f.statuses);
  const me = f.statuses[self]!;
  const out: string[] = [];
  if (!me.up) return [`${self} is not running`];
  if (!me.inRecovery) return [`${self} is not in recovery`];
  if (!t.primary) return [`no single writable node (writable: ${t.writable.map((n) => n.name).join(', ') || 'none'})`];
  if (!f.readOnly.includes(READ_ONLY_ERROR)) out.push(`CREATE TABLE on ${self} did not fail with "${READ_ONLY_ERROR}": ${f.readOnly}`);
  const sender = (f.senders[t.primary.name] ?? []).find((s) => s.applicationName === node.applicationName);
  if (!sender) out.push(`pg_stat_replication on ${t.primary.name} has no ${node.applicationName}`);
  else if (sender.state !== 'streaming') out.push(`pg_stat_replication on ${t.primary.name}: ${node.applicationName} is ${sender.state}, not streaming`);
  const slot = (f.slots[t.primary.name] ?? []).find((s) => s.name === node.slotName);
  if (!slot) out.push(`slot ${node.slotName} missing on ${t.primary.name}`);
  else if (!slot.active) out.push(`slot ${node.slotName} on ${t.primary.name} is not active`);
  if (!f.receiver || f.receiver.status !== 'streaming') out.push(`${self}'s WAL receiver is ${f.receiver?.status ?? 'not running'}`);
  return out;
}

export function verifyStandbyStep<P extends PgParams>(id: string, on: On<P>): StepDef<P, FlatVerifyFacts> {
  const { step } = stepsFor<P>();
  return step({
    id,
    title: 'Standby verified: in recovery, read-only, streaming, slot active',
    on,
    become: true,
    when: (ctx) => (ctx.checkMode ? 'verifies the result of changes: not in --check' : true),
    gather: (ctx) => {
      const c = clusterOf(ctx);
      const peers = c.nodes.filter((n) => n.name !== ctx.host.name);
      const conn = connOfLayout(layoutOf(ctx));
      return {
        ...clusterStatusFacts(c),
        readOnly: readOnlyTestFact(conn),
        receiver: walReceiverFact(conn),
        ...perNode('senders', peers, (n) => replicationFact(connOfNode(n))),
        ...perNode('slots', peers, (n) => slotsFact(connOfNode(n))),
      } as never;
    },
    plan: (flat, ctx) => {
      const f = unflatten(flat);
      const me = f.statuses[ctx.host.name]!;
      if (me.up && !me.inRecovery) return noop('primary');
      const problems = standbyProblems(ctx.host.name, f, clusterOf(ctx));
      if (problems.length) return blocked(`verification failed: ${problems.join('; ')}`);
      const t = topology(clusterOf(ctx), f.statuses);
      return noop(`in recovery; "${READ_ONLY_ERROR}"; streaming to ${t.primary!.name} as ${nodeOf(clusterOf(ctx), ctx.host.name).applicationName}; slot active`);
    },
  });
}

/** The standby steps in order; `prefix` keeps step ids unique when a runbook uses the group twice. */
export function standbySteps<P extends PgParams>(prefix: string, on: On<P>): Array<StepDef<P, any>> {
  return [
    upstreamStep<P>(`${prefix}-upstream`, on),
    staleSlotsStep<P>(`${prefix}-stale-slots`, on),
    unfenceStep<P>(`${prefix}-unfence`, on),
    rowRoundTripStep<P>(`${prefix}-row-roundtrip`, on),
    verifyStandbyStep<P>(`${prefix}-verify`, on),
  ];
}
