/**
 * The failover drill end to end, on a lab of its own (testLab('drill', 9); it breaks its cluster
 * on purpose): the plan, the refusal without --yes, a clean stop with its report files and
 * measures, and a sabotaged failback (run with --compare against the first drill's report) that must fail clearly and leave
 * exactly one writable node. The drill gets the lab's inventory without `lab_name`: an ordinary
 * cluster as far as it knows. The other faults have files and labs of their own so they run side
 * by side: drill-kill (kill under pgbench, async), drill-partition, drill3 (lag, synchronous).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Difference } from '../../src/drill/compare.js';
import type { DrillReport } from '../../src/drill/types.js';
import { inHost } from '../support/lab.js';
import { DRILL_TIMEOUT, cli, useDrillLab, expectCompletedDrill, labHost, runDrill, secretArgs, writableNodes, type DrillLab } from './support-drill.js';

const BASE = 'drill';
const K = 9;
let lab: DrillLab;


describe('runbook drill', () => {
  useDrillLab(BASE, K, (l) => {
    lab = l;
  });

  let stopReportPath = '';

  it('--dry-run shows the plan and touches nothing', async () => {
    const before = await writableNodes(lab);
    const r = await cli(['drill', '-i', lab.inventory, '--dry-run', ...secretArgs]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('fault: clean stop of PostgreSQL on pg1');
    expect(r.stdout).toContain('nothing was touched');
    expect(await writableNodes(lab)).toEqual(before);
  }, DRILL_TIMEOUT);

  it('without --yes and without a TTY it refuses before touching anything', async () => {
    const r = await cli(['drill', '-i', lab.inventory, '--fault', 'kill', ...secretArgs]);
    expect(r.code).toBe(6);
    expect(r.stderr).toContain('--yes');
    expect(await writableNodes(lab)).toEqual(['pg1']);
  }, DRILL_TIMEOUT);

  it('a secret its failover could not read after the fault: exit 2 before the fault, the primary untouched', async () => {
    const r = await cli(['drill', '-i', lab.inventory, '--fault', 'kill', '--yes', '--secret', 'replication_password=env:RUNBOOK_E2E_UNSET_VAR']);
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(/runbook failover would refuse its params after the fault, so nothing was touched: .*RUNBOOK_E2E_UNSET_VAR is not set/s);
    expect(r.stdout).not.toMatch(/▶ fault/);
    expect(await writableNodes(lab)).toEqual(['pg1']);
  }, DRILL_TIMEOUT);

  it('fault stop: completes, measures RTO and RPO, restores the topology', async () => {
    const r = await runDrill(lab, ['--fault', 'stop']);
    await expectCompletedDrill(lab, 'stop', r);
    expect(r.report.rpo_lost_writes).toBe(0);
    expect(r.report.budgets[0]!.max).toBe(0);
    expect(r.report.primary_after_failover).toBe('pg2');
    expect(r.report.fence?.verdict).toMatch(/down-ssh-pgctl|refused-port/);
    stopReportPath = `${r.dir}/drill.json`;
  }, DRILL_TIMEOUT);

  // The second drill is also the --compare case: comparing it with the saved report of the first
  // needs no third drill, and a failed failback must show up as a regression.
  it('a sabotaged failback fails clearly, leaves exactly one writable node, and --compare flags it against the first drill', async () => {
    // Sabotage: the old primary gets a wrong replication password, so it cannot rejoin after the
    // failover (neither pg_rewind nor the fallback clone can connect to the new primary).
    const pg1 = labHost(lab, 'pg1');
    const pgpass = '~postgres/.pgpass';
    await inHost(pg1, `cp -p ${pgpass} /root/pgpass.saved && sed -i 's/:[^:]*$/:not-the-password/' ${pgpass}`);
    try {
      expect(stopReportPath).not.toBe('');
      const previous = JSON.parse(readFileSync(stopReportPath, 'utf8')) as DrillReport;
      const { run, dir, report } = await runDrill(lab, ['--fault', 'stop', '--compare', stopReportPath]);
      expect(run.code, run.stdout).toBe(10);
      expect(report.ok).toBe(false);
      expect(report.failure).toMatch(/failback/);
      expect(run.stdout).toContain('drill FAILED');
      expect(await writableNodes(lab)).toEqual(['pg2']);
      // --compare: every measure of both drills, side by side; the switchover that never happened
      // (null now, measured before) is a regression.
      const comparison = (report as DrillReport & { comparison: Difference[] }).comparison;
      expect(comparison.map((d) => d.measure)).toEqual(expect.arrayContaining(['rto_ms', 'switchover_outage_ms', 'rpo_lost_writes', 'phase failover ms']));
      const outage = comparison.find((d) => d.measure === 'switchover_outage_ms')!;
      expect(outage).toEqual({ measure: 'switchover_outage_ms', previous: previous.switchover_outage_ms, current: null, regression: true });
      expect(comparison.find((d) => d.measure === 'rto_ms')!.previous).toBe(previous.rto_ms);
      expect(run.stdout).toContain(`regression: switchover_outage_ms ${previous.switchover_outage_ms} → null`);
      expect(readFileSync(join(dir, 'drill.md'), 'utf8')).toMatch(/\| switchover_outage_ms \| \d+ \| n\/a \| REGRESSION \|/);
    } finally {
      await inHost(pg1, `cp -p /root/pgpass.saved ${pgpass}`);
    }
    // Put the lab back for whoever comes next: a real failback with the right password.
    const back = await cli(['run', 'failback', '-i', lab.inventory, '--yes', ...secretArgs]);
    expect(back.code, back.stdout + back.stderr).toBe(0);
    expect(await writableNodes(lab)).toEqual(['pg1']);
  }, DRILL_TIMEOUT);
});
