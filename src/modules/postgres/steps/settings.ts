/**
 * The settings steps of setup-warm-standby: the managed file (minimums raised to what the nodes
 * already have), the restart it may need (its own confirmation, one node at a time, standbys
 * first), and the proof that WAL archiving works.
 */
import { blocked, change, noop, onHost, stepsFor } from '../../../engine/define.js';
import type { StepContext, StepDef } from '../../../engine/types.js';
import { type Action, execOn, waitUntil } from '../../../engine/actions.js';
import { defineCheck, probe } from '../../../engine/checks.js';
import { Command, sh, sql } from '../../../shell/index.js';
import { type ArchiveProbe, archiveDir, archiveVerdict, parseArchiveProbe } from '../archive.js';
import { type PgNode, clusterOf, connOfLayout, connOfNode, layoutOf, nodeOf } from '../cluster.js';
import { restartCommand } from '../control.js';
import { type PgConn, type PgStatus, psqlCommand, statusFact } from '../facts.js';
import { layoutFact } from '../layout-facts.js';
import { MANAGED_CONF_NAME, type PgLayout } from '../layout.js';
import { type SettingsFacts, planSettings, settingsOp } from '../ops.js';
import {
  type CurrentSettings,
  RAISE_ONLY,
  type RestartNode,
  currentSettingsFact,
  describeKept,
  describePendingOthers,
  fileValue,
  pendingRestarts,
  raiseOnly,
  restartOrder,
  sourcesOutsideManaged,
} from '../settings.js';
import { SYNC_MARKER, SYNC_STRICT_MARKER, syncWish } from '../sync.js';
import { eachNode, isPristine } from '../topology.js';
import { type ReplicationSettingsParams, replicationSettings } from './primary.js';
import { clusterHosts, intendedPrimaryHost } from './inspect.js';

const isManaged = (file: string | null | undefined) => Boolean(file && file.endsWith(`/${MANAGED_CONF_NAME}`));
const NAMES = [...Object.keys(RAISE_ONLY), 'server_version_num', SYNC_MARKER, SYNC_STRICT_MARKER];

function running(cur: CurrentSettings | null | undefined, name: string): string | undefined {
  return cur?.running.find((r) => r.name === name)?.setting;
}

/** The file every node gets: the same on all of them, so it is computed from every node's values. */
export function wantedSettings<P extends ReplicationSettingsParams>(ctx: StepContext<P>, current: Record<string, CurrentSettings | null>) {
  const c = clusterOf(ctx);
  const l = layoutOf(ctx);
  const mine = current[ctx.host.name];
  const versionNum = Number(running(mine, 'server_version_num') ?? Number(l.version) * 10000);
  const markerOf = (cur: CurrentSettings | null | undefined) => ({ mode: fileValue(cur, SYNC_MARKER), strict: fileValue(cur, SYNC_STRICT_MARKER) });
  const marker = Object.values(current).map(markerOf).find((m) => m.mode) ?? null;
  const sync = syncWish(ctx.params.synchronous, nodeOf(c, ctx.host.name).vars.pg_synchronous, ctx.params.synchronous_strict, nodeOf(c, ctx.host.name).vars.pg_synchronous_strict, marker);
  const base = replicationSettings(ctx.params, ctx.host.vars.pg_settings, versionNum, sync);
  const sources = Object.entries(current).flatMap(([node, cur]) => (cur ? sourcesOutsideManaged(node, managedPathOf(cur), cur) : []));
  const raised = raiseOnly(base.settings, sources);
  // pg_settings is the operator's explicit word: it wins over the raise too.
  const extra = ctx.host.vars.pg_settings;
  if (extra && typeof extra === 'object' && !Array.isArray(extra)) for (const [k, v] of Object.entries(extra)) raised.settings[k] = String(v);
  const kept = raised.kept.filter((k) => !(extra && typeof extra === 'object' && k.name in (extra as object)));
  return { settings: raised.settings, notes: base.notes, kept };
}

/** The managed file's path as the node itself names it (any layout: by its file name). */
function managedPathOf(cur: CurrentSettings): string {
  return cur.files.find((f) => isManaged(f.sourcefile))?.sourcefile ?? `/${MANAGED_CONF_NAME}`;
}

type SettingsStepFacts = SettingsFacts & { cur: Record<string, CurrentSettings | null> };

