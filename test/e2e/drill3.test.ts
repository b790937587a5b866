/**
 * The drill on a 3-node cluster (lab testLab('drill3', 8): pg1, pg2, pg3, synchronous replication
 * `ANY 1`): a lagging standby's promotion refused and the right one promoted. The kill under
 * pgbench on the same kind of cluster is drill3-kill.test.ts (a lab of its own: side by side).
 */
import { describe, expect, it } from 'vitest';
import { psqlInHost } from '../support/lab.js';
import { DRILL_TIMEOUT, useSync3DrillLab, labHost, runDrill, writableNodes, type DrillLab } from './support-drill.js';

const BASE = 'drill3';
const K = 8;
let lab: DrillLab;


describe('drill on three nodes', () => {
  useSync3DrillLab(BASE, K, (l) => {
    lab = l;
  });

  it('--fault lag: the lagging standby is refused, the right one promoted, the topology restored', async () => {
    const { run, report } = await runDrill(lab, ['--fault', 'lag']);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(report.lag!.standby).toBe('pg2');
    expect(report.lag!.lag_bytes).toBeGreaterThan(0);
    expect(report.lag!.refused).toMatch(/replay/);
    expect(report.lag!.promoted).toBe('pg3');
    expect(report.primary_after_failover).toBe('pg3');
    expect(report.phases.map((p) => p.name)).toEqual(['baseline', 'probe', 'fault', 'failover-refused', 'failover', 'recovery', 'failback', 'exit-checks']);
    expect(report.budgets[0]).toMatchObject({ max: 0, lost: 0, ok: true });
    expect(report.exit_checks.every((c) => c.ok)).toBe(true);
    expect(await writableNodes(lab)).toEqual(['pg1']);
    // Replay runs again on pg2.
    expect((await psqlInHost(labHost(lab, 'pg2'), 'SELECT pg_get_wal_replay_pause_state()')).stdout.trim()).toBe('not paused');
  }, DRILL_TIMEOUT);
});
