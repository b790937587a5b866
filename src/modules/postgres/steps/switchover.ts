/**
 * Planned switchover back to the intended primary, with repmgr's gates: the standby streams with
 * replay caught up; a marker row is written and its LSN noted; CHECKPOINT and a clean stop of the
 * current primary; pg_controldata must say "shut down" and give the shutdown checkpoint; the
 * standby must replay past it within the timeout, else the old primary is started again (nothing
 * lost) and the step fails. Then the old primary is fenced (for the rejoin steps that follow), the
 * standby promoted (undone if that fails), CHECKPOINT, its upstream reset, and the marker row must
 * be on it. All of it is the plan's actions (switchoverActions): `runbook plan` shows each gate, each
 * decision and each recovery in place.
 */
import { blocked, change, noop, onHost, stepsFor } from '../../../engine/define.js';
import { type Action, branch, choose, chooseOn, done, exec, execOn, fail, guarded, local, waitUntil } from '../../../engine/actions.js';
import type { StepContext, StepDef } from '../../../engine/types.js';
import type { ExecResult } from '../../../transport/types.js';
import { type ControlData, controlDataFact, layoutFact } from '../layout-facts.js';
import { MARKER_TABLE, type PgStatus, archiveBacklogFact, lsnToBigInt, markersFact, psqlCommand, statusFact } from '../facts.js';
import { type Command, sh, sql } from '../../../shell/index.js';
import { type PgNode, type PgParams, clusterOf, connOfLayout, connOfNode, layoutOf, nodeOf } from '../cluster.js';
import type { PgLayout } from '../layout.js';
import { receiverFact } from '../candidate.js';
import { fenceCommand, startCommand, stopCommand, unfenceCommand } from '../control.js';
import { promoteActions } from './promote.js';
import { intendedPrimaryHost } from './inspect.js';
import { type Statuses, clusterStatus, eachNode, followsPrimary, topology } from '../topology.js';

export const SWITCHOVER_MARKER = 'pg.switchover_marker';

/** Every node's status and its archive backlog (.ready files), by node name; the current primary's layout (read once there is one). */
interface SwitchoverFacts {
  status: Statuses;
  ready: Record<string, number | null>;
  oldLayout?: PgLayout | string;
}

/** pg_controldata as saved by an exec of controlDataFact's command (`saveAs`), parsed by that fact. */
const controlOf = (l: PgLayout, r: ExecResult | undefined): ControlData | null => (r ? controlDataFact(l).parse(r) : null);

/**
 * The switchover as actions, `self` the standby to promote (layout `l`), `old` the primary (layout
 * `ol`), `me` its status (replay not paused: the plan refused that), `note` the marker row's text. Gate 1: streaming before anything stops (not "replay ≥ the
 * primary's current LSN": under steady writes that moves on forever). Gate 2, the zero-loss one:
 * after a clean stop, the standby replays past the shutdown checkpoint, or the old primary is
 * started again. The old primary is fenced before the promote; if the promote fails, it is undone.
 */
export function switchoverActions(self: PgNode, l: PgLayout, me: PgStatus, old: PgNode, ol: PgLayout, note: string, state: Record<string, unknown>, routing: SwitchoverRouting = NO_ROUTING): Action[] {
  const mine = connOfLayout(l);
  const on = (cmd: Command, o: { saveAs?: string; mayFail?: boolean; note?: string } = {}) => execOn(old.name, cmd, { become: true, ...o });
  const restarted = `${old.name} restarted as the primary; nothing lost, nothing switched`;
  return [
    waitUntil(`${self.name} streams from ${old.name}`, receiverFact(mine), (rx) => (rx?.status === 'streaming' ? true : `WAL receiver ${rx?.status ?? 'absent'}`), { intervalMs: 200, timeoutMs: 30_000 }),
    on(psqlCommand(connOfNode(old), sql`INSERT INTO ${sql.ident(MARKER_TABLE)} (note) VALUES (${note}); SELECT pg_current_wal_lsn(); CHECKPOINT;`), { note: 'the marker row, its LSN, a checkpoint' }),
    local('remember', `${SWITCHOVER_MARKER} = ${JSON.stringify(note)} (for the steps after this one)`, async () => {
      state[SWITCHOVER_MARKER] = note;
    }),
    // Clients leave the old primary right before its stop, not `fall` health checks after it.
    ...routing.release(old),
    on(stopCommand(ol)),
    guarded(
      `${self.name} takes over only once it replayed all of ${old.name}`,
      [
        on(controlDataFact(ol).command, { saveAs: 'control', note: 'the shutdown checkpoint' }),
        choose(`pg_controldata of ${old.name}`, (o) => {
          const cd = controlOf(ol, o.control);
          return cd && cd.state === 'shut down' && cd.checkpointLsn ? { branch: 'clean', saw: `${old.name} shut down; shutdown checkpoint at ${cd.checkpointLsn}` } : { branch: 'unclean', saw: cd?.state ?? 'no control data' };
        }, [
          branch('clean', 'it says "shut down" and gives the checkpoint location'),
          branch('unclean', 'otherwise', [fail(`${old.name} did not shut down cleanly (<its state>)`, (saw) => `${old.name} did not shut down cleanly (${saw})`)]),
        ]),
        waitUntil(
          `${self.name} replayed past ${old.name}'s shutdown checkpoint <from pg_controldata>`,
          statusFact(mine),
          (s, o) => {
            const lsn = controlOf(ol, o.control)?.checkpointLsn;
            return s.up && s.replayLsn && lsn && lsnToBigInt(s.replayLsn) > lsnToBigInt(lsn) ? true : `replayed ${s.up ? s.replayLsn : 'down'}, shutdown checkpoint ${lsn}`;
          },
          { intervalMs: 200, timeoutMs: 30_000 },
        ),
      ],
      [...routing.restore(old), on(startCommand(ol))],
      restarted,
    ),
    // Fenced before the promote: whatever happens next, the old primary cannot come back writable by itself.
    on(fenceCommand(ol)),
    guarded(`the promote of ${self.name}`, promoteActions(l, me), undoSwitchover(self, l, old, ol, routing), `${old.name} restarted as the primary (it had shut down cleanly and ${self.name} had replayed all of it): nothing lost, nothing switched`),
    exec(psqlCommand(mine, sql`ALTER SYSTEM RESET primary_conninfo;\nALTER SYSTEM RESET primary_slot_name;\nSELECT pg_reload_conf();`)),
    waitUntil(`the marker row "${note}" is on ${self.name}: zero loss`, markersFact(mine), (seen) => (seen?.includes(note) ? true : `marker row "${note}" is missing on ${self.name} after the switchover`), { intervalMs: 200, timeoutMs: 5_000 }),
    // The old primary, now stopped and fenced, fails its health checks anyway: routing to it is
    // allowed again, for the day it is promoted back.
    ...routing.restore(old),
  ];
}

