/**
 * Clone (or re-clone) a standby from the current primary with pg_basebackup — the one
 * implementation used by setup-warm-standby, base-backup and failback's fallback. The guard is
 * part of the pure plan, so no flag can get past it: a writable node is never wiped (setup may
 * replace a *pristine* stand-alone server, never one holding data or clients).
 */
import { blocked, change, noop, stepsFor } from '../../../engine/define.js';
import type { ApplyContext, RunContext, StepContext, StepDef } from '../../../engine/types.js';
import { type ControlData, type DataDirState, controlDataFact, dataDirFact, toolVersionsFact } from '../layout-facts.js';
import { clearJobCommand, type JobExec, jobFact, jobId, runDetached } from '../../../core/detached.js';
import { BlockedError } from '../../../errors.js';
import { lsnGte, type PgStatus, statusFact } from '../facts.js';
import { waitFor } from '../../../core/wait.js';
import { sh } from '../../../shell/index.js';
import { type PgCluster, type PgNode, type PgParams, clusterOf, conninfoFor, connOfLayout, layoutOf, nodeOf } from '../cluster.js';
import { asPostgres, startCommand, stopCommand, unfenceCommand } from '../control.js';
import type { PgLayout } from '../layout.js';
import { type ToolVersions, toolProblem } from '../version.js';
import { type Statuses, clusterStatusFacts, statusesOf, followsPrimary, isPristine, names, splitBrain, topology } from '../topology.js';

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
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
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

const mib = (n: number) => `${Math.round(n / 2 ** 20)} MiB`;

async function gatherEvidence<P extends CloneParams>(ctx: ApplyContext<P>, l: PgLayout, cluster: PgCluster, self: PgNode, source: PgNode): Promise<CloneEvidence> {
  const base = conninfoFor(cluster, source, self);
  const psql = `${l.binDir}/psql`;
  const ident = await ctx.exec(asPostgres(sh`${psql} -XAt -F '|' -d ${`${base} dbname=replication replication=true connect_timeout=10`} -c IDENTIFY_SYSTEM`), { check: false, timeoutSec: 30 });
  const fields = ident.stdout.trim().split('|');
  const src =
    ident.exitCode === 0 && fields.length >= 3
      ? { systemId: fields[0]!, timeline: Number(fields[1]), lsn: fields[2]! }
      : { error: (ident.stderr.trim().split('\n').pop() ?? '') || `psql exit ${ident.exitCode}` };
  const size = await ctx.exec(asPostgres(sh`${psql} -XAt -d ${`${base} dbname=postgres connect_timeout=10`} -c ${'SELECT sum(pg_database_size(oid))::bigint FROM pg_database'}`), { check: false, timeoutSec: 60 });
  const parent = l.dataDir.replace(/\/[^/]*\/?$/, '') || '/';
  const free = await ctx.exec(sh`df -P -B1 ${parent} | awk 'NR==2 {print $4}'`, { check: false });
  const target = await ctx.read(controlDataFact(l));
  const n = (r: { exitCode: number | null; stdout: string }) => (r.exitCode === 0 && /^\d+$/.test(r.stdout.trim()) ? Number(r.stdout.trim()) : null);
  return { source: src, target, sourceBytes: n(size), freeBytes: n(free) };
}

/**
 * Clone `self` from `source`, converging from wherever an earlier run stopped:
 * - a pg_basebackup still running detached (the run was killed, the link cut): reattach and wait;
 * - a clone marker without a successful job (interrupted): the data dir holds a partial clone, so it
 *   is emptied and the clone redone — the old data dir, moved aside before, stays where it is;
 * - otherwise: guard with evidence (source reachable, credentials, system id, timeline/LSN, space),
 *   then stop, move aside, mark, clone (detached), verify, start. standby.signal stays on every path.
 */
