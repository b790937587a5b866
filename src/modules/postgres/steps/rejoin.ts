/**
 * Rejoin a former primary as a standby of the current one with pg_rewind, its traps handled:
 * the source checked first (unreachable or refused: an error, nothing touched), clean shutdown
 * (single-user crash recovery with the Debian config file, standby.signal set aside only for it),
 * `--config-file` on Debian, `pg_rewind --dry-run` decides (a connection failure is an error, not
 * "impossible"), standby.signal restored right after the rewind,
 * then standby.signal + primary_conninfo/primary_slot_name written afresh (the rewind copied the
 * source's). When pg_rewind cannot work the node is left stopped, and the clone step that follows
 * re-clones it with its own destructive confirmation.
 */
import { change, noop, stepsFor } from '../../../engine/define.js';
import type { ApplyContext, RunContext, StepDef } from '../../../engine/types.js';
import { controlDataFact, type DataDirState, isCleanShutdown } from '../layout-facts.js';
import { type PgStatus, peerViewFact, statusFact } from '../facts.js';
import { waitFor } from '../../../core/wait.js';
import { quoteConfValue } from '../ops.js';
import { type Command, sh } from '../../../shell/index.js';
import { conninfoString } from '../../../shell/config-text.js';
import { type PgCluster, type PgNode, type PgParams, clusterOf, conninfoFor, connOfLayout, layoutOf, nodeOf } from '../cluster.js';
import { asPostgres, cLocale, startCommand, stopCommand } from '../control.js';
import type { PgLayout } from '../layout.js';
import { clusterAndDataDirFacts } from './clone.js';
import { type ToolVersions, pgFeatures, toolProblem } from '../version.js';
import { type Statuses, followsPrimary, topology } from '../topology.js';

export type RewindOutcome =
  | { kind: 'not-needed'; detail: string }
  | { kind: 'rewind'; divergedAt: string | null; timeline: string | null; detail: string }
  | { kind: 'impossible'; detail: string };

/** Read pg_rewind's (C locale) output: no rewind / diverged at / an error. */
export function parseRewindOutput(exitCode: number | null, text: string): RewindOutcome {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const detail = lines.slice(-3).join(' | ');
  if (exitCode !== 0) return { kind: 'impossible', detail: lines.filter((l) => /error|fatal|could not|must/i.test(l)).join(' | ') || detail };
  if (/no rewind required/.test(text)) return { kind: 'not-needed', detail };
  const m = /servers diverged at WAL location (\S+) on timeline (\d+)/.exec(text);
  return { kind: 'rewind', divergedAt: m?.[1] ?? null, timeline: m?.[2] ?? null, detail };
}

export function rewindCommand(l: PgLayout, source: string, dryRun: boolean, versionNum: number): Command {
  const cfg = l.configDir !== l.dataDir && pgFeatures(versionNum).rewindConfigFile ? sh` --config-file=${l.confFile}` : sh``;
  const dry = dryRun ? sh` --dry-run` : sh``;
  return asPostgres(cLocale(sh`${`${l.binDir}/pg_rewind`} -D ${l.dataDir} --source-server=${source} --no-ensure-shutdown${cfg}${dry} 2>&1`));
}

/** Crash recovery in single-user mode: what pg_rewind would do, with the Debian config file. */
function singleUserRecovery(l: PgLayout): Command {
  const cfg = l.configDir !== l.dataDir ? sh` -c ${`config_file=${l.confFile}`}` : sh``;
  return asPostgres(sh`${`${l.binDir}/postgres`} --single -F -D ${l.dataDir}${cfg} template1 </dev/null`);
}

/** Standby config written while stopped: standby.signal and the upstream in postgresql.auto.conf. */
function standbyConfig(l: PgLayout, conninfo: string, slot: string): Command {
  const lines = `primary_conninfo = ${quoteConfValue(conninfo)}\nprimary_slot_name = ${quoteConfValue(slot)}\n`;
  return asPostgres(sh`sh -c ${`touch "$1/standby.signal" && printf '%s' "$2" >> "$1/postgresql.auto.conf"`} rejoin ${l.dataDir} ${lines}`);
}