/**
 * How clients are pointed at the primary, for the switchover to move them as part of it: actions
 * on the old primary that take clients off it (right before its stop) and let them come back
 * (after the switchover, and before any recovery restarts it as the primary). The VIP module
 * provides one (vipSwitchoverRouting); the default does nothing.
 */
export interface SwitchoverRouting {
  release(old: PgNode): Action[];
  restore(old: PgNode): Action[];
}

const NO_ROUTING: SwitchoverRouting = { release: () => [], restore: () => [] };

export function switchoverStep<P extends PgParams>(id: string, routing?: (ctx: StepContext<P>) => SwitchoverRouting | undefined): StepDef<P, SwitchoverFacts> {
  const { step } = stepsFor<P>();
  return step<SwitchoverFacts>({
    id,
    title: 'Planned switchover back to the intended primary (zero-loss gates, marker row)',
    on: intendedPrimaryHost,
    become: true,
    timeoutSec: 600,
    gather: (ctx) => {
      const c = clusterOf(ctx);
      return { status: clusterStatus(c), ready: eachNode(c.nodes, (n) => archiveBacklogFact(connOfNode(n))) };
    },
    // The current primary's layout: its stop, start and pg_controldata are in the plan.
    followUp: (f, ctx) => {
      const old = topology(clusterOf(ctx), f.status).primary;
      return old && old.name !== ctx.host.name ? { oldLayout: onHost(old.name, layoutFact(old.vars)) } : undefined;
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
      const ol = f.oldLayout;
      if (ol === undefined || typeof ol === 'string') throw new Error(`${t.primary.name}: ${ol ?? 'no layout read'}`);
      const note = `switchover ${t.primary.name}->${ctx.host.name} ${ctx.now().toISOString()}`;
      return change(
        `switch over: stop ${t.primary.name} cleanly, promote ${ctx.host.name} once it replayed ${t.primary.name}'s shutdown checkpoint`,
        switchoverActions(nodeOf(c, ctx.host.name), layoutOf(ctx), me, t.primary, ol, note, ctx.state, routing?.(ctx)),
      );
    },
    confirm: {
      destructive: true,
      message: (ctx, plan) => `${plan.summary}. Writes pause for about a second; ${ctx.host.name} becomes the primary.`,
    },
    verify: { converge: true },
  });
}

/**
 * The promote failed: if this node did not become writable, stop it (a pending promote dies with
 * the postmaster), bring the old primary back as the primary (unfenced), start this node again as
 * its standby. Each way it ends says what happened, for the error message.
 */
function undoSwitchover(self: PgNode, l: PgLayout, old: PgNode, ol: PgLayout, routing: SwitchoverRouting): Action[] {
  const unfence = unfenceCommand(ol);
  return [
    chooseOn(`${self.name} is writable after all`, statusFact(connOfLayout(l)), (now) => (now.up && !now.inRecovery ? 'writable' : 'not'), [
      branch('writable', 'it is', [done(`${self.name} is writable after all; ${old.name} stays stopped and fenced`)]),
      branch('not', 'it is not'),
    ]),
    exec(stopCommand(l), { mayFail: true }),
    exec(controlDataFact(l).command, { saveAs: 'self-control', mayFail: true }),
    choose(`pg_controldata of ${self.name}`, (o) => (o['self-control']?.exitCode === 0 && controlOf(l, o['self-control'])?.state === 'shut down' ? 'promoted' : 'not'), [
      branch('promoted', 'it says "shut down" (it promoted while stopping)', [done(`${self.name} promoted while stopping (pg_control: shut down); ${old.name} stays stopped and fenced: run failback`)]),
      branch('not', 'otherwise'),
    ]),
    execOn(old.name, sh`rm -f ${`${ol.dataDir}/standby.signal`}`, { become: true }),
    ...(unfence ? [execOn(old.name, unfence, { become: true })] : []),
    ...routing.restore(old),
    execOn(old.name, startCommand(ol), { become: true }),
    exec(startCommand(l), { mayFail: true }),
  ];
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
