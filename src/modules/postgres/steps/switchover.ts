/**
 * Planned switchover back to the intended primary, with repmgr's gates: the standby streams with
 * replay caught up; a marker row is written and its LSN noted; CHECKPOINT and a clean stop of the
 * current primary; pg_controldata must say "shut down" and give the shutdown checkpoint; the
 * standby must replay past it within the timeout, else the old primary is started again (nothing
 * lost) and the step fails. Then promote, CHECKPOINT, reset the upstream, fence the old primary
 * for the rejoin steps that follow.
 */
import { blocked, change, noop, onHost, stepsFor } from '../../../engine/define.js';
import type { ApplyContext, StepDef } from '../../../engine/types.js';
import { controlDataFact, layoutFact } from '../layout-facts.js';
import { MARKER_TABLE, archiveBacklogFact, lsnToBigInt, markersFact, psqlCommand, statusFact } from '../facts.js';
import { waitFor } from '../../../core/wait.js';
import { sh, sql } from '../../../shell/index.js';
import { type PgNode, type PgParams, clusterOf, connOfLayout, connOfNode, layoutOf } from '../cluster.js';
import type { PgLayout } from '../layout.js';
import { receiverFact } from '../candidate.js';
import { fenceCommand, startCommand, stopCommand, unfenceCommand } from '../control.js';
import { promoteLocal } from './promote.js';
import { intendedPrimaryHost } from './inspect.js';
import { type Statuses, clusterStatus, eachNode, followsPrimary, topology } from '../topology.js';

export const SWITCHOVER_MARKER = 'pg.switchover_marker';

/** Every node's status and its archive backlog (.ready files), by node name. */
interface SwitchoverFacts {
  status: Statuses;
  ready: Record<string, number | null>;
}

export function switchoverStep<P extends PgParams>(id: string): StepDef<P, SwitchoverFacts> {
  const { step } = stepsFor<P>();
  return step({
    id,
    title: 'Planned switchover back to the intended primary (zero-loss gates, marker row)',
    on: intendedPrimaryHost,
    become: true,
    timeoutSec: 600,
    gather: (ctx) => {
      const c = clusterOf(ctx);
      return { status: clusterStatus(c), ready: eachNode(c.nodes, (n) => archiveBacklogFact(connOfNode(n))) };
    },
    plan: (f, ctx) => {
      const c = clusterOf(ctx);
      const statuses = f.status;
      const t = topology(c, statuses);
      const me = statuses[ctx.host.name]!;
      if (me.up && !me.inRecovery) return noop(`${ctx.host.name} is the primary`);
      const backlog = t.primary ? f.ready[t.primary.name] : null;
      if (backlog) return blocked(`${t.primary!.name} has ${backlog} WAL segments not archived yet (.ready in pg_wal/archive_status): a switchover now could lose them for the archive. Fix archiving (pg_stat_archiver) and run failback again`);
      if (!t.primary) return blocked(`no single writable node to switch over from (writable: ${t.writable.map((n) => n.name).join(', ') || 'none'})`);
      if (!followsPrimary(me, t.primary)) return blocked(`${ctx.host.name} is not a running standby of ${t.primary.name}: the rejoin steps did not converge`);
      if (me.up && me.replayPause && me.replayPause !== 'not paused') return blocked(`replay on ${ctx.host.name} is ${me.replayPause}`);
      return change(`switch over: stop ${t.primary.name} cleanly, promote ${ctx.host.name} once it replayed ${t.primary.name}'s shutdown checkpoint`, []);
    },
    confirm: {
      destructive: true,
      message: (ctx, plan) => `${plan.summary}. Writes pause for about a second; ${ctx.host.name} becomes the primary.`,
    },
    apply: async (ctx, _plan, f) => {
      const c = clusterOf(ctx);
      const old = topology(c, f.status).primary!;
      const ol = await ctx.read(onHost(old.name, layoutFact(old.vars)));
      if (typeof ol === 'string') throw new Error(`${old.name}: ${ol}`);
      const oconn = connOfNode(old);
      const mine = connOfLayout(layoutOf(ctx));

      // Gate 1: streaming before anything stops. Not "replay ≥ the primary's current LSN": under
      // steady writes that moves on forever. The zero-loss gate is the shutdown checkpoint below.
      await waitFor(ctx, {
        name: `${ctx.host.name} streams from ${old.name}`,
        timeoutMs: 30_000,
        intervalMs: 200,
        check: async (a) => {
          const rx = await a.read(receiverFact(mine));
          return rx?.status === 'streaming' ? true : `WAL receiver ${rx?.status ?? 'absent'}`;
        },
      });
      const note = `switchover ${old.name}->${ctx.host.name} ${new Date().toISOString()}`;
      const marker = await ctx.execOn(old.name, psqlCommand(oconn, sql`INSERT INTO ${sql.ident(MARKER_TABLE)} (note) VALUES (${note}); SELECT pg_current_wal_lsn(); CHECKPOINT;`), { become: true });
      ctx.log(`marker row "${note}" written on ${old.name} at LSN ${marker.stdout.trim()}`);
      ctx.state[SWITCHOVER_MARKER] = note;

      await ctx.execOn(old.name, stopCommand(ol), { become: true });
      const cd = await ctx.read(onHost(old.name, controlDataFact(ol)));
      if (!cd || cd.state !== 'shut down' || !cd.checkpointLsn) {
        await ctx.execOn(old.name, startCommand(ol), { become: true });
        throw new Error(`${old.name} did not shut down cleanly (${cd?.state ?? 'no control data'}): restarted it as the primary; nothing lost, nothing switched`);
      }
      ctx.log(`${old.name} shut down; shutdown checkpoint at ${cd.checkpointLsn}`);
      // Gate 2: the standby must replay past the shutdown checkpoint, or we undo.
      try {
        await waitFor(ctx, {
          name: `${ctx.host.name} replayed past ${old.name}'s shutdown checkpoint ${cd.checkpointLsn}`,
          timeoutMs: 30_000,
          intervalMs: 200,
          check: async (a) => {
            const s = await a.read(statusFact(mine));
            return s.up && s.replayLsn && lsnToBigInt(s.replayLsn) > lsnToBigInt(cd.checkpointLsn!) ? true : `replayed ${s.up ? s.replayLsn : 'down'}`;
          },
        });
      } catch (e) {
        await ctx.execOn(old.name, startCommand(ol), { become: true });
        throw new Error(`${(e as Error).message}: ${old.name} restarted as the primary; nothing lost, nothing switched`);
      }
      // Fenced before the promote: whatever happens next, the old primary cannot come back writable by itself.
      await ctx.execOn(old.name, fenceCommand(ol), { become: true });
      try {
        await promoteLocal(ctx, layoutOf(ctx));
      } catch (e) {
        throw new Error(`${(e as Error).message}: ${await undoSwitchover(ctx, old, ol)}`);
      }
      await ctx.exec(psqlCommand(mine, sql`ALTER SYSTEM RESET primary_conninfo;\nALTER SYSTEM RESET primary_slot_name;\nSELECT pg_reload_conf();`));
      const seen = await ctx.read(markersFact(mine));
      if (!seen?.includes(note)) throw new Error(`marker row "${note}" is missing on ${ctx.host.name} after the switchover`);
      ctx.log(`marker row present on ${ctx.host.name}: zero loss`);
    },
    verify: { converge: true },
  });
}