/** `versionNum`: the primary's server_version_num (the target's major is the same, or pg_rewind refuses). */
/**
 * A pg_rewind failure that says nothing about the data: the source could not be reached or
 * refused us. An error to report, never "rewind impossible" (which would hand over to a re-clone).
 */
export function rewindConnectionFailure(text: string): string | undefined {
  const line = text.split('\n').map((x) => x.trim()).find((x) => /could not connect|connection to server|password authentication failed|no pg_hba\.conf entry|timeout expired|Connection refused|No route to host|Network is unreachable|Invalid argument|could not translate host name/i.test(x));
  return line;
}

/** Single-user crash recovery needs standby.signal out of the way: moved aside and back in one command. */
function withoutStandbySignal(l: PgLayout, cmd: Command): Command {
  const sig = `${l.dataDir}/standby.signal`;
  return sh`had=0; if [ -f ${sig} ]; then mv ${sig} ${`${sig}.rejoin`} && had=1; fi; ${cmd}; rc=$?; if [ $had = 1 ]; then mv ${`${sig}.rejoin`} ${sig}; fi; exit $rc`;
}

/** `versionNum`: the primary's server_version_num (the target's major is the same, or pg_rewind refuses). */
export async function rejoinWithRewind<P>(ctx: ApplyContext<P>, l: PgLayout, c: PgCluster, self: PgNode, primary: PgNode, versionNum: number): Promise<boolean> {
  // The source first, before anything is stopped: an unreachable source or a wrong password is an
  // error with its cause, and the node stays as it is (fenced: standby.signal kept).
  const seen = await ctx.read(peerViewFact({ port: primary.port, host: primary.address, user: c.replicationUser }));
  if (!seen.answers) throw new Error(`the rewind source ${primary.name} (${primary.address}:${primary.port}) cannot be used: ${seen.error}. Nothing was changed on ${self.name}; standby.signal stays`);
  await ctx.exec(stopCommand(l));
  // standby.signal is the fence: it stays on every path until the node is verified a standby.
  await ctx.exec(sh`rm -f ${`${l.dataDir}/recovery.signal`}`);
  const cd = await ctx.read(controlDataFact(l));
  if (!cd) {
    ctx.log(`${l.dataDir} holds no cluster: pg_rewind impossible; the clone step re-clones`);
    return false;
  }
  if (!isCleanShutdown(cd)) {
    ctx.log(`cluster state "${cd.state}": crash recovery in single-user mode first (standby.signal set aside meanwhile)`);
    await ctx.exec(withoutStandbySignal(l, singleUserRecovery(l)), { timeoutSec: 600 });
  }
  const source = conninfoString(`${self.name}: pg_rewind source`, [['host', primary.address], ['port', primary.port], ['user', c.replicationUser], ['dbname', 'postgres'], ['application_name', `${self.applicationName}-rewind`]]);
  const dry = await ctx.exec(rewindCommand(l, source, true, versionNum), { check: false });
  const outcome = parseRewindOutput(dry.exitCode, dry.stdout);
  ctx.log(`pg_rewind --dry-run: ${outcome.kind}: ${outcome.detail}`);
  if (outcome.kind === 'impossible') {
    const conn = rewindConnectionFailure(dry.stdout);
    if (conn) throw new Error(`pg_rewind --dry-run could not use the source ${primary.name}: ${conn}. Not a reason to re-clone: nothing was moved aside; ${self.name} stays stopped with standby.signal`);
    ctx.log('pg_rewind cannot rejoin this node; the clone step re-clones it (with its own confirmation)');
    return false;
  }
  if (outcome.kind === 'rewind') {
    ctx.log(`servers diverged at ${outcome.divergedAt} on timeline ${outcome.timeline}: writes ${self.name} took after that point are discarded (the ledger step kept them)`);
    // pg_rewind removes files the source lacks, standby.signal among them: put it back at once, whatever the outcome.
    const touch = asPostgres(sh`touch ${`${l.dataDir}/standby.signal`}`);
    const real = await ctx.exec(sh`( ${rewindCommand(l, source, false, versionNum)}; rc=$?; ${touch}; exit $rc )`, { check: false, timeoutSec: 3600 });
    const done = parseRewindOutput(real.exitCode, real.stdout);
    if (done.kind === 'impossible') {
      const conn = rewindConnectionFailure(real.stdout);
      if (conn) throw new Error(`pg_rewind lost the source ${primary.name}: ${conn}; ${self.name} stays stopped with standby.signal. Run failback again`);
      ctx.log(`pg_rewind failed: ${done.detail}; the clone step re-clones`);
      return false;
    }
    ctx.log(`pg_rewind: ${done.detail}`);
  }
  await ctx.exec(standbyConfig(l, conninfoFor(c, primary, self), self.slotName));
  await ctx.exec(startCommand(l));
  await waitFor(ctx, {
    name: `${self.name} answers in recovery`,
    timeoutMs: 60_000,
    intervalMs: 500,
    check: async (a) => {
      const s = await a.read(statusFact(connOfLayout(l)));
      return s.up ? (s.inRecovery ? true : 'up but NOT in recovery') : s.error;
    },
  });
  return true;
}

