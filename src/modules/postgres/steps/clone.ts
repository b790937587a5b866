/**
 * Clone (or re-clone) a standby from the current primary with pg_basebackup — the one
 * implementation used by setup-warm-standby, base-backup and failback's fallback. The guard is
 * part of the pure plan, so no flag can get past it: a writable node is never wiped (setup may
 * replace a *pristine* stand-alone server, never one holding data or clients).
 */
import { type Action, exec, waitUntil } from '../../../engine/actions.js';
import { blocked, change, fact, noop, param, stepsFor } from '../../../engine/define.js';
import type { FactMap, RunContext, StepContext, StepDef } from '../../../engine/types.js';
import { NOT_VERIFIED } from '../../../engine/checks.js';
import type { ExecResult } from '../../../transport/types.js';
import { type ControlData, type DataDirState, controlDataFact, dataDirFact, toolVersionsFact } from '../layout-facts.js';
import { clearJobCommand, detachedJob, jobFact, jobId, type JobState } from '../../../core/detached.js';
import { lsnGte, type PgStatus, statusFact } from '../facts.js';
import { raw, sh, sql } from '../../../shell/index.js';
import { type PgCluster, type PgNode, type PgParams, clusterOf, conninfoFor, connOfLayout, layoutOf, nodeOf } from '../cluster.js';
import { asPostgres, startCommand, stopCommand, unfenceCommand } from '../control.js';
import type { PgLayout } from '../layout.js';
import { type ToolVersions, toolProblem } from '../version.js';
import { type Statuses, clusterStatus, followsPrimary, isPristine, names, splitBrain, topology } from '../topology.js';

export interface CloneOptions {
  /** base-backup's explicit target: aiming at the writable node is an error, not a no-op. */
  explicitTarget: boolean;
  /** setup-warm-standby: a pristine stand-alone writable server may be replaced. */
  allowPristine: boolean;
  /** Re-clone even a healthy standby (base-backup -e reclone=true). */
  reclone: boolean;
}

export interface CloneInput {
  cluster: PgCluster;
  self: PgNode;
  statuses: Statuses;
  dataDir: DataDirState;
  dataDirPath: string;
}

/** The pure decision: clone `self` from the current primary, or why not. */
export function planClone(i: CloneInput, o: CloneOptions): { kind: 'noop' | 'blocked'; reason: string } | { kind: 'clone'; source: PgNode; summary: string } {
  const t = topology(i.cluster, i.statuses);
  const me = i.statuses[i.self.name];
  const others = t.writable.filter((n) => n.name !== i.self.name);
  const meWritable = Boolean(me?.up && !me.inRecovery);

  if (meWritable) {
    // The intended primary is the source of every clone: never a target while writable.
    if (i.self.intendedPrimary && o.allowPristine) return { kind: 'noop', reason: `${i.self.name} is the intended primary and writable (the clone source)` };
    if (others.length === 0)
      return o.explicitTarget
        ? { kind: 'blocked', reason: `${i.self.name} is writable (pg_is_in_recovery() = f) and the only writable node: refusing to wipe ${i.dataDirPath}` }
        : { kind: 'noop', reason: `${i.self.name} is the primary (the clone source)` };
    if (!o.allowPristine || !isPristine(me!)) {
      const data = me?.up && !isPristine(me) ? ` and holds data or clients (databases: ${me.userDatabases.join(', ') || 'none'}, user tables: ${me.userTables}, clients: ${me.clients})` : '';
      return { kind: 'blocked', reason: `${i.self.name} is writable (pg_is_in_recovery() = f)${data}: refusing to wipe ${i.dataDirPath}; a writable node is never re-cloned` };
    }
    // A fresh N-node cluster: every writable node but the intended primary is pristine too.
    const source = others.find((n) => n.intendedPrimary);
    const busy = others.filter((n) => !n.intendedPrimary && !isPristine(i.statuses[n.name]!));
    if (!source) return { kind: 'blocked', reason: `${names([i.self, ...others])} are all writable and none is the intended primary` };
    if (busy.length) return { kind: 'blocked', reason: splitBrain(t)! };
    return { kind: 'clone', source, summary: `replace pristine stand-alone ${i.self.name} (${i.dataDirPath}) by a clone of ${source.name}` };
  }
  const split = splitBrain(t);
  if (split) return { kind: 'blocked', reason: split };
  const source = t.primary;
  if (!source) return { kind: 'blocked', reason: `no writable node to clone from (${t.down.length ? `down: ${names(t.down)}; ` : ''}in recovery: ${names(t.inRecovery) || 'none'})` };
  if (followsPrimary(me, source) && !o.reclone) return { kind: 'noop', reason: `${i.self.name} is a standby of ${source.name}` };
  const what = !me?.up
    ? i.dataDir.pgVersion
      ? `stopped, not known to follow ${source.name}`
      : 'no cluster in the data dir'
    : followsPrimary(me, source)
      ? 'healthy standby, re-clone asked for'
      : `standby of another upstream (${me.primaryConninfo || 'none'})`;
  return { kind: 'clone', source, summary: `re-clone ${i.self.name} (${i.dataDirPath}; ${what}) from ${source.name} with pg_basebackup` };
}

