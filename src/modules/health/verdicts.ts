/**
 * Health and failover-readiness verdicts for `runbook check`: pure functions from what was read
 * on the nodes (ClusterFacts) to findings, each naming its host, the figure and the threshold.
 * Monitoring conventions: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
 */
import { lsnToBigInt } from '../postgres/facts.js';

export const OK = 0;
export const WARNING = 1;
export const CRITICAL = 2;
export const UNKNOWN = 3;
export type Level = typeof OK | typeof WARNING | typeof CRITICAL | typeof UNKNOWN;
export const LEVEL_NAMES = ['OK', 'WARNING', 'CRITICAL', 'UNKNOWN'] as const;

export interface Finding {
  part: 'health' | 'readiness';
  /** Short id, e.g. "replay-lag". */
  check: string;
  host: string;
  level: Level;
  message: string;
  figure?: number | string;
  threshold?: number | string;
  /** Unit of figure/threshold for perfdata ("B", "s", "files"). */
  unit?: string;
}

export interface SlotFacts {
  name: string;
  active: boolean;
  walStatus: string | null;
  /** pg_current_wal_lsn() - restart_lsn on the primary. */
  retainedBytes: number | null;
}

export interface SyncFacts {
  name: string;
  source: string;
  interval: number;
  lastSuccess: number | null;
  now: number;
  kept: string[];
  scheduled: boolean;
  lastFailed?: string;
}

export type NodeFacts =
  | { host: string; reachable: false; error: string }
  | {
      host: string;
      reachable: true;
      /** PostgreSQL answers. */
      up: boolean;
      error?: string;
      inRecovery: boolean;
      replayPause: string | null;
      receiveLsn: string | null;
      replayLsn: string | null;
      applicationName: string;
      systemIdentifier: string | null;
      maxWalSenders: number;
      maxReplicationSlots: number;
      /** MB, -1 for unlimited. */
      maxSlotWalKeepSizeMb: number;
      walLogHints: boolean;
      dataChecksums: boolean;
      archiveMode: string;
      senders: Array<{ applicationName: string; state: string; replayLagBytes: number | null }>;
      slots: SlotFacts[];
      archiver: { failedCount: number; failingNow: boolean; lastFailedWal: string | null } | null;
      readyFiles: number | null;
      holdsVip: boolean;
      syncs: SyncFacts[];
    };

export interface Thresholds {
  /** Replay lag (bytes) a standby may have; over it CRITICAL, over half of it WARNING. */
  maxLagBytes: number;
  /** Failover's own limit for the candidate (max_lag_on_failover). */
  maxLagOnFailover: number;
  /** .ready files waiting to be archived: WARNING over it, CRITICAL over 10×. */
  readyBacklog: number;
  /** The sync's last success older than this many intervals: CRITICAL (WARNING over half). */
  syncIntervals: number;
}

export const DEFAULT_THRESHOLDS: Thresholds = { maxLagBytes: 16 * 1024 * 1024, maxLagOnFailover: 16 * 1024 * 1024, readyBacklog: 10, syncIntervals: 3 };

export interface ClusterFacts {
  nodes: NodeFacts[];
  intendedPrimary: string;
  vip: string | undefined;
  /** The node failover would promote, and why (from failover's own candidate choice). */
  candidate: { host: string; why: string } | { error: string };
  /** How failover would fence the current primary (decideFence), and its fence_command if any. */
  fence: { action: 'follow' | 'ssh' | 'command' | 'none' | 'refuse'; evidence: string | null; reason: string; command?: { line: string; runnable: boolean; detail: string } } | undefined;
}

