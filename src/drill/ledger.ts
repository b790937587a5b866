/**
 * The failback's divergence ledger as the drill reports it: per rejoined node, where it left the
 * new primary's history and how many transactions it had committed past that point (writes the
 * rejoin discarded; they are kept in the ledger directory on the node). Read from the ledger
 * step's plan data in the failback's JSON report (src/modules/postgres/steps/ledger.ts). Pure.
 */
import type { RunReport } from '../report/json.js';

/** The failback's ledger step id (runbooks/failback.ts: rejoin('rejoin') + ledgerSteps). */
export const FAILBACK_LEDGER_STEP = 'rejoin-ledger';

export interface LedgerEntry {
  node: string;
  /** The LSN where the node's timeline left the primary's; null when it did not diverge or it is unknown. */
  diverged_at: string | null;
  /** WAL records past the divergence point. */
  records: number;
  /** Transactions committed past it: on that node only, discarded by the rejoin. */
  committed: number;
  /** Transactions past it that never committed (aborted, or in flight at the crash). */
  never_committed: number;
  /** Where the node keeps the ledger (WAL, waldump, summary), when it saved one. */
  dir?: string;
  /** The ledger step's own words. */
  detail: string;
}

export interface DrillLedger {
  /** Committed past the divergence, over every rejoined node: an upper bound on acknowledged writes lost. */
  committed: number;
  never_committed: number;
  nodes: LedgerEntry[];
}

interface LedgerData {
  node?: string;
  dir?: string;
  divergence?: { kind?: string; lsn?: string; reason?: string };
  range?: { records?: number } | null;
  lostCount?: number;
  unacknowledgedCount?: number;
}

/** The ledger entries of a failback run's report (one per node its ledger step looked at). */
export function ledgerOfFailback(report: RunReport | undefined): DrillLedger | undefined {
  const nodes: LedgerEntry[] = [];
  for (const r of report?.results ?? []) {
    if (r.stepId !== FAILBACK_LEDGER_STEP) continue;
    const g = (r.data as { ledger?: LedgerData } | undefined)?.ledger;
    if (!g) continue;
    nodes.push({
      node: g.node ?? r.host,
      diverged_at: g.divergence?.kind === 'at' ? (g.divergence.lsn ?? null) : null,
      records: g.range?.records ?? 0,
      committed: g.lostCount ?? 0,
      never_committed: g.unacknowledgedCount ?? 0,
      ...(g.dir && !g.dir.includes('<timestamp>') ? { dir: g.dir } : {}),
      detail: `${r.status}: ${r.message.split('\n')[0]}`,
    });
  }
  if (nodes.length === 0) return undefined;
  return {
    committed: nodes.reduce((s, n) => s + n.committed, 0),
    never_committed: nodes.reduce((s, n) => s + n.never_committed, 0),
    nodes,
  };
}

/** One line: "pg1 diverged at 0/5000060: 12 WAL records, 3 committed, 1 never committed". */
export function describeDrillLedger(l: DrillLedger): string {
  return l.nodes
    .map((n) =>
      n.diverged_at === null
        ? `${n.node}: no divergence`
        : `${n.node} diverged at ${n.diverged_at}: ${n.records} WAL records past it, ${n.committed} committed transactions discarded by the rejoin, ${n.never_committed} never committed`,
    )
    .join('; ');
}