/**
 * The promote failed: if this node did not become writable, stop it (a pending promote dies with
 * the postmaster), bring the old primary back as the primary (unfenced), start this node again as
 * its standby. Returns what happened, for the error message.
 */
async function undoSwitchover<P>(ctx: ApplyContext<P>, old: PgNode, ol: PgLayout): Promise<string> {
  const l = layoutOf(ctx);
  const now = await ctx.read(statusFact(connOfLayout(l)));
  if (now.up && !now.inRecovery) return `${ctx.host.name} is writable after all; ${old.name} stays stopped and fenced`;
  await ctx.exec(stopCommand(l), { check: false });
  const cd = await ctx.read(controlDataFact(l));
  if (cd && cd.state === 'shut down') return `${ctx.host.name} promoted while stopping (pg_control: shut down); ${old.name} stays stopped and fenced: run failback`;
  await ctx.execOn(old.name, sh`rm -f ${`${ol.dataDir}/standby.signal`}`, { become: true });
  const unfence = unfenceCommand(ol);
  if (unfence) await ctx.execOn(old.name, unfence, { become: true });
  await ctx.execOn(old.name, startCommand(ol), { become: true });
  await ctx.exec(startCommand(l), { check: false });
  return `${old.name} restarted as the primary (it had shut down cleanly and ${ctx.host.name} had replayed all of it): nothing lost, nothing switched`;
}

/** Every marker row of the primary is on every standby (read-only; after the row round trip). */
export function markersEverywhereStep<P extends PgParams>(id: string): StepDef<P, { status: Statuses; markers: Record<string, string[] | null> }> {
  const { step } = stepsFor<P>();
  return step({
    id,
    title: 'Zero loss: every marker row on the primary is on every standby',
    on: intendedPrimaryHost,
    become: true,
    when: (ctx) => (ctx.checkMode ? 'compares after changes: not in --check' : true),
    gather: (ctx) => {
      const c = clusterOf(ctx);
      return { status: clusterStatus(c), markers: eachNode(c.nodes, (n) => markersFact(connOfNode(n))) };
    },
    plan: (f, ctx) => {
      const c = clusterOf(ctx);
      const t = topology(c, f.status);
      if (!t.primary) return blocked('no single writable node');
      const on = (n: string) => f.markers[n] ?? null;
      const want = on(t.primary.name) ?? [];
      const problems = c.nodes
        .filter((n) => n.name !== t.primary!.name)
        .map((n) => {
          const have = on(n.name);
          if (have === null) return `${n.name} does not answer`;
          const missing = want.filter((m) => !have.includes(m));
          return missing.length ? `${n.name} lacks ${missing.length} marker rows (${missing.slice(0, 3).join('; ')})` : '';
        })
        .filter(Boolean);
      return problems.length ? blocked(problems.join('; ')) : noop(`${want.length} marker rows on ${t.primary.name} are on every node`);
    },
  });
}