type Up = Extract<NodeFacts, { reachable: true }>;
const upNodes = (c: ClusterFacts) => c.nodes.filter((n): n is Up => n.reachable && n.up);
const mb = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MB`;

/** The worst level wins, CRITICAL first; UNKNOWN only counts when nothing is worse than OK. */
export function overall(findings: Finding[]): Level {
  const levels = new Set(findings.map((f) => f.level));
  if (levels.has(CRITICAL)) return CRITICAL;
  if (levels.has(WARNING)) return WARNING;
  if (levels.has(UNKNOWN)) return UNKNOWN;
  return OK;
}

export function healthFindings(c: ClusterFacts, t: Thresholds = DEFAULT_THRESHOLDS): Finding[] {
  const out: Finding[] = [];
  const f = (x: Omit<Finding, 'part'>) => out.push({ part: 'health', ...x });

  for (const n of c.nodes) {
    if (!n.reachable) f({ check: 'reachable', host: n.host, level: CRITICAL, message: n.error.startsWith('reached, but') ? `${n.host}: ${n.error}` : `${n.host} cannot be reached over SSH: ${n.error}` });
    else if (!n.up) f({ check: 'postgres-up', host: n.host, level: CRITICAL, message: `${n.host}: PostgreSQL does not answer: ${n.error ?? 'down'}` });
  }

  const writable = upNodes(c).filter((n) => !n.inRecovery);
  if (writable.length === 1) f({ check: 'one-writable', host: writable[0]!.host, level: OK, message: `${writable[0]!.host} is the one writable node`, figure: 1, threshold: 1 });
  else if (writable.length === 0) f({ check: 'one-writable', host: 'cluster', level: CRITICAL, message: 'no writable node: every node that answers is in recovery or down', figure: 0, threshold: 1 });
  else f({ check: 'one-writable', host: 'cluster', level: CRITICAL, message: `${writable.map((n) => n.host).join(' and ')} are all writable (split brain)`, figure: writable.length, threshold: 1 });
  const primary = writable.length === 1 ? writable[0]! : undefined;

  for (const s of upNodes(c).filter((n) => n.inRecovery)) {
    if (s.replayPause && s.replayPause !== 'not paused')
      f({ check: 'replay-paused', host: s.host, level: WARNING, message: `${s.host}: WAL replay is ${s.replayPause}`, figure: s.replayPause, threshold: 'not paused' });
    if (!primary) continue;
    const snd = primary.senders.find((x) => x.applicationName === s.applicationName);
    if (!snd) {
      f({ check: 'streaming', host: s.host, level: CRITICAL, message: `${s.host} does not stream from ${primary.host} (no pg_stat_replication row for application_name ${s.applicationName})` });
      continue;
    }
    if (snd.state !== 'streaming') f({ check: 'streaming', host: s.host, level: CRITICAL, message: `${s.host} is ${snd.state}, not streaming, from ${primary.host}`, figure: snd.state, threshold: 'streaming' });
    const lag = snd.replayLagBytes ?? 0;
    const level = lag > t.maxLagBytes ? CRITICAL : lag > t.maxLagBytes / 2 ? WARNING : OK;
    f({ check: 'replay-lag', host: s.host, level, message: `${s.host}: replay lag ${lag} B (${mb(lag)}) behind ${primary.host}, threshold ${t.maxLagBytes} B`, figure: lag, threshold: t.maxLagBytes, unit: 'B' });
  }

  if (primary) {
    for (const sl of primary.slots) {
      const limit = primary.maxSlotWalKeepSizeMb >= 0 ? primary.maxSlotWalKeepSizeMb * 1024 * 1024 : null;
      const kept = sl.retainedBytes ?? 0;
      let level: Level = OK;
      const why: string[] = [];
      if (!sl.active) (level = WARNING), why.push('inactive');
      if (sl.walStatus === 'lost') (level = CRITICAL), why.push('WAL lost (wal_status lost): its standby must be re-cloned');
      else if (sl.walStatus === 'unreserved') (level = CRITICAL), why.push('about to lose WAL (wal_status unreserved)');
      if (limit !== null && kept > limit * 0.8 && level < CRITICAL) (level = WARNING), why.push(`retains over 80 % of max_slot_wal_keep_size`);
      f({
        check: 'slot',
        host: primary.host,
        level,
        message: `${primary.host}: slot ${sl.name} ${sl.active ? 'active' : 'INACTIVE'}, retains ${kept} B (${mb(kept)}), max_slot_wal_keep_size ${limit === null ? 'unlimited (-1)' : `${limit} B`}${why.length ? `: ${why.join('; ')}` : ''}`,
        figure: kept,
        threshold: limit ?? -1,
        unit: 'B',
      });
    }
  }

  for (const n of upNodes(c)) {
    if (n.archiveMode === 'off' || !n.archiver) continue;
    if (n.archiver.failingNow)
      f({ check: 'archive', host: n.host, level: CRITICAL, message: `${n.host}: archiving fails (pg_stat_archiver.failed_count ${n.archiver.failedCount}, last failed ${n.archiver.lastFailedWal ?? '?'} after the last success)`, figure: n.archiver.failedCount, threshold: 0 });
    else if (n.archiver.failedCount > 0)
      f({ check: 'archive', host: n.host, level: OK, message: `${n.host}: archiving works (${n.archiver.failedCount} earlier failures, none since the last success)`, figure: n.archiver.failedCount, threshold: 0 });
  }

  if (c.vip) {
    const holders = c.nodes.filter((n) => n.reachable && n.holdsVip).map((n) => n.host);
    const p = primary?.host;
    if (holders.length === 1 && holders[0] === p) f({ check: 'vip', host: p, level: OK, message: `VIP ${c.vip} is on ${p} only, the primary` });
    else if (holders.length === 0) f({ check: 'vip', host: p ?? 'cluster', level: CRITICAL, message: `no node holds VIP ${c.vip}${p ? ` (the primary is ${p})` : ''}`, figure: 0, threshold: 1 });
    else f({ check: 'vip', host: holders.join(','), level: CRITICAL, message: `VIP ${c.vip} is on ${holders.join(' and ')}${p ? `, the primary is ${p}` : ', and no node is the one primary'}`, figure: holders.length, threshold: 1 });
  }

  for (const n of c.nodes) {
    if (!n.reachable) continue;
    for (const s of n.syncs) {
      if (s.source === n.host) continue;
      const limit = s.interval * t.syncIntervals;
      if (!s.scheduled) {
        f({ check: 'file-sync', host: n.host, level: CRITICAL, message: `${n.host}: file sync ${s.name} from ${s.source} has no schedule here`, figure: 'no schedule', threshold: `every ${s.interval} s` });
        continue;
      }
      const age = s.lastSuccess === null ? null : s.now - s.lastSuccess;
      const level = age === null || age > limit ? CRITICAL : age > limit / 2 ? WARNING : OK;
      f({
        check: 'file-sync',
        host: n.host,
        level,
        message: `${n.host}: file sync ${s.name} from ${s.source}: last success ${age === null ? 'never' : `${age} s ago`}, threshold ${limit} s${s.lastFailed ? ` (last run failed: ${s.lastFailed})` : ''}`,
        figure: age ?? -1,
        threshold: limit,
        unit: 's',
      });
      if (s.kept.length)
        f({ check: 'file-sync-kept', host: n.host, level: WARNING, message: `${n.host}: file sync ${s.name}: ${s.kept.length} file(s) written here kept, not overwritten: ${s.kept.slice(0, 10).join(', ')}`, figure: s.kept.length, threshold: 0, unit: 'files' });
    }
  }
  return out;
}

/** Would `failover` be allowed right now, and what would it do? */
export function readinessFindings(c: ClusterFacts, t: Thresholds = DEFAULT_THRESHOLDS): Finding[] {
  const out: Finding[] = [];
  const f = (x: Omit<Finding, 'part'>) => out.push({ part: 'readiness', ...x });
  const up = upNodes(c);
  const writable = up.filter((n) => !n.inRecovery);
  const primary = writable.length === 1 ? writable[0] : undefined;

  if ('error' in c.candidate) {
    f({ check: 'candidate', host: 'cluster', level: CRITICAL, message: `failover has no candidate: ${c.candidate.error}` });
    return out;
  }
  const candName = c.candidate.host;
  const cand = c.nodes.find((n) => n.host === candName);
  f({ check: 'candidate', host: candName, level: OK, message: `failover would promote ${candName}: ${c.candidate.why}` });
  if (!cand || !cand.reachable || !cand.up) {
    f({ check: 'candidate-up', host: candName, level: CRITICAL, message: `${candName}, the candidate, ${!cand ? 'is not a node' : !cand.reachable ? `cannot be reached: ${cand.error}` : `does not answer: ${cand.error ?? 'down'}`}` });
    return out;
  }
  if (!cand.inRecovery) {
    f({ check: 'candidate-standby', host: candName, level: primary?.host === candName ? WARNING : CRITICAL, message: `${candName} is writable, not a standby: there is nothing to fail over to` });
    return out;
  }
  if (cand.replayPause && cand.replayPause !== 'not paused')
    f({ check: 'candidate-replay', host: candName, level: CRITICAL, message: `${candName}: replay is ${cand.replayPause}: failover refuses until pg_wal_replay_resume()`, figure: cand.replayPause, threshold: 'not paused' });
  let lag: number | null = null;
  const snd = primary?.senders.find((s) => s.applicationName === cand.applicationName);
  if (snd) lag = snd.replayLagBytes ?? 0;
  else if (cand.receiveLsn && cand.replayLsn) lag = Number(lsnToBigInt(cand.receiveLsn) - lsnToBigInt(cand.replayLsn));
  if (lag !== null) {
    const level = lag > t.maxLagOnFailover ? CRITICAL : OK;
    f({ check: 'candidate-lag', host: candName, level, message: `${candName}: lag ${lag} B (${mb(lag)}), max_lag_on_failover ${t.maxLagOnFailover} B`, figure: lag, threshold: t.maxLagOnFailover, unit: 'B' });
  }

  // Fence: the node failover would have to stop.
  const old = primary ?? c.nodes.find((n) => n.host === c.intendedPrimary);
  if (old && old.host !== candName) {
    const fe = c.fence;
    if (fe) {
      const cmd = fe.command ? `; fence_command ${fe.command.line} (${fe.command.detail})` : '; no fence_command set';
      const level = fe.action === 'refuse' || (fe.action === 'command' && fe.command && !fe.command.runnable) ? CRITICAL : OK;
      f({ check: 'fence', host: old.host, level, message: `${old.host}: failover would ${fe.action === 'refuse' ? 'REFUSE' : `fence by ${fe.action}`} (evidence ${fe.evidence ?? 'none needed'}): ${fe.reason}${cmd}`, figure: fe.evidence ?? 'none', threshold: 'not unknown' });
    }
    if (old.reachable && old.up) {
      const ok = old.walLogHints || old.dataChecksums;
      f({ check: 'rewind-prerequisites', host: old.host, level: ok ? OK : WARNING, message: `${old.host}: wal_log_hints ${old.walLogHints ? 'on' : 'off'}, data checksums ${old.dataChecksums ? 'on' : 'off'}: ${ok ? 'pg_rewind can rejoin it after a failover' : 'pg_rewind cannot rejoin it; failback would re-clone'}`, figure: ok ? 'yes' : 'no', threshold: 'wal_log_hints or checksums' });
    }
  }

  const ids = new Map<string, string[]>();
  for (const n of up) if (n.systemIdentifier) ids.set(n.systemIdentifier, [...(ids.get(n.systemIdentifier) ?? []), n.host]);
  if (ids.size > 1) f({ check: 'system-identifier', host: 'cluster', level: CRITICAL, message: `system identifiers differ: ${[...ids].map(([id, h]) => `${h.join(',')} ${id}`).join('; ')}`, figure: ids.size, threshold: 1 });
  else if (ids.size === 1) f({ check: 'system-identifier', host: 'cluster', level: OK, message: `one system identifier on ${up.length} node(s): ${[...ids.keys()][0]}`, figure: 1, threshold: 1 });

  if (primary && primary.readyFiles !== null) {
    const r = primary.readyFiles;
    const level = r > t.readyBacklog * 10 ? CRITICAL : r > t.readyBacklog ? WARNING : OK;
    f({ check: 'archive-backlog', host: primary.host, level, message: `${primary.host}: ${r} WAL file(s) waiting to be archived (.ready), threshold ${t.readyBacklog}`, figure: r, threshold: t.readyBacklog, unit: 'files' });
  }

  // After the promote the others stream from the candidate: it needs a sender and a slot each.
  const needed = c.nodes.length - 1;
  const freeSenders = cand.maxWalSenders - cand.senders.length;
  f({ check: 'candidate-senders', host: candName, level: freeSenders >= needed ? OK : CRITICAL, message: `${candName}: ${freeSenders} free WAL sender(s) of max_wal_senders ${cand.maxWalSenders}, needs ${needed}`, figure: freeSenders, threshold: needed });
  const freeSlots = cand.maxReplicationSlots - cand.slots.length;
  f({ check: 'candidate-slots', host: candName, level: freeSlots >= needed ? OK : CRITICAL, message: `${candName}: ${freeSlots} free replication slot(s) of max_replication_slots ${cand.maxReplicationSlots}, needs ${needed}`, figure: freeSlots, threshold: needed });
  return out;
}
