/**
 * Standby-side steps shared by every runbook that ends with a streaming standby: its upstream
 * (primary_conninfo, primary_slot_name), no stale slots, and the verifications of the issue —
 * in recovery, the exact read-only error, pg_stat_replication streaming, slot active, a row
 * WAL message written on the primary replayed on the standby. The verifications are checks with
 * probes (they write): not verified in --check, a failure exits 4.
 */
import { blocked, change, noop, stepsFor } from '../../../engine/define.js';
import { type CheckAnswer, defineCheck } from '../../../engine/checks.js';
import type { RunContext, StepDef } from '../../../engine/types.js';
import {
  type PgSender,
  type PgSlot,
  type PgStatus,
  type PgWalReceiver,
  lsnGte,
  replayWaitFact,
  replicationFact,
  slotsFact,
  statusFact,
  walReceiverFact,
} from '../facts.js';
import { READ_ONLY_ERROR, emitMessageProbe, readOnlyTestProbe } from '../probes.js';
import { dataDirFact, type DataDirState } from '../layout-facts.js';
import { planSlots, planUpstream } from '../ops.js';
import { type PgParams, clusterOf, conninfoFor, connOfLayout, connOfNode, layoutOf, nodeOf, peersOf } from '../cluster.js';
import { unfenceCommand } from '../control.js';
import { type Statuses, clusterStatus, eachNode, topology } from '../topology.js';

type On<P> = (ctx: RunContext<P>) => string[];

export { READ_ONLY_ERROR };

