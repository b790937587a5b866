/**
 * The divergence ledger (issue 12 point 3): before a former primary is rewound or re-cloned, find
 * where its history left the current primary's (timeline history files), read its own WAL past
 * that point with pg_waldump, and — when there is any — keep that WAL and a summary (transactions,
 * commit times, relations) in a directory outside the data dir. Committed transactions past the
 * divergence are writes the rewind discards: unattended runs refuse unless -e accept_data_loss=true
 * or `--approve <the ledger step>`.
 */
import { fact } from '../../engine/define.js';
import type { Fact } from '../../engine/types.js';
import { type Command, sh, sql } from '../../shell/index.js';
import { asPostgres, cLocale } from './control.js';
import { type PgConn, lsnToBigInt, optionalQueryFact } from './facts.js';
import type { PgLayout } from './layout.js';

// ---------------------------------------------------------------- timeline history

export interface HistoryEntry {
  /** A parent timeline … */
  tli: number;
  /** … and where the next timeline branched off it. */
  switchLsn: string;
}

/** "1\t0/3000148\tno recovery target specified" lines (comments and blanks ignored). */
export function parseHistory(text: string): HistoryEntry[] {
  const out: HistoryEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+)\s+([0-9A-Fa-f]+\/[0-9A-Fa-f]+)/.exec(line);
    if (m) out.push({ tli: Number(m[1]), switchLsn: m[2]!.toUpperCase() });
  }
  return out;
}

export interface Lineage {
  /** The node's current timeline. */
  tli: number;
  /** Its history file's entries (empty on timeline 1). */
  history: HistoryEntry[];
}

export type Divergence =
  | { kind: 'none'; reason: string }
  | { kind: 'at'; lsn: string; tli: number; reason: string }
  | { kind: 'unknown'; reason: string };

function minLsn(a: string, b: string): string {
  return lsnToBigInt(a) <= lsnToBigInt(b) ? a : b;
}

/**
 * Where `node`'s history leaves `primary`'s. Both lineages as lists of (timeline, end): the last
 * timeline they share ends, for the node, at the earlier of the two switch points.
 */
export function findDivergence(node: Lineage, primary: Lineage): Divergence {
  if (node.tli === primary.tli) return { kind: 'none', reason: `same timeline ${node.tli}: the node is the primary's past (or behind it)` };
  const inf = 'FFFFFFFF/FFFFFFFF';
  const n = [...node.history, { tli: node.tli, switchLsn: inf }];
  const p = [...primary.history, { tli: primary.tli, switchLsn: inf }];
  let shared = -1;
  for (let i = 0; i < Math.min(n.length, p.length); i++) {
    if (n[i]!.tli !== p[i]!.tli) break;
    shared = i;
  }
  if (shared < 0) return { kind: 'unknown', reason: `timelines share no history (node on ${node.tli}, primary on ${primary.tli}): not the same cluster lineage` };
  const lsn = minLsn(n[shared]!.switchLsn, p[shared]!.switchLsn);
  if (lsn === inf) return { kind: 'none', reason: 'no switch point between them' };
  // The node is on a later timeline of the same lineage only if the primary is its past: nothing to discard.
  if (p[shared]!.switchLsn === inf) return { kind: 'none', reason: `the primary's timeline ${primary.tli} is in the node's past` };
  return { kind: 'at', lsn, tli: n[shared]!.tli, reason: `timeline ${n[shared]!.tli} branched to the primary's history at ${lsn}` };
}

/** The primary's lineage: its current timeline and that timeline's history file (null when down). */
export function lineageFact(conn: PgConn): Fact<Lineage | null> {
  return optionalQueryFact(
    'pg.lineage',
    conn,
    sql`SELECT t.tli, CASE WHEN t.tli > 1 THEN pg_read_file(format('pg_wal/%s.history', lpad(upper(to_hex(t.tli)), 8, '0'))) ELSE '' END
      FROM (SELECT timeline_id AS tli FROM pg_control_checkpoint()) t`,
    (rows) => ({ tli: Number(rows[0]?.[0]), history: parseHistory(rows[0]?.[1] ?? '') }),
  );
}

/** A stopped node's lineage from its files: pg_control's timeline and its history file. */
export function localLineageFact(l: PgLayout): Fact<Lineage | null> {
  return fact({
    name: 'pg.local_lineage',
    become: true,
    command: sh`[ -f ${`${l.dataDir}/global/pg_control`} ] || exit 0
t=$(${asPostgres(cLocale(sh`${`${l.binDir}/pg_controldata`} -D ${l.dataDir}`))} | sed -n "s/^Latest checkpoint's TimeLineID: *//p")
echo "tli=$t"
f=${`${l.dataDir}/pg_wal/`}$(printf '%08X' "$t").history
[ -f "$f" ] && cat "$f"
true`,
    parse(r) {
      const m = /^tli=(\d+)/m.exec(r.stdout);
      if (!m) return null;
      return { tli: Number(m[1]), history: parseHistory(r.stdout.replace(/^tli=.*$/m, '')) };
    },
  });
}

