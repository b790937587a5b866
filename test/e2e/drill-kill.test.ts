/**
 * `drill --fault kill --workload pgbench` on asynchronous replication, on a lab of its own
 * (testLab('drill-kill', 23)): kill -9 of the primary's postmaster under pgbench (at a modest
 * rate: CI runs three e2e files on two cores); pgbench's acknowledged count and pgbench_history on
 * the final primary are reported with the failback's divergence ledger, and no budget is judged
 * unless asked (async promises nothing).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DRILL_TIMEOUT, useDrillLab, expectCompletedDrill, expectWorkloadCounted, runDrill, type DrillLab } from './support-drill.js';

const BASE = 'drill-kill';
const K = 23;
let lab: DrillLab;

describe('drill --fault kill --workload pgbench (asynchronous replication)', () => {
  useDrillLab(BASE, K, (l) => {
    lab = l;
  });

  it('completes; pgbench, pgbench_history and the divergence ledger reported, no budget unless asked', async () => {
    const r = await runDrill(lab, ['--fault', 'kill', '--workload', 'pgbench:4@60']);
    await expectCompletedDrill(lab, 'kill', r);
    const { run, dir, report } = r;
    expect(report.fence?.verdict).toMatch(/down-ssh-pgctl|refused-port/);
    const w = report.workload!;
    expect(w.rate).toBe(60);
    expectWorkloadCounted(w);
    // Asynchronous: what is missing is reported, not judged.
    expect(w.lost).toBe(Math.max(0, w.committed - w.history_rows!));
    expect(report.replication_mode!.promises_no_loss).toBe(false);
    expect(report.budgets[0]).toMatchObject({ max: null, ok: true });
    expect(report.budgets[0]!.detail).toContain(`pgbench ${w.lost}`);
    // The ledger: pg1 left pg2's history at the promotion; every acknowledged write that is missing
    // (probe or pgbench) was a transaction committed on pg1 past that point.
    const g = report.ledger!;
    expect(g.nodes.map((n) => n.node)).toContain('pg1');
    const pg1 = g.nodes.find((n) => n.node === 'pg1')!;
    expect(pg1.diverged_at).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(g.committed).toBe(pg1.committed);
    expect(g.committed).toBeGreaterThanOrEqual(report.rpo_lost_writes + w.lost!);
    expect(report.budgets[0]!.detail).toContain(`ledger: pg1 diverged at ${pg1.diverged_at}: ${pg1.records} WAL records past it, ${pg1.committed} committed`);
    const md = readFileSync(join(dir, 'drill.md'), 'utf8');
    expect(md).toContain(`**${w.committed} acknowledged**`);
    expect(md).toContain(`**${w.history_rows} rows**`);
    expect(md).toContain(`**${g.committed} committed transactions** past the divergence`);
    expect(md).toMatch(new RegExp(`\\| pg1 \\| ${pg1.diverged_at!.replace('/', '\\/')} \\| ${pg1.records} \\| ${pg1.committed} \\|`));
    expect(readFileSync(join(dir, 'drill-timeline.svg'), 'utf8')).toContain('data-rate="workload"');
    expect(run.stdout).toMatch(/budget ok: lost writes \(kill\)/);
    expect(run.stdout).toContain(`divergence ledger: ${g.committed} committed transactions discarded by the rejoin`);
  }, DRILL_TIMEOUT);
});
