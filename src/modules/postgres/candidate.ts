/**
 * Which standby to promote, by data and not by inventory order (issue 12 point 2). Like Patroni's
 * `is_failover_possible` / `maximum_lag_on_failover` and repmgr's election: the most advanced
 * healthy standby wins (position = max(received, replayed)), ties go to the higher `pg_priority`
 * (priority 0: never chosen automatically), then inventory order. A candidate lagging more than
 * `max_lag_on_failover` behind the best known position, behind another standby, or unhealthy
 * (replay paused, not a standby) is refused unless approved by name: `--approve candidate:NODE`.
 */
import { fact } from '../../engine/define.js';
import type { Fact } from '../../engine/types.js';
import { sql } from '../../shell/index.js';
import { type PgConn, type PgStatus, lsnToBigInt, parseRows, psqlCommand } from './facts.js';

export const DEFAULT_MAX_LAG = 16 * 1024 * 1024;

export const approveCandidateId = (node: string) => `candidate:${node}`;

/** The standby's WAL receiver, with how long ago it heard from its upstream. */
export interface ReceiverView {
  status: string;
  receivedTli: number | null;
  senderHost: string | null;
  slotName: string | null;
  /** Seconds since the last message from the upstream (null: never). */
  lastMsgAgeSec: number | null;
}

export function receiverFact(conn: PgConn): Fact<ReceiverView | null> {
  return fact({
    name: 'pg.wal_receiver',
    become: true,
    cache: false,
    command: psqlCommand(
      conn,
      sql`SELECT status, received_tli, sender_host, slot_name, extract(epoch FROM now() - last_msg_receipt_time)::numeric(12,1) FROM pg_stat_wal_receiver`,
    ),
    parse(r) {
      if (r.exitCode !== 0) return null; // down: the status fact says why
      const row = parseRows(r.stdout)[0];
      if (!row) return null;
      const n = (v: string | null | undefined) => (v === null || v === undefined || v === '' ? null : Number(v));
      return { status: row[0] ?? '', receivedTli: n(row[1]), senderHost: row[2] ?? null, slotName: row[3] ?? null, lastMsgAgeSec: n(row[4]) };
    },
  });
}

/** One node as the coordinator saw it (over SSH, each on its own host). */
export interface NodeView {
  name: string;
  /** pg_priority var (default 100). */
  priority: number;
  /** SSH reached the host. */
  reachable: boolean;
  unreachableReason?: string;
  status?: PgStatus;
  receiver?: ReceiverView | null;
}

export interface Ranked {
  name: string;
  position: string | null;
  lagBytes: number | null;
  timeline: number | null;
  healthy: boolean;
  problems: string[];
  priority: number;
}

export type CandidateVerdict =
  | { kind: 'go'; candidate: string; followers: string[]; ranking: Ranked[]; reason: string }
  | { kind: 'blocked'; reason: string; ranking: Ranked[] };

function positionOf(s: PgStatus): bigint | null {
  if (!s.up) return null;
  const ls = [s.receiveLsn, s.replayLsn].filter((x): x is string => Boolean(x)).map(lsnToBigInt);
  return ls.length ? ls.reduce((a, b) => (a > b ? a : b)) : null;
}

function fmtLsn(v: bigint): string {
  return `${(v >> 32n).toString(16).toUpperCase()}/${(v & 0xffffffffn).toString(16).toUpperCase()}`;
}

function mib(b: number): string {
  return `${(b / 1024 / 1024).toFixed(1)} MiB`;
}

export interface CandidateInput {
  views: NodeView[];
  /** -e candidate=NODE */
  named: string | undefined;
  maxLagBytes: number;
  /** The best LSN known outside the standbys (the old primary's, when it still answers). */
  knownPrimaryLsn?: string | null;
  approved: (node: string) => boolean;
  /** -e force=true: abandon a writable primary (else a re-run with a primary in place is a no-op). */
  force?: boolean;
  /** The inventory's intended primary: writable, it is what failover would move away from. */
  intendedPrimary?: string;
}