export async function cloneFrom<P extends CloneParams>(ctx: ApplyContext<P>, l: PgLayout, cluster: PgCluster, self: PgNode, source: PgNode, dataDir: DataDirState): Promise<void> {
  const id = cloneJobId(l);
  const x: JobExec = (c, o) => ctx.exec(c, { ...o, check: false });
  const job = await ctx.read(jobFact(id));
  const marker = cloneMarkerPath(l);
  const resumeRunning = job.state === 'running';
  const resumeDone = job.state === 'exited' && job.exitCode === 0 && dataDir.cloneMarker !== null;
  if (resumeRunning) ctx.log(`a pg_basebackup of ${l.dataDir} started by an earlier run is still running (PID ${job.pid}, since ${job.startedAt}): reattaching`);
  else if (resumeDone) ctx.log(`the pg_basebackup of an earlier run finished; verifying and starting it`);
  else if (dataDir.cloneMarker !== null) {
    ctx.log(`an earlier clone of ${l.dataDir} was interrupted (${job.state === 'exited' ? `pg_basebackup exit ${job.exitCode}` : job.state}); the old data dir is at ${dataDir.cloneMarker}: redoing the clone`);
    const evidence = await gatherEvidence(ctx, l, cluster, self, source);
    const ok = cloneGuard({ ...evidence, target: null }, { self: self.name, source: source.name });
    if (ok !== true) throw new BlockedError(ok);
    await ctx.exec(stopCommand(l));
    await ctx.exec(sh`rm -rf ${l.dataDir} && install -d -o postgres -g postgres -m 0700 ${l.dataDir}`);
  } else {
    // Prove the replacement possible before anything is stopped or moved.
    const evidence = await gatherEvidence(ctx, l, cluster, self, source);
    const ok = cloneGuard(evidence, { self: self.name, source: source.name });
    if (ok !== true) throw new BlockedError(ok);
    await ctx.exec(stopCommand(l));
    const aside = `${l.dataDir}.old.${timestamp()}`;
    if (dataDir.exists) {
      await ctx.exec(sh`mv ${l.dataDir} ${aside}`);
      ctx.log(`moved ${l.dataDir} aside to ${aside}`);
    }
    await ctx.exec(sh`printf '%s\n' ${dataDir.exists ? aside : '-'} > ${marker}`);
    // The copy just made is never pruned, whatever keep_old_copies says.
    for (const old of prunable([...dataDir.oldCopies, ...(dataDir.exists ? [aside] : [])], Math.max(1, ctx.params.keep_old_copies))) {
      await ctx.exec(sh`rm -rf ${old}`);
      ctx.log(`removed old copy ${old} (keeping ${Math.max(1, ctx.params.keep_old_copies)})`);
    }
    await ctx.exec(sh`install -d -o postgres -g postgres -m 0700 ${l.dataDir}`);
  }
  if (!resumeDone) {
    const conninfo = conninfoFor(cluster, source, self);
    ctx.log(`pg_basebackup from ${source.name}: ${conninfo}, slot ${self.slotName} (detached job ${id})`);
    let last = 0;
    // Detached: it outlives a lost connection or a killed runbook; a re-run reattaches to it.
    await runDetached(x, id, asPostgres(sh`${`${l.binDir}/pg_basebackup`} -d ${conninfo} -D ${l.dataDir} -X stream -c fast -R -S ${self.slotName} -P`), {
      timeoutSec: 3600,
      timeoutMs: 3_700_000,
      log: (line) => ctx.log(line),
      // -P rewrites one line with \r: pass on at most one progress line per second.
      onOutput: (chunk) => {
        const line = chunk.split(/[\r\n]/).filter((s) => s.trim()).pop();
        if (line && Date.now() - last > 1000) {
          last = Date.now();
          ctx.log(line.trim());
        }
      },
    });
  }
  const verify = await ctx.exec(asPostgres(sh`${`${l.binDir}/pg_verifybackup`} -q -n ${l.dataDir}`), { check: false });
  if (verify.exitCode !== 0) throw new Error(`pg_verifybackup ${l.dataDir}: ${verify.stderr.trim() || verify.stdout.trim()}`);
  ctx.log('pg_verifybackup: backup manifest and files verified');
  // pg_basebackup -R wrote standby.signal; make sure of it before the first start.
  await ctx.exec(asPostgres(sh`touch ${`${l.dataDir}/standby.signal`}`));
  const unfence = unfenceCommand(l);
  if (unfence) await ctx.exec(unfence);
  await ctx.exec(startCommand(l));
  await waitFor(ctx, {
    name: `${self.name} answers in recovery`,
    timeoutMs: 60_000,
    intervalMs: 500,
    check: async (c) => {
      const s = await c.read(statusFact(connOfLayout(l)));
      return s.up ? (s.inRecovery ? true : 'up but NOT in recovery') : s.error;
    },
  });
  await ctx.exec(sh`rm -f ${marker}`);
  await x(clearJobCommand(id));
}