/** Old copies beyond `keep` (oldest first) are removed; the newest `keep` stay. */
export function prunable(oldCopies: string[], keep: number): string[] {
  return oldCopies.slice(0, Math.max(0, oldCopies.length - keep));
}

export interface CloneParams extends PgParams {
  keep_old_copies: number;
  clone_max_rate?: string | undefined;
}

/** The params of every runbook that clones (setup-warm-standby, base-backup, failback). */
export const cloneParams = {
  keep_old_copies: param.number({ description: 'moved-aside data directories kept per node', default: 2 }),
  clone_max_rate: param.string({ description: "pg_basebackup --max-rate: the clone's read rate on the source, in kB/s or with k/M (32k-1024M), e.g. 50M on a busy primary; default unlimited" }),
};

/** pg_basebackup's own bounds for --max-rate: 32 kB/s to 1024 MB/s, a number with k or M. */
export function cloneParamProblems(p: Pick<CloneParams, 'clone_max_rate'>): string[] {
  const r = p.clone_max_rate;
  if (r === undefined || r === '') return [];
  const m = /^(\d+)([kM]?)$/.exec(r);
  const kb = m ? Number(m[1]) * (m[2] === 'M' ? 1024 : 1) : NaN;
  return Number.isFinite(kb) && kb >= 32 && kb <= 1024 * 1024 ? [] : [`clone_max_rate ${JSON.stringify(r)}: a rate of 32k to 1024M (a number of kB/s, or with k or M, as pg_basebackup --max-rate takes it)`];
}

/** The suffix of a moved-aside data dir, from the run's clock: exact in the plan. */
export function asideStamp(now: Date): string {
  return now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
}

/** The detached pg_basebackup of a data dir: one id per data dir, so a re-run finds it. */
export const cloneJobId = (l: PgLayout) => jobId('pg-clone', l.dataDir);
/** Next to the data dir while a clone is unverified; holds the path the old data dir went to. */
export const cloneMarkerPath = (l: PgLayout) => `${l.dataDir}.runbook-clone`;

/** What the clone guard decides from, read before anything is stopped or moved (issue 12 point 4). */
export interface CloneEvidence {
  /** IDENTIFY_SYSTEM from the target over a replication connection (proves reachable + password). */
  source: { systemId: string; timeline: number; lsn: string } | { error: string };
  /** The target's pg_control; null: no cluster in its data dir. */
  target: ControlData | null;
  /** Bytes the source's databases take, and bytes free where the data dir lives. */
  sourceBytes: number | null;
  freeBytes: number | null;
}