export function settingsStep<P extends ReplicationSettingsParams>(id: string): StepDef<P, SettingsStepFacts> {
  const { step } = stepsFor<P>();
  return step({
    id,
    title: 'Replication settings in one managed file (minimums: never lower what a node has)',
    on: clusterHosts,
    become: true,
    gather: (ctx) => {
      const op = settingsOp(layoutOf(ctx), {});
      return { ...op.facts, cur: eachNode(clusterOf(ctx).nodes, (n) => currentSettingsFact(connOfNode(n), NAMES)) };
    },
    plan: (f, ctx) => {
      const w = wantedSettings(ctx, f.cur);
      const p = planSettings(layoutOf(ctx), w.settings, f);
      const extra = [describeKept(w.kept), ...w.notes].filter(Boolean).join('; ');
      if (!extra) return p;
      if (p.kind === 'noop') return noop(`${p.reason}; ${extra}`);
      if (p.kind === 'change') return { ...p, summary: `${p.summary}; ${extra}` };
      return p;
    },
  });
}

// ---------------------------------------------------------------- restart

/** What each node owes: restart-only settings pending from our file, and others' pending ones. */
export function restartNodes(nodes: PgNode[], current: Record<string, CurrentSettings | null>, inRecovery: Record<string, boolean | null>): RestartNode[] {
  return nodes.map((n) => {
    const cur = current[n.name];
    const p = cur ? pendingRestarts(managedPathOf(cur), cur) : { ours: [], others: [] };
    return { name: n.name, inRecovery: cur ? (inRecovery[n.name] ?? null) : null, ...p };
  });
}

/**
 * Restart for the restart-only settings the managed file changed, and only those: a pending
 * restart someone else staged is reported, not acted on. Destructive (clients are cut), so it has
 * its own confirmation; one node at a time, standbys first, each verified up in its role before
 * the next (a wait action between the restarts).
 */
/** Every node's settings, status and layout (or why there is none), by node name. */
interface RestartFacts {
  cur: Record<string, CurrentSettings | null>;
  st: Record<string, PgStatus>;
  layout: Record<string, PgLayout | string>;
}

export function restartStep<P extends ReplicationSettingsParams>(id: string): StepDef<P, RestartFacts> {
  const { step } = stepsFor<P>();
  return step({
    id,
    title: 'Restart for the settings this file changed (standbys first, one at a time)',
    on: intendedPrimaryHost,
    runOnce: true,
    become: true,
    timeoutSec: 900,
    gather: (ctx) => {
      const nodes = clusterOf(ctx).nodes;
      return {
        cur: eachNode(nodes, (n) => currentSettingsFact(connOfNode(n), NAMES)),
        st: eachNode(nodes, (n) => statusFact(connOfNode(n))),
        layout: eachNode(nodes, (n) => layoutFact(n.vars)),
      };
    },
    plan: (f, ctx) => {
      const c = clusterOf(ctx);
      const st = f.st;
      const rec = Object.fromEntries(Object.entries(st).map(([k, v]) => [k, v.up ? v.inRecovery : null]));
      const nodes = restartNodes(c.nodes, f.cur, rec);
      // A pristine stand-alone node other than the intended primary is replaced by the clone (which
      // starts it with the file): restarting it first would only let it archive WAL of its own.
      const replaced = restartOrder(nodes).filter((n) => !nodeOf(c, n.name).intendedPrimary && st[n.name] && isPristine(st[n.name]!));
      const order = restartOrder(nodes).filter((n) => !replaced.includes(n));
      const others = [describePendingOthers(nodes), ...replaced.map((n) => `${n.name}: not restarted (a pristine stand-alone server: the clone replaces it and starts it with the file)`)].filter(Boolean).join('; ');
      if (!order.length) return noop(["no restart owed for runbook's settings", others].filter(Boolean).join('; '));
      const layouts = f.layout;
      const bad = order.find((n) => typeof layouts[n.name] === 'string');
      if (bad) return blocked(`${bad.name}: ${layouts[bad.name] as string}`);
      const what = order.map((n) => `${n.name} (${n.inRecovery ? 'standby' : 'primary'}: ${n.ours.join(', ')}${n.others.length ? `; also applies ${n.others.map((o) => o.name).join(', ')} staged outside runbook` : ''})`);
      const actions = order.flatMap((n) => restartActions(n.name, layouts[n.name] as PgLayout, Boolean(n.inRecovery)));
      return change(`restart one at a time: ${what.join(' → ')}${others ? `; ${others}` : ''}`, actions);
    },
    confirm: {
      destructive: true,
      message: (_ctx, plan) => `${plan.summary}. Each restart cuts that node's connections; the next waits until it is back in its role.`,
    },
  });
}