// ---------------------------------------------------------------- the WAL past the divergence

export interface LedgerTx {
  xid: number;
  /** COMMIT / ABORT, or null: no end record (in progress at the crash, never acknowledged). */
  status: 'COMMIT' | 'ABORT' | null;
  time: string | null;
  relations: string[];
  records: number;
}

export interface WalScan {
  /** pg_waldump ran and read to the end of the WAL (its usual "invalid record" stop). */
  ok: boolean;
  error?: string;
  records: number;
  firstLsn: string | null;
  lastLsn: string | null;
  transactions: LedgerTx[];
  /** Record counts per resource manager. */
  rmgrs: Record<string, number>;
  /** No record at all because the segment holding the start is missing or all zeroes. */
  noStartSegment?: boolean;
}

const RECORD = /^rmgr: (\S+)\s+len \(rec\/tot\):\s*\d+\/\s*\d+, tx:\s*(\d+), lsn: ([0-9A-F]+\/[0-9A-F]+), prev \S+, desc: (.*)$/;

/** pg_waldump's stdout (records) and stderr (why it stopped). */
export function parseWaldump(stdout: string, stderr: string): WalScan {
  const txs = new Map<number, LedgerTx>();
  const rmgrs: Record<string, number> = {};
  let records = 0;
  let firstLsn: string | null = null;
  let lastLsn: string | null = null;
  for (const line of stdout.split('\n')) {
    const m = RECORD.exec(line.trim());
    if (!m) continue;
    const [, rmgr, xidText, lsn, desc] = m as unknown as [string, string, string, string, string];
    records++;
    firstLsn ??= lsn;
    lastLsn = lsn;
    rmgrs[rmgr] = (rmgrs[rmgr] ?? 0) + 1;
    const xid = Number(xidText);
    if (xid === 0) continue;
    let tx = txs.get(xid);
    if (!tx) txs.set(xid, (tx = { xid, status: null, time: null, relations: [], records: 0 }));
    tx.records++;
    const end = rmgr === 'Transaction' ? /^(COMMIT|ABORT)(?:_PREPARED)? (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+)/.exec(desc) : null;
    if (end) {
      tx.status = end[1] as 'COMMIT' | 'ABORT';
      tx.time = end[2]!;
    }
    for (const r of desc.matchAll(/rel (\d+\/\d+\/\d+)/g)) if (!tx.relations.includes(r[1]!)) tx.relations.push(r[1]!);
  }
  const why = stderr.trim().split('\n').filter(Boolean).pop() ?? '';
  // The normal end of a WAL stream, or no record at all past the start: both read everything there
  // is. A zero header: the start segment (named by walScanFact) was preallocated, never written.
  const ended = /header specifies 0 bytes|invalid record length|invalid magic number|record with incorrect prev-link|could not find a valid record after|contrecord is requested|invalid resource manager ID|record length .* too (long|short)|unexpected pageaddr/i.test(why);
  const out: WalScan = { ok: ended || why === '', records, firstLsn, lastLsn, transactions: [...txs.values()], rmgrs };
  if (records === 0 && /header specifies 0 bytes|could not find file|could not open file|No such file/i.test(why)) out.noStartSegment = true;
  if (!out.ok) out.error = why;
  return out;
}

/**
 * A scan that found no WAL at the divergence point (its segment gone or never written) proves
 * nothing was written past it only if the node's last checkpoint is before that point: WAL from a
 * checkpoint on is never removed. A checkpoint past it means writes whose WAL is gone: unknown.
 */
export function withCheckpoint(scan: WalScan, checkpoint: { lsn: string; tli: number } | null, start: { lsn: string; tli: number }): WalScan {
  if (!scan.noStartSegment) return scan;
  const before = checkpoint !== null && checkpoint.tli === start.tli && lsnToBigInt(checkpoint.lsn) < lsnToBigInt(start.lsn);
  if (before) {
    const { error: _proved, ...rest } = scan;
    return { ...rest, ok: true };
  }
  const where = checkpoint ? `its last checkpoint is at ${checkpoint.lsn} on timeline ${checkpoint.tli}, past the divergence ${start.lsn}` : 'its last checkpoint is unknown';
  return { ...scan, ok: false, error: `no WAL at the divergence point in pg_wal, and ${where}: writes past it whose WAL is gone (${scan.error ?? 'segment missing'})` };
}

