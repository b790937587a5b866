import { describe, expect, it } from 'vitest';
import { describeDrillLedger, ledgerOfFailback } from '../../../src/drill/ledger.js';
import type { RunReport } from '../../../src/report/json.js';

const result = (stepId: string, host: string, data?: Record<string, unknown>) => ({ stepId, host, status: 'changed', message: 'keep the ledger of pg1\nmore', durationMs: 5, ...(data ? { data } : {}) });

describe('the drill reads the failback ledger', () => {
  it('takes the ledger step data of each node, not the divergence step', () => {
    const report = {
      results: [
        result('rejoin-divergence', 'pg1', { divergence: { kind: 'at', lsn: '0/5000060', tli: 1, reason: 'x' } }),
        result('rejoin-ledger', 'pg1', {
          ledger: { node: 'pg1', dir: '/var/lib/postgresql/15/runbook-ledger/<timestamp>-tl1-0_5000060', divergence: { kind: 'at', lsn: '0/5000060' }, range: { records: 40 }, lostCount: 3, unacknowledgedCount: 1 },
        }),
        result('rejoin-ledger', 'pg3'),
        result('rejoin-old-ledger', 'pg2', { ledger: { node: 'pg2', divergence: { kind: 'none' }, lostCount: 0, unacknowledgedCount: 0 } }),
      ],
    } as unknown as RunReport;
    const l = ledgerOfFailback(report)!;
    expect(l.committed).toBe(3);
    expect(l.never_committed).toBe(1);
    expect(l.nodes).toEqual([
      { node: 'pg1', diverged_at: '0/5000060', records: 40, committed: 3, never_committed: 1, detail: 'changed: keep the ledger of pg1' },
    ]);
    expect(describeDrillLedger(l)).toBe('pg1 diverged at 0/5000060: 40 WAL records past it, 3 committed transactions discarded by the rejoin, 1 never committed');
  });

  it('is undefined without a ledger step (failback failed before it)', () => {
    expect(ledgerOfFailback(undefined)).toBeUndefined();
    expect(ledgerOfFailback({ results: [result('failback-guard', 'pg1')] } as unknown as RunReport)).toBeUndefined();
  });
});
