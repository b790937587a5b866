/**
 * `drill --fault kill --workload pgbench --max-lost-writes 0` on a 3-node cluster with synchronous
 * replication `ANY 1` (lab testLab('drill3-kill', 7): pg1, pg2, pg3): nothing acknowledged may be
 * lost. "Acknowledged" is a transaction whose END returned to pgbench (its per-transaction log); a
 * transaction whose connection died with its END in flight was not acknowledged, yet may have
 * committed: pgbench_history may hold more rows than acknowledged (at most one per such
 * transaction), never fewer.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DRILL_TIMEOUT, expectWorkloadCounted, useSync3DrillLab, runDrill, writableNodes, type DrillLab } from './support-drill.js';

const BASE = 'drill3-kill';
const K = 7;
let lab: DrillLab;

describe('drill --fault kill under synchronous replication', () => {
  useSync3DrillLab(BASE, K, (l) => {
    lab = l;
  });

  it('--workload pgbench --max-lost-writes 0: every acknowledged transaction is in pgbench_history', async () => {
    const { run, dir, report } = await runDrill(lab, ['--fault', 'kill', '--workload', 'pgbench:4@60', '--max-lost-writes', '0']);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(report.replication_mode!.promises_no_loss).toBe(true);
    const w = report.workload!;
    expectWorkloadCounted(w);
    expect(w.lost).toBe(0);
    expect(w.history_rows!).toBeGreaterThanOrEqual(w.committed);
    // More rows only from transactions in flight when their connection died.
    expect(w.history_rows! - w.committed, JSON.stringify(w.round_log)).toBeLessThanOrEqual(w.in_flight_at_abort);
    expect(w.unacknowledged_present).toBe(w.history_rows! - w.committed);
    expect(run.stdout).toContain(`pgbench: ${w.committed} acknowledged, pgbench_history ${w.history_rows} rows on the final primary: every acknowledged transaction is there`);
    expect(readFileSync(join(dir, 'drill.md'), 'utf8')).toContain(`**${w.committed} acknowledged**`);
    expect(report.rpo_lost_writes).toBe(0);
    expect(report.budgets[0]).toMatchObject({ max: 0, lost: 0, ok: true });
    expect(report.budgets[0]!.basis).toBe('--max-lost-writes 0');
    expect(readFileSync(join(dir, 'drill.junit.xml'), 'utf8')).toContain('loss budget lost writes (kill)');
    expect(await writableNodes(lab)).toEqual(['pg1']);
  }, DRILL_TIMEOUT);
});