/**
 * Whether the replacement clone is proven possible and the target holds nothing the source lacks.
 * A node with writes the source never saw is refused (exit 8): its WAL would be lost; that case
 * belongs to the divergence ledger (issue 12 point 3), which may call this with its own decision.
 */
export function cloneGuard(e: CloneEvidence, who: { self: string; source: string }): true | string {
  if ('error' in e.source) return `cannot clone ${who.self} from ${who.source}: a replication connection from ${who.self} fails (${e.source.error}); nothing was moved`;
  const t = e.target;
  if (t && t.systemId && t.systemId === e.source.systemId) {
    if (Number.isFinite(t.timeline) && t.timeline > e.source.timeline)
      return `${who.self} is on timeline ${t.timeline}, ${who.source} on ${e.source.timeline}: ${who.self} has a history ${who.source} never saw (writes that would be lost); refusing to replace its data dir — record the divergence first (failback's ledger) or move it aside by hand`;
    if (t.timeline === e.source.timeline && t.checkpointLsn && !lsnGte(e.source.lsn, t.checkpointLsn))
      return `${who.self}'s last checkpoint ${t.checkpointLsn} is past ${who.source}'s WAL position ${e.source.lsn} on the same timeline: ${who.self} has writes ${who.source} never saw; refusing to replace its data dir`;
  }
  if (e.sourceBytes !== null && e.freeBytes !== null && e.freeBytes < e.sourceBytes * 1.1 + 64 * 2 ** 20)
    return `not enough space for the clone on ${who.self}: ${mib(e.freeBytes)} free, ${who.source}'s databases take ${mib(e.sourceBytes)} (the old data dir is kept on the same filesystem); nothing was moved`;
  return true;
}

/**
 * cloneGuard within a run: `pending` are the steps a --check run would change before this one. The
 * source connection often waits on them (pg_hba, the role, .pgpass): then a failed connection is
 * "not verified in check mode" (a note for the plan's summary), not a refusal. '' when it holds.
 */
export function cloneGuardInRun(e: CloneEvidence, who: { self: string; source: string }, pending: string[]): string | { blocked: string } {
  const ok = cloneGuard(e, who);
  if (ok === true) return '';
  if ('error' in e.source && pending.length) return `; the clone source is ${NOT_VERIFIED} (earlier steps would change: ${pending.join(', ')}; now: ${e.source.error})`;
  return { blocked: ok };
}

const mib = (n: number) => `${Math.round(n / 2 ** 20)} MiB`;

const countOf = (r: ExecResult): number | null => (r.exitCode === 0 && /^\d+$/.test(r.stdout.trim()) ? Number(r.stdout.trim()) : null);

/**
 * The guard's evidence as facts, read (after gather, once a clone is decided) on the target:
 * IDENTIFY_SYSTEM from the source over a replication connection, the source's size, the free
 * space where the data dir lives, the target's pg_control. All read-only.
 */
export function cloneEvidenceFacts(l: PgLayout, cluster: PgCluster, self: PgNode, source: PgNode, withTarget: boolean) {
  const base = conninfoFor(cluster, source, self);
  const psql = `${l.binDir}/psql`;
  const parent = l.dataDir.replace(/\/[^/]*\/?$/, '') || '/';
  return {
    ident: fact({
      name: 'pg.clone_source_identity',
      command: asPostgres(sh`${psql} -XAt -F '|' -d ${`${base} dbname=replication replication=true connect_timeout=10`}`).withStdin(sql`IDENTIFY_SYSTEM`),
      parse: (r): CloneEvidence['source'] => {
        const fields = r.stdout.trim().split('|');
        return r.exitCode === 0 && fields.length >= 3
          ? { systemId: fields[0]!, timeline: Number(fields[1]), lsn: fields[2]! }
          : { error: (r.stderr.trim().split('\n').pop() ?? '') || `psql exit ${r.exitCode}` };
      },
    }),
    sourceBytes: fact({
      name: 'pg.clone_source_bytes',
      command: asPostgres(sh`${psql} -XAt -d ${`${base} dbname=postgres connect_timeout=10`}`).withStdin(sql`SELECT sum(pg_database_size(oid))::bigint FROM pg_database`),
      parse: countOf,
    }),
    freeBytes: fact({ name: 'fs.free_bytes', command: sh`df -P -B1 ${parent} | awk 'NR==2 {print $4}'`, parse: countOf }),
    ...(withTarget ? { control: controlDataFact(l) } : {}),
  };
}

