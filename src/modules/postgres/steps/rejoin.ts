/**
 * Rejoin a former primary as a standby of the current one with pg_rewind, its traps handled:
 * clean shutdown first (single-user crash recovery with the Debian config file), no
 * standby.signal during the rewind, `--config-file` on Debian, `pg_rewind --dry-run` decides,
 * then standby.signal + primary_conninfo/primary_slot_name written afresh (the rewind copied the
 * source's). When pg_rewind cannot work the node is left stopped, and the clone step that follows
 * re-clones it with its own destructive confirmation.
 */
import { change, noop, stepsFor } from '../../../engine/define.js';
import type { ApplyContext, RunContext, StepDef } from '../../../engine/types.js';
import { controlDataFact, type DataDirState, isCleanShutdown } from '../layout-facts.js';
import { type PgStatus, statusFact } from '../facts.js';
import { waitFor } from '../../../core/wait.js';
import { quoteConfValue } from '../ops.js';
import { type Command, sh } from '../../../shell/index.js';
import { conninfoString } from '../../../shell/config-text.js';
import { type PgCluster, type PgNode, type PgParams, clusterOf, conninfoFor, connOfLayout, layoutOf, nodeOf } from '../cluster.js';
import { asPostgres, cLocale, startCommand, stopCommand } from '../control.js';
import type { PgLayout } from '../layout.js';
import { clusterAndDataDirFacts } from './clone.js';
import { type ToolVersions, pgFeatures, toolProblem } from '../version.js';
import { followsPrimary, statusesOf, topology } from '../topology.js';

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
export async function rejoinWithRewind<P>(ctx: ApplyContext<P>, l: PgLayout, c: PgCluster, self: PgNode, primary: PgNode, versionNum: number): Promise<boolean> {
  await ctx.exec(stopCommand(l));
  // pg_rewind refuses to run single-user recovery with a standby.signal ("standby mode is not supported by single-user servers").
  await ctx.exec(sh`rm -f ${`${l.dataDir}/standby.signal`} ${`${l.dataDir}/recovery.signal`}`);
  const cd = await ctx.read(controlDataFact(l));
  if (!cd) {
    ctx.log(`${l.dataDir} holds no cluster: pg_rewind impossible; the clone step re-clones`);
    return false;
  }
  if (!isCleanShutdown(cd)) {
    ctx.log(`cluster state "${cd.state}": crash recovery in single-user mode first`);
    await ctx.exec(singleUserRecovery(l), { timeoutSec: 600 });
  }
  const source = conninfoString(`${self.name}: pg_rewind source`, [['host', primary.address], ['port', primary.port], ['user', c.replicationUser], ['dbname', 'postgres'], ['application_name', `${self.applicationName}-rewind`]]);
  const dry = await ctx.exec(rewindCommand(l, source, true, versionNum), { check: false });
  const outcome = parseRewindOutput(dry.exitCode, dry.stdout);
  ctx.log(`pg_rewind --dry-run: ${outcome.kind}: ${outcome.detail}`);
  if (outcome.kind === 'impossible') {
    ctx.log('pg_rewind cannot rejoin this node; the clone step re-clones it (with its own confirmation)');
    return false;
  }
  if (outcome.kind === 'rewind') {
    ctx.log(`servers diverged at ${outcome.divergedAt} on timeline ${outcome.timeline}: writes ${self.name} took after that point are discarded`);
    const real = await ctx.exec(rewindCommand(l, source, false, versionNum), { check: false, timeoutSec: 3600 });
    const done = parseRewindOutput(real.exitCode, real.stdout);
    if (done.kind === 'impossible') {
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

export type RejoinFacts = { dataDir: DataDirState; tools: ToolVersions } & Record<string, unknown>;

export function rewindStep<P extends PgParams>(id: string, on: (ctx: RunContext<P>) => string[]): StepDef<P, RejoinFacts> {
  const { step } = stepsFor<P>();
  return step({
    id,
    title: 'Rejoin a former primary as a standby of the current one (pg_rewind; re-clone if it cannot)',
    on,
    become: true,
    timeoutSec: 3600,
    gather: (ctx) => clusterAndDataDirFacts(ctx) as never,
    plan: (f, ctx) => {
      const c = clusterOf(ctx);
      const statuses = statusesOf(f);
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
      const t = topology(c, statusesOf(f));
      if (!t.primary) throw new Error('no single writable node any more');
      await rejoinWithRewind(ctx, layoutOf(ctx), c, nodeOf(c, ctx.host.name), t.primary, serverVersionOf(statusesOf(f)[t.primary.name]));
    },
    // When pg_rewind cannot, the node stays stopped for the clone step: that is not a failure here.
    verify: { converge: false },
  });
}