function serverVersionOf(s: PgStatus | undefined): number {
  return s?.up ? s.serverVersionNum : NaN;
}

export type RejoinFacts = { status: Statuses; dataDir: DataDirState; tools: ToolVersions };

export function rewindStep<P extends PgParams>(id: string, on: (ctx: RunContext<P>) => string[]): StepDef<P, RejoinFacts> {
  const { step } = stepsFor<P>();
  return step({
    id,
    title: 'Rejoin a former primary as a standby of the current one (pg_rewind; re-clone if it cannot)',
    on,
    become: true,
    timeoutSec: 3600,
    gather: clusterAndDataDirFacts,
    plan: (f, ctx) => {
      const c = clusterOf(ctx);
      const statuses = f.status;
      const t = topology(c, statuses);
      const me = statuses[ctx.host.name]!;
      if (me.up && !me.inRecovery) return noop(t.writable.length > 1 ? 'writable (split brain: the guard step stops this run)' : 'the primary');
      if (!t.primary) return noop(`no single writable node to rejoin (writable: ${t.writable.map((n) => n.name).join(', ') || 'none'})`);
      if (followsPrimary(me, t.primary)) return noop(`a standby of ${t.primary.name}`);
      if (!f.dataDir.pgVersion) return noop('no cluster in the data dir: the clone step clones it');
      const tool = toolProblem('pg_rewind', f.tools.pg_rewind, serverVersionOf(statuses[t.primary.name]), layoutOf(ctx).binDir);
      if (tool) return noop(`${tool}: not rewinding; the clone step re-clones ${ctx.host.name} from ${t.primary.name} instead (with its own confirmation)`);
      return change(
        `rejoin ${ctx.host.name} (${me.up ? 'running, not following ' + t.primary.name : 'stopped'}) as a standby of ${t.primary.name}: pg_rewind --dry-run decides; writes after the divergence point are discarded`,
        [],
      );
    },
    confirm: {
      destructive: true,
      message: (ctx, plan) => `${plan.summary}. Data dir ${layoutOf(ctx).dataDir} on ${ctx.host.name} is rewound to the current primary's history.`,
    },
    apply: async (ctx, _plan, f) => {
      const c = clusterOf(ctx);
      const t = topology(c, f.status);
      if (!t.primary) throw new Error('no single writable node any more');
      await rejoinWithRewind(ctx, layoutOf(ctx), c, nodeOf(c, ctx.host.name), t.primary, serverVersionOf(f.status[t.primary.name]));
    },
    // When pg_rewind cannot, the node stays stopped for the clone step: that is not a failure here.
    verify: { converge: false },
  });
}