/**
 * pg_waldump of `tli` from `start` in the node's own pg_wal (read-only; C locale, stderr kept
 * apart). The segment holding `start` is named (its size from pg_controldata): without it
 * pg_waldump takes the segment size from whichever file it finds first, and a preallocated,
 * zero-filled one (common after a switchover) makes it fail ("header specifies 0 bytes").
 */
export function walScanFact(l: PgLayout, tli: number, start: string): Fact<WalScan> {
  const script = `cd=$("$1" -D "$2")
sz=$(printf '%s\\n' "$cd" | sed -n 's/^Bytes per WAL segment: *//p')
[ -n "$sz" ] || { echo "pg_waldump: error: pg_controldata gave no WAL segment size" >&2; exit 1; }
printf 'checkpoint=%s %s\\n' "$(printf '%s\\n' "$cd" | sed -n 's/^Latest checkpoint location: *//p')" "$(printf '%s\\n' "$cd" | sed -n "s/^Latest checkpoint's TimeLineID: *//p")"
# Only a major's own pg_waldump reads its WAL: without it, what the node would lose is unknown.
[ -x "$5" ] || { echo "pg_waldump: error: no pg_waldump in \${5%/*} (only this major's own pg_waldump reads its WAL)" >&2; exit 1; }
hi=\${4%/*}; lo=\${4#*/}; seg=$(( ((0x$hi << 32) | 0x$lo) / sz )); per=$(( 4294967296 / sz ))
exec "$5" -p "$2/pg_wal" -t "$3" -s "$4" "$(printf '%08X%08X%08X' "$3" $((seg / per)) $((seg % per)))"`;
  return fact({
    name: 'pg.waldump',
    become: true,
    cache: false,
    command: asPostgres(cLocale(sh`sh -c ${script} waldump ${`${l.binDir}/pg_controldata`} ${l.dataDir} ${String(tli)} ${start} ${`${l.binDir}/pg_waldump`}`)),
    parse: (r) => {
      const c = /^checkpoint=([0-9A-F]+\/[0-9A-F]+) (\d+)$/m.exec(r.stdout);
      return withCheckpoint(parseWaldump(r.stdout, r.stderr), c ? { lsn: c[1]!, tli: Number(c[2]) } : null, { lsn: start, tli });
    },
  });
}

// ---------------------------------------------------------------- the decision

export interface Ledger {
  node: string;
  divergence: Divergence;
  scan: WalScan | null;
  /** Committed past the divergence: acknowledged writes the rewind would discard. */
  lost: LedgerTx[];
  /** Never committed (aborted or in flight at the crash). */
  unacknowledged: LedgerTx[];
}

export type LedgerDecision =
  | { kind: 'nothing'; reason: string }
  | { kind: 'save'; needsApproval: boolean; reason: string }
  | { kind: 'refuse'; reason: string };

export function describeLedger(g: Ledger): string {
  if (g.divergence.kind !== 'at' || !g.scan) return g.divergence.reason;
  const s = g.scan;
  const lost = g.lost.map((t) => `xid ${t.xid} committed ${t.time} (${t.relations.length} relations)`).slice(0, 10);
  return (
    `${g.node} diverged at ${g.divergence.lsn} on timeline ${g.divergence.tli}; ${s.records} WAL records past it (${s.firstLsn ?? '-'} … ${s.lastLsn ?? '-'}): ` +
    `${g.lost.length} committed transactions${lost.length ? ` [${lost.join('; ')}${g.lost.length > lost.length ? '; …' : ''}]` : ''}, ${g.unacknowledged.length} never committed`
  );
}

export function buildLedger(node: string, divergence: Divergence, scan: WalScan | null): Ledger {
  const txs = scan?.transactions ?? [];
  return { node, divergence, scan, lost: txs.filter((t) => t.status === 'COMMIT'), unacknowledged: txs.filter((t) => t.status !== 'COMMIT') };
}