/** Flat: `dataDir`, `tools` plus `status:<node>` for every node. */
export type CloneFacts = { dataDir: DataDirState; tools: ToolVersions } & Record<string, unknown>;

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

/**
 * Every node's status and this node's data directory: what the clone and the rewind (which hands
 * over to the clone when it cannot work) both decide from.
 */
export function clusterAndDataDirFacts(ctx: StepContext<PgParams>) {
  return { ...clusterStatusFacts(clusterOf(ctx)), dataDir: dataDirFact(layoutOf(ctx)), tools: toolVersionsFact(layoutOf(ctx)) };
}

/** The clone step. `on`: every cluster node (setup, failback) or the chosen targets (base-backup). */
export function cloneStep<P extends CloneParams>(id: string, on: (ctx: RunContext<P>) => string[], o: (p: P) => CloneOptions): StepDef<P, CloneFacts> {
  const { step } = stepsFor<P>();
  return step({
    id,
    title: 'Clone the standby from the current primary (pg_basebackup)',
    on,
    become: true,
    timeoutSec: 3600,
    gather: (ctx) => clusterAndDataDirFacts(ctx) as never,
    plan: (f, ctx) => {
      const c = clusterOf(ctx);
      const l = layoutOf(ctx);
      const d = planClone({ cluster: c, self: nodeOf(c, ctx.host.name), statuses: statusesOf(f), dataDir: f.dataDir, dataDirPath: l.dataDir }, o(ctx.params));
      // "Down" is pg_ctl's word, not psql's: a postmaster that runs but does not answer may be a primary.
      const me = statusesOf(f)[ctx.host.name];
      if (f.dataDir.running && !me?.up) return blocked(`${ctx.host.name}: a postmaster runs on ${l.dataDir} (pg_ctl status) but does not answer psql (${me?.error ?? 'no status'}): cannot prove it is not a writable primary; refusing to replace it`);
      if (d.kind !== 'clone') return d.kind === 'noop' ? noop(d.reason) : blocked(d.reason);
      const tool = cloneToolProblem(f.tools, statusesOf(f)[d.source.name], l.binDir);
      if (tool) return blocked(`cannot clone ${ctx.host.name} from ${d.source.name}: ${tool}; install that major's client tools on ${ctx.host.name} (or point pg_bin_dir at them)`);
      if (f.dataDir.cloneMarker !== null)
        return change(`finish the interrupted clone of ${ctx.host.name} from ${d.source.name} (reattach to its pg_basebackup, or redo it; the old data dir stays at ${f.dataDir.cloneMarker})`, []);
      return change(`${d.summary}; old data dir kept as ${l.dataDir}.old.<timestamp> (${Math.max(1, ctx.params.keep_old_copies)} copies kept)`, []);
    },
    confirm: {
      destructive: true,
      message: (ctx, plan) => `${ctx.host.name}: ${plan.summary}. Everything in ${layoutOf(ctx).dataDir} is replaced.`,
    },
    apply: async (ctx, _plan, f) => {
      const c = clusterOf(ctx);
      const self = nodeOf(c, ctx.host.name);
      const d = planClone({ cluster: c, self, statuses: statusesOf(f), dataDir: f.dataDir, dataDirPath: layoutOf(ctx).dataDir }, o(ctx.params));
      if (d.kind !== 'clone') throw new Error(`clone no longer planned: ${d.reason}`);
      await cloneFrom(ctx, layoutOf(ctx), c, self, d.source, f.dataDir);
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