/**
 * The actions of a clone, converging from wherever an earlier run stopped (`from`):
 * - 'fresh': stop, move the data dir aside (kept), mark, prune old copies, then clone;
 * - 'redo': a clone marker without a successful job (interrupted): the data dir holds a partial
 *   clone, so it is emptied and the clone redone — the old data dir stays where the marker says;
 * - 'running': a pg_basebackup started by an earlier run still runs: the job action reattaches;
 * - 'done': its pg_basebackup finished: only verify and start.
 * The clone itself is a detached job: it outlives a lost connection or a killed runbook.
 * standby.signal is there on every path before the first start.
 */
export function cloneActions(l: PgLayout, cluster: PgCluster, self: PgNode, source: PgNode, dataDir: DataDirState, from: 'fresh' | 'redo' | 'running' | 'done', o: { now: Date; keep: number; maxRate?: string | undefined; runningCommand?: string }): Action[] {
  const id = cloneJobId(l);
  const marker = cloneMarkerPath(l);
  const out: Action[] = [];
  if (from === 'fresh') {
    const aside = `${l.dataDir}.old.${asideStamp(o.now)}`;
    out.push(exec(stopCommand(l)));
    if (dataDir.exists) out.push(exec(sh`mv ${l.dataDir} ${aside}`, { note: 'the old data dir is kept' }));
    out.push(exec(sh`printf '%s\\n' ${dataDir.exists ? aside : '-'} > ${marker}`, { note: 'a clone is under way (where the old data dir went)' }));
    // The copy just made is never pruned, whatever keep_old_copies says.
    for (const old of prunable([...dataDir.oldCopies, ...(dataDir.exists ? [aside] : [])], o.keep)) out.push(exec(sh`rm -rf ${old}`, { note: `keeping the newest ${o.keep} old copies` }));
    out.push(exec(sh`install -d -o postgres -g postgres -m 0700 ${l.dataDir}`));
  } else if (from === 'redo') {
    out.push(exec(stopCommand(l)), exec(sh`rm -rf ${l.dataDir} && install -d -o postgres -g postgres -m 0700 ${l.dataDir}`, { note: `a partial clone; the old data dir stays at ${dataDir.cloneMarker}` }));
  }
  if (from === 'running') {
    // Shown as the earlier run recorded it (its own params); waited for, never started again.
    out.push(detachedJob(id, raw(o.runningCommand ?? 'pg_basebackup (recorded by an earlier run)'), { attachOnly: true, timeoutMs: 3_700_000 }));
  } else if (from !== 'done') {
    const conninfo = conninfoFor(cluster, source, self);
    const rate = o.maxRate ? sh` -r ${o.maxRate}` : sh``;
    out.push(detachedJob(id, asPostgres(sh`${`${l.binDir}/pg_basebackup`} -d ${conninfo} -D ${l.dataDir} -X stream -c fast -R -S ${self.slotName} -P${rate}`), { timeoutSec: 3600, timeoutMs: 3_700_000 }));
  }
  out.push(exec(asPostgres(sh`${`${l.binDir}/pg_verifybackup`} -q -n ${l.dataDir}`), { note: 'backup manifest and files' }));
  // pg_basebackup -R wrote standby.signal; make sure of it before the first start.
  out.push(exec(asPostgres(sh`touch ${`${l.dataDir}/standby.signal`}`)));
  const unfence = unfenceCommand(l);
  if (unfence) out.push(exec(unfence));
  out.push(
    exec(startCommand(l)),
    waitUntil(`${self.name} answers in recovery`, statusFact(connOfLayout(l)), (s) => (s.up ? (s.inRecovery ? true : 'up but NOT in recovery') : s.error), { intervalMs: 500, timeoutMs: 60_000 }),
    exec(sh`rm -f ${marker}`),
    exec(clearJobCommand(id), { mayFail: true }),
  );
  return out;
}

