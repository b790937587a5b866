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
import { type Action, type Picked, branch, choose, chooseOn, done, exec, fail, waitUntil } from '../../../engine/actions.js';
import type { RunContext, StepDef } from '../../../engine/types.js';
import type { ExecResult } from '../../../transport/types.js';
import { controlDataFact, type DataDirState, isCleanShutdown } from '../layout-facts.js';
import { type PgStatus, peerViewFact, statusFact } from '../facts.js';
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

/** What the dry run (or the real run) of pg_rewind says, as the choose's branch: its output through parseRewindOutput. */
function rewindVerdict(r: ExecResult | undefined, what: string): Picked {
  const outcome = parseRewindOutput(r?.exitCode ?? null, r?.stdout ?? '');
  if (outcome.kind !== 'impossible') return { branch: outcome.kind, saw: outcome.detail };
  const conn = rewindConnectionFailure(r?.stdout ?? '');
  return conn ? { branch: 'source-unusable', saw: conn } : { branch: 'impossible', saw: `${what}: ${outcome.detail}` };
}

/**
 * The rejoin as actions. `versionNum`: the primary's server_version_num (the target's major is
 * the same, or pg_rewind refuses). The source is checked first, before anything is stopped: an
 * unreachable source or a wrong password is an error with its cause, and the node stays as it is
 * (fenced: standby.signal kept). standby.signal is the fence: it stays on every path until the
 * node is verified a standby. When pg_rewind cannot, the actions end with the node stopped, for
 * the clone step.
 */
export function rejoinActions(l: PgLayout, c: PgCluster, self: PgNode, primary: PgNode, versionNum: number): Action[] {
  const source = conninfoString(`${self.name}: pg_rewind source`, [['host', primary.address], ['port', primary.port], ['user', c.replicationUser], ['dbname', 'postgres'], ['application_name', `${self.applicationName}-rewind`]]);
  const reclone = (why: string) => done(`${why}; the clone step re-clones ${self.name} (with its own confirmation)`);
  const where = `${primary.name} (${primary.address}:${primary.port})`;
  // pg_rewind removes files the source lacks, standby.signal among them: put it back at once, whatever the outcome.
  const touch = asPostgres(sh`touch ${`${l.dataDir}/standby.signal`}`);
  return [
    chooseOn(`the rewind source ${where} answers ${self.name}`, peerViewFact({ port: primary.port, host: primary.address, user: c.replicationUser }), (v) => (v.answers ? 'answers' : { branch: 'unusable', saw: v.error }), [
      branch('answers', 'it answers'),
      branch('unusable', 'it does not answer', [
        fail(`the rewind source ${where} cannot be used: <its error>. Nothing was changed on ${self.name}; standby.signal stays`, (saw) => `the rewind source ${where} cannot be used: ${saw}. Nothing was changed on ${self.name}; standby.signal stays`),
      ]),
    ]),
    exec(stopCommand(l)),
    exec(sh`rm -f ${`${l.dataDir}/recovery.signal`}`, { note: 'standby.signal stays: it is the fence' }),
    chooseOn(`pg_control of ${l.dataDir}`, controlDataFact(l), (cd) => (!cd ? 'none' : isCleanShutdown(cd) ? 'clean' : { branch: 'crashed', saw: `cluster state "${cd.state}"` }), [
      branch('clean', 'it shut down cleanly'),
      branch('crashed', 'it did not shut down cleanly', [exec(withoutStandbySignal(l, singleUserRecovery(l)), { timeoutSec: 600, note: 'crash recovery in single-user mode first (standby.signal set aside meanwhile)' })]),
      branch('none', 'the data dir holds no cluster', [reclone(`${l.dataDir} holds no cluster: pg_rewind impossible`)]),
    ]),
    exec(rewindCommand(l, source, true, versionNum), { mayFail: true, saveAs: 'dry' }),
    choose('what pg_rewind --dry-run says', (o) => rewindVerdict(o.dry, 'pg_rewind --dry-run'), [
      branch('not-needed', '"no rewind required"'),
      branch('rewind', `"servers diverged at WAL location …": writes ${self.name} took after that point are discarded (the ledger step kept them)`, [
        exec(sh`( ${rewindCommand(l, source, false, versionNum)}; rc=$?; ${touch}; exit $rc )`, { mayFail: true, saveAs: 'rewind', timeoutSec: 3600, note: 'standby.signal put back whatever the outcome' }),
        choose('what pg_rewind says', (o) => rewindVerdict(o.rewind, 'pg_rewind failed'), [
          branch('rewind', 'it rewound'),
          branch('not-needed', '"no rewind required"'),
          branch('source-unusable', 'it lost the source (a connection error)', [
            fail(`pg_rewind lost the source ${primary.name}: <its connection error>; ${self.name} stays stopped with standby.signal. Run failback again`, (saw) => `pg_rewind lost the source ${primary.name}: ${saw}; ${self.name} stays stopped with standby.signal. Run failback again`),
          ]),
          branch('impossible', 'it failed otherwise', [reclone('pg_rewind failed')]),
        ]),
      ]),
      branch('source-unusable', 'it cannot use the source (a connection error: not a reason to re-clone)', [
        fail(`pg_rewind --dry-run could not use the source ${primary.name}: <its connection error>. Not a reason to re-clone: nothing was moved aside; ${self.name} stays stopped with standby.signal`, (saw) => `pg_rewind --dry-run could not use the source ${primary.name}: ${saw}. Not a reason to re-clone: nothing was moved aside; ${self.name} stays stopped with standby.signal`),
      ]),
      branch('impossible', 'it cannot rewind this node (an error)', [reclone('pg_rewind cannot rejoin this node')]),
    ]),
    exec(standbyConfig(l, conninfoFor(c, primary, self), self.slotName), { note: 'standby.signal and the upstream: the rewind copied the source\'s' }),
    exec(startCommand(l)),
    waitUntil(`${self.name} answers in recovery`, statusFact(connOfLayout(l)), (s) => (s.up ? (s.inRecovery ? true : 'up but NOT in recovery') : s.error), { intervalMs: 500, timeoutMs: 60_000 }),
  ];
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
      const self = nodeOf(c, ctx.host.name);
      return change(
        `rejoin ${ctx.host.name} (${me.up ? 'running, not following ' + t.primary.name : 'stopped'}) as a standby of ${t.primary.name}: pg_rewind --dry-run decides; writes after the divergence point are discarded`,
        rejoinActions(layoutOf(ctx), c, self, t.primary, serverVersionOf(statuses[t.primary.name])),
      );
    },
    confirm: {
      destructive: true,
      message: (ctx, plan) => `${plan.summary}. Data dir ${layoutOf(ctx).dataDir} on ${ctx.host.name} is rewound to the current primary's history.`,
    },
    // When pg_rewind cannot, the node stays stopped for the clone step: that is not a failure here.
    verify: { converge: false },
  });
}