/** primary_conninfo / primary_slot_name: a standby's point at the primary; reset on the primary. */
export function upstreamStep<P extends PgParams>(id: string, on: On<P>): StepDef<P, { status: Statuses }> {
  const { step } = stepsFor<P>();
  return step({
    id,
    title: 'Upstream settings: primary_conninfo and primary_slot_name (standby), empty (primary)',
    on,
    become: true,
    gather: (ctx) => ({ status: clusterStatus(clusterOf(ctx)) }),
    plan: (f, ctx) => {
      const c = clusterOf(ctx);
      const self = nodeOf(c, ctx.host.name);
      const statuses = f.status;
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

/**
 * The replication round trip, with no table that grows: each peer that is writable writes a WAL
 * message (pg_logical_emit_message, once), then this standby is polled until it has replayed past
 * that LSN. A probe: not verified in --check.
 */
export function rowRoundTripStep<P extends PgParams>(id: string, on: On<P>): StepDef<P, { self: PgStatus }> {
  return defineCheck<P, { self: PgStatus; wait?: null }, { lsn: Record<string, string | null> }>({
    id,
    title: 'A change written on the primary is replayed on the standby within 30 s',
    name: 'a WAL message written on the primary is replayed on the standby',
    on,
    become: true,
    intervalMs: 200,
    timeoutMs: 30_000,
    prepare: (ctx) => {
      const nonce = `verify ${ctx.host.name} ${ctx.now().toISOString()} ${Math.random().toString(36).slice(2, 8)}`;
      return { lsn: eachNode(peersOf(clusterOf(ctx), ctx.host.name), (n) => emitMessageProbe(connOfNode(n), nonce)) };
    },
    // The server waits (up to 3 s) for the replay before the status is read, in the same script.
    gather: (ctx, s) => {
      const conn = connOfLayout(layoutOf(ctx));
      const at = Object.values(s?.lsn ?? {}).find((l): l is string => Boolean(l));
      return { ...(at ? { wait: replayWaitFact(conn, at) } : {}), self: statusFact(conn) };
    },
    holds: (f, _ctx, s) => roundTripVerdict(f.self, s.lsn),
  });
}

/** Pure: has this node replayed past the LSN a writable peer wrote? */
export function roundTripVerdict(self: PgStatus, lsn: Record<string, string | null>): CheckAnswer {
  if (!self.up) return `not running: ${self.error}`;
  if (!self.inRecovery) return { ok: 'primary: nothing to replay' };
  const written = Object.entries(lsn).find(([, l]) => l);
  if (!written) return `no writable peer wrote the message (${Object.keys(lsn).join(', ') || 'no peers'} in recovery or down)`;
  const [peer, at] = written as [string, string];
  return lsnGte(self.replayLsn, at) ? { ok: `replayed past ${at}, written on ${peer}` } : `replayed up to ${self.replayLsn ?? 'nothing'}, not yet ${at} (written on ${peer})`;
}

export interface VerifyFacts {
  status: Statuses;
  readOnly: { inRecovery: boolean; error: string };
  receiver: PgWalReceiver | null;
  /** By node name. */
  senders: Record<string, PgSender[] | null>;
  slots: Record<string, PgSlot[] | null>;
}

/** Pure: what is wrong with this standby (empty when verified). */
export function standbyProblems(self: string, f: VerifyFacts, c: ReturnType<typeof clusterOf>): string[] {
  const node = nodeOf(c, self);
  const t = topology(c, f.status);
  const me = f.status[self]!;
  const out: string[] = [];
  if (!me.up) return [`${self} is not running`];
  if (!me.inRecovery) return [`${self} is not in recovery`];
  if (!t.primary) return [`no single writable node (writable: ${t.writable.map((n) => n.name).join(', ') || 'none'})`];
  if (!f.readOnly.error.includes(READ_ONLY_ERROR)) out.push(`CREATE TABLE on ${self} did not fail with "${READ_ONLY_ERROR}": ${f.readOnly.error || 'it was not tried (writable)'}`);
  const sender = (f.senders[t.primary.name] ?? []).find((s) => s.applicationName === node.applicationName);
  if (!sender) out.push(`pg_stat_replication on ${t.primary.name} has no ${node.applicationName}`);
  else if (sender.state !== 'streaming') out.push(`pg_stat_replication on ${t.primary.name}: ${node.applicationName} is ${sender.state}, not streaming`);
  const slot = (f.slots[t.primary.name] ?? []).find((s) => s.name === node.slotName);
  if (!slot) out.push(`slot ${node.slotName} missing on ${t.primary.name}`);
  else if (!slot.active) out.push(`slot ${node.slotName} on ${t.primary.name} is not active`);
  if (!f.receiver || f.receiver.status !== 'streaming') out.push(`${self}'s WAL receiver is ${f.receiver?.status ?? 'not running'}`);
  return out;
}

/** In recovery, the exact read-only error (tried only on a standby), streaming, slot active. A probe: not verified in --check. */
export function verifyStandbyStep<P extends PgParams>(id: string, on: On<P>): StepDef<P, VerifyFacts> {
  return defineCheck<P, VerifyFacts>({
    id,
    title: 'Standby verified: in recovery, read-only, streaming, slot active',
    name: 'the standby is in recovery, read-only, streaming, its slot active',
    on,
    become: true,
    intervalMs: 1000,
    timeoutMs: 20_000,
    gather: (ctx) => {
      const c = clusterOf(ctx);
      const peers = peersOf(c, ctx.host.name);
      const conn = connOfLayout(layoutOf(ctx));
      return {
        status: clusterStatus(c),
        readOnly: readOnlyTestProbe(conn),
        receiver: walReceiverFact(conn),
        senders: eachNode(peers, (n) => replicationFact(connOfNode(n))),
        slots: eachNode(peers, (n) => slotsFact(connOfNode(n))),
      };
    },
    holds: (f, ctx) => {
      const c = clusterOf(ctx);
      const me = f.status[ctx.host.name]!;
      if (me.up && !me.inRecovery) return { ok: 'primary' };
      const problems = standbyProblems(ctx.host.name, f, c);
      if (problems.length) return problems;
      const t = topology(c, f.status);
      return { ok: `in recovery; "${READ_ONLY_ERROR}"; streaming to ${t.primary!.name} as ${nodeOf(c, ctx.host.name).applicationName}; slot active` };
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