/** What the clone decides from; the evidence keys are read only once a clone is decided (followUp). */
export interface CloneFacts {
  status: Statuses;
  dataDir: DataDirState;
  tools: ToolVersions;
  job: JobState;
  ident?: CloneEvidence['source'];
  sourceBytes?: number | null;
  freeBytes?: number | null;
  control?: ControlData | null;
}

/**
 * Why this node's pg_basebackup / pg_verifybackup cannot clone from `source` (version.ts), or
 * undefined. Decided before anything is stopped or moved aside.
 */
export function cloneToolProblem(tools: ToolVersions, sourceStatus: PgStatus | undefined, binDir: string): string | undefined {
  if (!sourceStatus?.up) return undefined;
  for (const tool of ['pg_basebackup', 'pg_verifybackup'] as const) {
    const p = toolProblem(tool, tools[tool], sourceStatus.serverVersionNum, binDir);
    if (p) return p;
  }
  return undefined;
}

/** Every node's status (by node name), this node's data directory and its tools' versions: what the rewind step decides from. */
export function clusterAndDataDirFacts(ctx: StepContext<PgParams>): FactMap<Pick<CloneFacts, 'status' | 'dataDir' | 'tools'>> {
  return { status: clusterStatus(clusterOf(ctx)), dataDir: dataDirFact(layoutOf(ctx)), tools: toolVersionsFact(layoutOf(ctx)) };
}

type CloneDecision = { kind: 'noop' | 'blocked'; reason: string } | { kind: 'clone'; source: PgNode; summary: string; from: 'fresh' | 'redo' | 'running' | 'done' };

/** planClone, the postmaster-without-answer guard, the tools, and where an earlier clone stopped. */
function decide(f: CloneFacts, ctx: StepContext<PgParams>, o: CloneOptions): CloneDecision {
  const c = clusterOf(ctx);
  const l = layoutOf(ctx);
  const d = planClone({ cluster: c, self: nodeOf(c, ctx.host.name), statuses: f.status, dataDir: f.dataDir, dataDirPath: l.dataDir }, o);
  // "Down" is pg_ctl's word, not psql's: a postmaster that runs but does not answer may be a primary.
  const me = f.status[ctx.host.name];
  if (f.dataDir.running && !me?.up) return { kind: 'blocked', reason: `${ctx.host.name}: a postmaster runs on ${l.dataDir} (pg_ctl status) but does not answer psql (${me?.error ?? 'no status'}): cannot prove it is not a writable primary; refusing to replace it` };
  if (d.kind !== 'clone') return d;
  const tool = cloneToolProblem(f.tools, f.status[d.source.name], l.binDir);
  if (tool) return { kind: 'blocked', reason: `cannot clone ${ctx.host.name} from ${d.source.name}: ${tool}; install that major's client tools on ${ctx.host.name} (or point pg_bin_dir at them)` };
  return { ...d, from: cloneResumePoint(f.job, f.dataDir.cloneMarker, me?.up === true) };
}

/**
 * Where a clone decided now starts, from what an earlier run left: its job still running
 * (reattach), finished (verify and start), or a marker without a finished job (redo). A marker
 * while the node answers is stale: that run got as far as the start, so the clone starts afresh.
 */
export function cloneResumePoint(job: JobState, cloneMarker: string | null, nodeUp: boolean): 'fresh' | 'redo' | 'running' | 'done' {
  if (job.state === 'running') return 'running';
  if (cloneMarker === null || nodeUp) return 'fresh';
  return job.state === 'exited' && job.exitCode === 0 ? 'done' : 'redo';
}