/** Pure: what the ledger step does about it. `accepted`: -e accept_data_loss=true or --approve STEP. */
export function decideLedger(g: Ledger, accepted: boolean, approveHint: string): LedgerDecision {
  const d = g.divergence;
  if (d.kind === 'none') return { kind: 'nothing', reason: `no divergence: ${d.reason}` };
  if (d.kind === 'unknown' || !g.scan || !g.scan.ok) {
    const why = d.kind === 'unknown' ? d.reason : g.scan?.error ? `pg_waldump: ${g.scan.error}` : 'the WAL past the divergence could not be read';
    if (accepted) return { kind: 'save', needsApproval: true, reason: `what ${g.node} would lose is unknown (${why}); accepted` };
    return { kind: 'refuse', reason: `cannot tell which writes ${g.node} would lose (${why}). Refusing to rewind or re-clone it; ${approveHint}` };
  }
  if (g.scan.records === 0) return { kind: 'nothing', reason: `diverged at ${d.lsn}, no WAL past it: nothing is discarded` };
  const summary = describeLedger(g);
  const writes = g.lost.length + g.unacknowledged.length > 0;
  if (!writes) return { kind: 'save', needsApproval: false, reason: `${summary}; no transaction among them (checkpoints, hints): nothing acknowledged is lost` };
  if (g.lost.length === 0 || accepted) return { kind: 'save', needsApproval: g.lost.length > 0, reason: summary };
  return { kind: 'refuse', reason: `${summary}. These commits exist only on ${g.node}: a rewind or re-clone discards them. Refusing; ${approveHint}` };
}

// ---------------------------------------------------------------- keeping it

/** Where a node keeps its ledgers: next to the data dir, so neither a rewind nor a re-clone touches it. */
export function ledgerRoot(l: PgLayout): string {
  return `${l.dataDir.replace(/\/+$/, '').replace(/\/[^/]+$/, '')}/runbook-ledger`;
}

/** WAL segment file name of `lsn` on `tli` (16 MB segments unless given). */
export function segmentName(tli: number, lsn: string, segSize = 16 * 1024 * 1024): string {
  const pos = lsnToBigInt(lsn);
  const segNo = pos / BigInt(segSize);
  const perId = 0x100000000n / BigInt(segSize);
  const hex = (v: bigint | number) => v.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(tli)}${hex(segNo / perId)}${hex(segNo % perId)}`;
}

/** Listed in full up to this many (each list); the counts are always complete. */
const LIST_MAX = 500;

export function ledgerJson(g: Ledger, dir: string): Record<string, unknown> {
  return {
    node: g.node,
    dir,
    divergence: g.divergence,
    range: g.scan ? { from: g.divergence.kind === 'at' ? g.divergence.lsn : null, firstRecord: g.scan.firstLsn, lastRecord: g.scan.lastLsn, records: g.scan.records } : null,
    rmgrs: g.scan?.rmgrs ?? {},
    lostCount: g.lost.length,
    lost: g.lost.slice(0, LIST_MAX),
    unacknowledgedCount: g.unacknowledged.length,
    unacknowledged: g.unacknowledged.slice(0, LIST_MAX),
  };
}

/**
 * Save the ledger on the node: the WAL segments of the diverged timeline from the one holding the
 * divergence point, pg_waldump's full output, a summary and ledger.json. Files only; the data dir
 * is not touched. Returns the command (run as root; files owned by postgres, mode 0700 dir).
 */
export function saveLedgerCommand(l: PgLayout, g: Ledger, dir: string): Command {
  const d = g.divergence as Extract<Divergence, { kind: 'at' }>;
  const first = segmentName(d.tli, d.lsn);
  const prefix = first.slice(0, 8);
  const json = `${JSON.stringify(ledgerJson(g, dir), null, 2)}\n`;
  const summary = `${describeLedger(g)}\n\n${[...g.lost.slice(0, LIST_MAX), ...g.unacknowledged.slice(0, LIST_MAX)]
    .map((t) => `xid ${t.xid}\t${t.status ?? 'NO COMMIT'}\t${t.time ?? '-'}\trecords ${t.records}\trelations ${t.relations.join(',') || '-'}`)
    .join('\n')}\n`;
  const script = `set -e
umask 077
mkdir -p "$1/wal"
for f in "$2"/pg_wal/"$3"*; do
  b=$(basename "$f")
  case "$b" in *.history|*.partial|*.backup) continue;; esac
  [ "$b" \\< "$4" ] && continue
  cp -p "$f" "$1/wal/"
done
printf '%s' "$5" > "$1/ledger.json"
printf '%s' "$6" > "$1/summary.txt"
"$7" -p "$2/pg_wal" -t "$8" -s "$9" "$4" > "$1/waldump.txt" 2> "$1/waldump.stderr" || true`;
  return asPostgres(
    cLocale(sh`sh -c ${script} ledger ${dir} ${l.dataDir} ${prefix} ${first} ${json} ${summary} ${`${l.binDir}/pg_waldump`} ${String(d.tli)} ${d.lsn}`),
  );
}