/** Restart one node, then wait until it answers in the role it had. */
export function restartActions(node: string, l: PgLayout, standby: boolean): Action[] {
  return [
    execOn(node, restartCommand(l), { timeoutSec: 300 }),
    waitUntil(`${node} is back up as a ${standby ? 'standby' : 'primary'}`, onHost(node, statusFact(connOfLayout(l))), (s) => (!s.up ? `does not answer yet: ${s.error}` : s.inRecovery === standby ? true : `came back ${s.inRecovery ? 'in recovery' : 'writable'}`), {
      intervalMs: 500,
      timeoutMs: 120_000,
    }),
  ];
}

// ---------------------------------------------------------------- WAL archive verification

/**
 * Seed 000's check that the archive fills: on the writable node, write a WAL message, switch WAL, and
 * wait (30 s) until the server itself says it archived that segment (pg_stat_archiver.last_archived_wal
 * at or past it) and the file is in the directory: a foreign file that only has the segment's name
 * does not pass. Otherwise the evidence of pg_stat_archiver. A probe (it writes): not verified in --check.
 */
export function archiveProbeCommand(conn: PgConn, dir: string): Command {
  const psql = new Command(psqlCommand(conn, ARCHIVE_PROBE_SQL).parts);
  return sh`out=$(${psql}) || { echo "error the archive check query failed (psql exit $?)"; exit 0; }
case $out in "archived "*) [ -f ${dir}/"\${out#archived }" ] || { echo "error pg_stat_archiver says \${out#archived } was archived, but it is not in ${dir}"; exit 0; };; esac
printf '%s\n' "$out"`.withStdin(ARCHIVE_PROBE_SQL);
}

/**
 * One psql session: a WAL message gives pg_switch_wal() something to switch away from (no table
 * grows); then poll pg_stat_archiver (a fresh stats snapshot each time) for up to 30 s. Prints
 * "standby", "archived SEG" or "missing SEG FAILED_COUNT LAST_FAILED_WAL LAST_FAILED_TIME".
 */
export const ARCHIVE_PROBE_SQL = sql.raw(`SELECT pg_is_in_recovery() AS rb_standby \\gset
\\if :rb_standby
SELECT 'standby';
\\else
SELECT pg_logical_emit_message(false, 'runbook', 'archive check') IS NOT NULL AS rb_written \\gset
SELECT set_config('runbook.archive_check_segment', pg_walfile_name(pg_switch_wal()), false) AS rb_seg \\gset
DO $$ BEGIN FOR i IN 1..150 LOOP PERFORM pg_stat_clear_snapshot(); EXIT WHEN (SELECT coalesce(last_archived_wal, '') >= current_setting('runbook.archive_check_segment') FROM pg_stat_archiver); PERFORM pg_sleep(0.2); END LOOP; END $$;
SELECT CASE WHEN coalesce(last_archived_wal, '') >= :'rb_seg' THEN 'archived ' || :'rb_seg' ELSE 'missing ' || :'rb_seg' || ' ' || failed_count || ' ' || coalesce(last_failed_wal, '-') || ' ' || coalesce(last_failed_time::text, '') END FROM pg_stat_archiver;
\\endif
`);

export function archiveProbe(conn: PgConn, dir: string) {
  return probe({ name: 'pg.archive_probe', become: true, command: archiveProbeCommand(conn, dir), parse: (r) => parseArchiveProbe(r.stdout || `error ${r.stderr.trim()}`) });
}

/** A broken archive is a verification failure (exit 4) naming pg_stat_archiver.last_failed_wal. */
export function archiveVerifyStep<P extends ReplicationSettingsParams>(id: string): StepDef<P, { archive: ArchiveProbe }> {
  return defineCheck<P, { archive: ArchiveProbe }>({
    id,
    title: 'WAL archiving works: a switched segment appears in the archive directory',
    name: 'WAL archiving',
    on: clusterHosts,
    become: true,
    when: (ctx) => (ctx.params.wal_archive_dir ? true : 'no wal_archive_dir given'),
    // The probe itself waits up to 30 s for the segment: evaluated once.
    timeoutMs: 0,
    gather: (ctx) => ({ archive: archiveProbe(connOfLayout(layoutOf(ctx)), archiveDir(ctx.params.wal_archive_dir!)) }),
    holds: (f, ctx) => {
      const v = archiveVerdict(f.archive, archiveDir(ctx.params.wal_archive_dir!));
      if (v !== true) return v;
      return { ok: f.archive.kind === 'archived' ? `WAL segment ${f.archive.segment} archived` : 'in recovery: the primary archives' };
    },
  });
}