/** Pure: rank the standbys and pick (or refuse) the candidate. */
export function chooseCandidate(i: CandidateInput): CandidateVerdict {
  const standbys = i.views.filter((v) => v.reachable && v.status?.up && v.status.inRecovery);
  const positions = new Map(standbys.map((v) => [v.name, positionOf(v.status!)]));
  let best: bigint | null = i.knownPrimaryLsn ? lsnToBigInt(i.knownPrimaryLsn) : null;
  for (const p of positions.values()) if (p !== null && (best === null || p > best)) best = p;
  const maxTli = Math.max(0, ...standbys.map((v) => (v.status!.up ? v.status!.timeline : 0)));

  const ranking: Ranked[] = standbys.map((v) => {
    const s = v.status as Extract<PgStatus, { up: true }>;
    const pos = positions.get(v.name) ?? null;
    const lag = best !== null && pos !== null ? Number(best - pos) : null;
    const problems: string[] = [];
    if (s.replayPause && s.replayPause !== 'not paused') problems.push(`replay ${s.replayPause}`);
    if (pos === null) problems.push('no WAL position (never received or replayed)');
    if (s.timeline < maxTli) problems.push(`on timeline ${s.timeline}, another standby is on ${maxTli}`);
    if (lag !== null && lag > i.maxLagBytes) problems.push(`lags ${mib(lag)} (> max_lag_on_failover ${mib(i.maxLagBytes)})`);
    else if (lag !== null && lag > 0) problems.push(`${lag} bytes behind the most advanced position ${fmtLsn(best!)}`);
    return { name: v.name, position: pos === null ? null : fmtLsn(pos), lagBytes: lag, timeline: s.timeline, healthy: problems.length === 0, problems, priority: v.priority };
  });
  const order = (a: Ranked, b: Ranked) => {
    const pa = a.position ? lsnToBigInt(a.position) : -1n;
    const pb = b.position ? lsnToBigInt(b.position) : -1n;
    if (pa !== pb) return pa > pb ? -1 : 1;
    return b.priority - a.priority;
  };
  ranking.sort(order);
  const describe = ranking.map((r) => `${r.name} at ${r.position ?? '?'}${r.problems.length ? ` (${r.problems.join('; ')})` : ''}`).join(', ');
  const followersOf = (c: string) => standbys.map((v) => v.name).filter((n) => n !== c);

  const writable = i.views.filter((v) => v.reachable && v.status?.up && !v.status.inRecovery);
  if (!i.named && !i.force && writable.length === 1 && writable[0]!.name !== i.intendedPrimary) {
    // A failover already happened (a re-run): the guard says so, the standbys stay. A writable
    // intended primary instead gets a candidate, and the guard refuses while it answers.
    const w = writable[0]!.name;
    return { kind: 'go', candidate: w, followers: followersOf(w), ranking, reason: `${w} is writable (the primary): no failover needed unless -e force=true` };
  }
  if (i.named) {
    const r = ranking.find((x) => x.name === i.named);
    if (!r) {
      // Not a running standby: the failover guard says what it is (already primary, down…).
      return { kind: 'go', candidate: i.named, followers: followersOf(i.named), ranking, reason: `${i.named} named as candidate (not a running standby: the guard decides)` };
    }
    if (!r.healthy && !i.approved(i.named))
      return {
        kind: 'blocked',
        ranking,
        reason: `candidate ${i.named} ${r.problems.join('; ')}; standbys: ${describe}. Writes it never received would be lost. Promote it anyway with --approve ${approveCandidateId(i.named)}, or leave -e candidate unset to take the most advanced healthy standby`,
      };
    return { kind: 'go', candidate: i.named, followers: followersOf(i.named), ranking, reason: `${i.named} named${r.healthy ? '' : ` (approved: ${r.problems.join('; ')})`}; standbys: ${describe}` };
  }
  if (ranking.length === 0) return { kind: 'blocked', ranking, reason: `no running standby to promote (${i.views.map((v) => `${v.name}: ${!v.reachable ? 'unreachable' : !v.status?.up ? 'down' : 'writable'}`).join(', ')})` };
  const eligible = ranking.filter((r) => r.healthy && r.priority > 0);
  const pick = eligible[0];
  if (!pick) {
    return {
      kind: 'blocked',
      ranking,
      reason: `no healthy standby to promote: ${describe}. Name one with -e candidate=NODE and approve it with --approve candidate:NODE (writes it never received are lost)`,
    };
  }
  return { kind: 'go', candidate: pick.name, followers: followersOf(pick.name), ranking, reason: `${pick.name} is the most advanced healthy standby: ${describe}` };
}

/** max_lag_on_failover: bytes, or a size with a unit (16MB, 512kB, 1GB). */
export function parseSize(v: string | number): number {
  if (typeof v === 'number') return v;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|kB|KB|MB|GB|TB)?\s*$/i.exec(v);
  if (!m) throw new Error(`not a size: ${JSON.stringify(v)} (bytes, or with kB/MB/GB)`);
  const mult: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3, tb: 1024 ** 4 };
  return Math.round(Number(m[1]) * mult[(m[2] ?? 'b').toLowerCase()]!);
}
