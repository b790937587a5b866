/**
 * The failover drill end to end, on a lab of its own (it breaks its cluster on purpose): every
 * fault kind, the report files, the measures, --compare, and a sabotaged failback that must fail
 * clearly and leave exactly one writable node.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLValidator } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labDown, labPaths, labUp, readState } from '../../src/lab/index.js';
import type { DrillReport } from '../../src/drill/types.js';
import { inHost, psqlInHost, testLab, type LabHostInfo } from '../support/lab.js';

const { name: LAB, subnet: SUBNET } = testLab('drill', 9);
const PASSWORD = 'drill-repl-pw-8812';
let inventory: string;

interface Cli {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}): Promise<Cli> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/runbook.js', ...args], { env: { ...process.env, PGREPL_PW: PASSWORD, ...env }, maxBuffer: 64 << 20, timeout: 600_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const secretArgs = ['--secret', 'replication_password=env:PGREPL_PW'];

async function drill(fault: string, extra: string[] = [], env: Record<string, string> = {}): Promise<{ run: Cli; dir: string; report: DrillReport }> {
  const dir = mkdtempSync(join(tmpdir(), `drill-${fault}-`));
  const run = await cli(['drill', '-i', inventory, '--fault', fault, '--yes', '--report-dir', dir, ...secretArgs, ...extra], env);
  const report = JSON.parse(readFileSync(join(dir, 'drill.json'), 'utf8')) as DrillReport;
  return { run, dir, report };
}

async function writableNodes(): Promise<string[]> {
  const out: string[] = [];
  for (const host of ['pg1', 'pg2']) {
    const r = await psqlInHost(drillLabHost(host), 'SELECT pg_is_in_recovery()');
    if (r.code === 0 && r.stdout.trim() === 'f') out.push(host);
  }
  return out;
}

/** A host of the drill's own lab, for checks through nsenter (independent of SSH). */
function drillLabHost(host: string): LabHostInfo {
  const state = readState(LAB)!;
  const spec = state.spec.hosts.find((h) => h.name === host)!;
  return { ...spec, lab: LAB, pid: state.hosts[host]!.init.pid };
}

function expectReportFiles(dir: string, report: DrillReport): void {
  const svg = readFileSync(join(dir, 'drill-timeline.svg'), 'utf8');
  expect(XMLValidator.validate(svg)).toBe(true);
  for (const p of report.phases) expect(svg).toContain(`data-phase="${p.name}"`);
  expect(XMLValidator.validate(readFileSync(join(dir, 'drill.junit.xml'), 'utf8'))).toBe(true);
  expect(readFileSync(join(dir, 'drill.md'), 'utf8')).toContain('# Failover drill');
  expect(readFileSync(join(dir, 'drill.json'), 'utf8')).not.toContain(PASSWORD);
}

beforeAll(async () => {
  await labUp({ name: LAB, subnet: SUBNET });
  inventory = labPaths(LAB).inventory;
  const setup = await cli(['run', 'setup-warm-standby', '-i', inventory, '--yes', ...secretArgs]);
  expect(setup.code, setup.stdout + setup.stderr).toBe(0);
  const vip = await cli(['run', 'setup-vip', '-i', inventory, '--yes']);
  expect(vip.code, vip.stdout + vip.stderr).toBe(0);
}, 300_000);

afterAll(async () => {
  if (process.env.RUNBOOK_LAB_KEEP !== '1') await labDown({ name: LAB });
}, 120_000);

describe('runbook drill', () => {
  let stopReportPath = '';

  it('--dry-run shows the plan and touches nothing', async () => {
    const before = await writableNodes();
    const r = await cli(['drill', '-i', inventory, '--dry-run', ...secretArgs]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('fault: clean stop of PostgreSQL on pg1');
    expect(r.stdout).toContain('nothing was touched');
    expect(await writableNodes()).toEqual(before);
  });

  it('without --yes and without a TTY it refuses before touching anything', async () => {
    const r = await cli(['drill', '-i', inventory, '--fault', 'kill', ...secretArgs]);
    expect(r.code).toBe(6);
    expect(r.stderr).toContain('--yes');
    expect(await writableNodes()).toEqual(['pg1']);
  });

  for (const fault of ['stop', 'kill', 'partition'] as const) {
    it(`fault ${fault}: completes, measures RTO and RPO, restores the topology`, async () => {
      const { run, dir, report } = await drill(fault);
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(report.ok).toBe(true);
      expectReportFiles(dir, report);
      expect(report.rto_ms).not.toBeNull();
      if (fault !== 'partition') expect(report.rto_ms!).toBeLessThan(10_000);
      if (fault === 'stop') expect(report.rpo_lost_writes).toBe(0);
      expect(report.switchover_lost_writes).toBe(0);
      expect(report.switchover_outage_ms).not.toBeNull();
      expect(report.primary_after_failover).toBe('pg2');
      expect(report.primary_final).toBe('pg1');
      expect(report.exit_checks.length).toBeGreaterThanOrEqual(4);
      expect(report.exit_checks.every((c) => c.ok)).toBe(true);
      expect(report.probe_failed).toBeGreaterThan(0); // the fault was felt
      expect(await writableNodes()).toEqual(['pg1']);
      if (fault === 'stop') stopReportPath = join(dir, 'drill.json');
    });
  }

  it('--compare lists the differences with an earlier drill', async () => {
    expect(stopReportPath).not.toBe('');
    const { run, report } = await drill('stop', ['--compare', stopReportPath]);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const comparison = (report as DrillReport & { comparison: Array<{ measure: string }> }).comparison;
    expect(comparison.map((d) => d.measure)).toEqual(expect.arrayContaining(['rto_ms', 'switchover_outage_ms', 'rpo_lost_writes']));
  });

  it('a sabotaged failback fails clearly and leaves exactly one writable node', async () => {
    // Sabotage: the old primary gets a wrong replication password, so it cannot rejoin after the
    // failover (neither pg_rewind nor the fallback clone can connect to the new primary).
    const pg1 = drillLabHost('pg1');
    const pgpass = '~postgres/.pgpass';
    await inHost(pg1, `cp -p ${pgpass} /root/pgpass.saved && sed -i 's/:[^:]*$/:not-the-password/' ${pgpass}`);
    try {
      const { run, report } = await drill('stop');
      expect(run.code, run.stdout).toBe(10);
      expect(report.ok).toBe(false);
      expect(report.failure).toMatch(/failback/);
      expect(run.stdout).toContain('drill FAILED');
      expect(await writableNodes()).toEqual(['pg2']);
    } finally {
      await inHost(pg1, `cp -p /root/pgpass.saved ${pgpass}`);
    }

    // Put the lab back for whoever comes next: a real failback with the right password.
    const back = await cli(['run', 'failback', '-i', inventory, '--yes', ...secretArgs]);
    expect(back.code, back.stdout + back.stderr).toBe(0);
    expect(await writableNodes()).toEqual(['pg1']);
  });
});
