import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { lossBudgets } from '../../../src/drill/budget.js';
import { compareDrills } from '../../../src/drill/compare.js';
import { writeDrillReport } from '../../../src/drill/report-files.js';
import type { DrillReport } from '../../../src/drill/types.js';
import { secret } from '../../../src/shell/secret.js';

function sampleReport(overrides: Partial<DrillReport> = {}): DrillReport {
  const t = 1_700_000_000_000;
  return {
    version: 2,
    fault: 'kill',
    started_at: new Date(t).toISOString(),
    finished_at: new Date(t + 9000).toISOString(),
    ok: false,
    failure: 'failback: <rewind> & "restore" failed',
    rto_ms: 2400,
    switchover_outage_ms: 300,
    rpo_lost_writes: 0,
    lost_ids: [],
    switchover_lost_writes: 0,
    probe_writes: 3,
    probe_acknowledged: 2,
    probe_failed: 1,
    primary_before: 'pg1',
    service_address: '10.231.0.100',
    lag_before_fault_bytes: 0,
    fault_at: t + 1000,
    phases: [
      { name: 'baseline', startedAt: t, endedAt: t + 500, ok: true },
      { name: 'failover', startedAt: t + 1000, endedAt: t + 4000, ok: true },
      { name: 'failback', startedAt: t + 4000, endedAt: t + 9000, ok: false, detail: 'pg_rewind <failed>' },
    ],
    exit_checks: [{ name: 'one writable node', ok: true, detail: 'pg1' }],
    step_timings: { 'failover/promote@pg2': 410 },
    samples: [
      { id: 1, sentAt: t + 100, ackAt: t + 105 },
      { id: 2, sentAt: t + 1100, error: 'connection refused' },
      { id: 3, sentAt: t + 3400, ackAt: t + 3405 },
    ],
    markers: [{ name: 'promote', at: t + 3000, detail: 'pg2 writable' }],
    write_gaps: [{ from: t + 105, to: t + 3405 }],
    budgets: lossBudgets({ fault: 'kill', probeLostFault: 0, probeLostSwitchover: 0 }),
    ...overrides,
  };
}

describe('drill report files', () => {
  it('writes Markdown, JSON, JUnit and an SVG with the phases, all parseable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'drill-report-'));
    const paths = await writeDrillReport(dir, sampleReport());
    const json = JSON.parse(await readFile(paths.json, 'utf8'));
    expect(json).toMatchObject({ rto_ms: 2400, rpo_lost_writes: 0, switchover_outage_ms: 300 });
    expect(json.phases).toHaveLength(3);

    const svg = await readFile(paths.svg, 'utf8');
    expect(XMLValidator.validate(svg)).toBe(true);
    for (const phase of ['baseline', 'failover', 'failback']) expect(svg).toContain(`data-phase="${phase}"`);

    const junit = await readFile(paths.junit, 'utf8');
    expect(XMLValidator.validate(junit)).toBe(true);
    const parsed = new XMLParser({ ignoreAttributes: false }).parse(junit);
    // 3 phases, 1 exit check, 2 loss budgets (one testcase each)
    expect(parsed.testsuites['@_tests']).toBe('6');
    expect(parsed.testsuites['@_failures']).toBe('1');
    const names = parsed.testsuites.testsuite.testcase.map((c: { '@_name': string }) => c['@_name']);
    expect(names).toEqual(expect.arrayContaining(['loss budget lost writes (kill)', 'loss budget lost writes (planned switchover)']));

    const md = await readFile(paths.markdown, 'utf8');
    expect(md).toContain('FAILED');
    expect(md).toContain('| failback | 5000 ms | failed: pg_rewind <failed> |');
    expect(md).toContain('## Loss budgets');
    expect(md).toContain('none (reported only)');
  });

  it('masks secrets that reached the report', async () => {
    const pw = secret('drill-pass-9431', 'replication_password');
    const dir = await mkdtemp(join(tmpdir(), 'drill-report-'));
    const paths = await writeDrillReport(dir, sampleReport({ failure: `psql: password ${pw.reveal()} rejected` }));
    for (const p of Object.values(paths)) expect(await readFile(p, 'utf8')).not.toContain('drill-pass-9431');
  });
});

describe('compareDrills', () => {
  it('flags a slower RTO and lost writes, not noise', () => {
    const previous = sampleReport();
    const current = sampleReport({ rto_ms: 5000, switchover_outage_ms: 350, rpo_lost_writes: 2 });
    const diff = Object.fromEntries(compareDrills(previous, current).map((d) => [d.measure, d.regression]));
    expect(diff.rto_ms).toBe(true);
    expect(diff.switchover_outage_ms).toBe(false); // +50 ms is noise
    expect(diff.rpo_lost_writes).toBe(true);
    expect(diff['phase failover ms']).toBe(false);
  });
});