/** The clone step. `on`: every cluster node (setup, failback) or the chosen targets (base-backup). */
export function cloneStep<P extends CloneParams>(id: string, on: (ctx: RunContext<P>) => string[], o: (p: P) => CloneOptions): StepDef<P, CloneFacts> {
  const { step } = stepsFor<P>();
  return step<CloneFacts>({
    id,
    title: 'Clone the standby from the current primary (pg_basebackup)',
    on,
    become: true,
    timeoutSec: 3600,
    gather: (ctx) => {
      const l = layoutOf(ctx);
      // The job state may be read a moment early (prefetch): one seen running that ended meanwhile
      // is reattached to and waited for (cloneActions 'running'), never started again.
      return { status: clusterStatus(clusterOf(ctx)), dataDir: dataDirFact(l), tools: toolVersionsFact(l), job: { ...jobFact(cloneJobId(l)), readAhead: true } };
    },
    // Prove the replacement possible before anything is stopped or moved: the evidence is read
    // once a clone is decided, from the source it decided on (nothing to prove when reattaching).
    followUp: (f, ctx) => {
      const d = decide(f, ctx, o(ctx.params));
      if (d.kind !== 'clone' || d.from === 'running' || d.from === 'done') return undefined;
      const c = clusterOf(ctx);
      return cloneEvidenceFacts(layoutOf(ctx), c, nodeOf(c, ctx.host.name), d.source, d.from === 'fresh');
    },
    plan: (f, ctx) => {
      const d = decide(f, ctx, o(ctx.params));
      if (d.kind !== 'clone') return d.kind === 'noop' ? noop(d.reason) : blocked(d.reason);
      const c = clusterOf(ctx);
      const l = layoutOf(ctx);
      const self = nodeOf(c, ctx.host.name);
      let unverified = '';
      if (f.ident && f.sourceBytes !== undefined && f.freeBytes !== undefined) {
        const e = { source: f.ident, target: f.control ?? null, sourceBytes: f.sourceBytes, freeBytes: f.freeBytes };
        const g = cloneGuardInRun(e, { self: self.name, source: d.source.name }, ctx.checkMode ? (ctx.pendingChanges?.() ?? []) : []);
        if (typeof g === 'object') return blocked(g.blocked);
        unverified = g;
      }
      const keep = Math.max(1, ctx.params.keep_old_copies);
      const actions = cloneActions(l, c, self, d.source, f.dataDir, d.from, { now: ctx.now(), keep, maxRate: ctx.params.clone_max_rate, ...(f.job.state === 'running' ? { runningCommand: f.job.command } : {}) });
      const summary =
        d.from === 'fresh'
          ? `${d.summary}; old data dir kept as ${l.dataDir}.old.${asideStamp(ctx.now())} (${keep} copies kept)`
          : d.from === 'redo'
            ? `redo the interrupted clone of ${ctx.host.name} from ${d.source.name} (the old data dir stays at ${f.dataDir.cloneMarker})`
            : d.from === 'running'
              ? `reattach to the pg_basebackup of ${l.dataDir} an earlier run started (PID ${f.job.state === 'running' ? f.job.pid : '?'}), then verify and start it`
              : `the pg_basebackup of an earlier run finished: verify and start ${ctx.host.name}`;
      return change(summary + unverified, actions);
    },
    confirm: {
      destructive: true,
      message: (ctx, plan) => `${ctx.host.name}: ${plan.summary}. Everything in ${layoutOf(ctx).dataDir} is replaced.`,
    },
    // The re-gathered plan is a no-op only once the standby follows the primary, which the
    // streaming assertions of the verify steps check with polling; reclone would re-plan forever.
    verify: { converge: false },
  });
}

/** Replay caught up with receive (both known): used by promote and switchover gates. */
export function replayCaughtUp(s: PgStatus): boolean {
  return s.up && s.inRecovery && lsnGte(s.replayLsn, s.receiveLsn);
}
