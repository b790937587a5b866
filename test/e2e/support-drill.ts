/**
 * What the drill e2e files share (drill.test.ts, drill-partition.test.ts, drill3.test.ts, each on a
 * lab of its own): a lab whose inventory has no `lab_name` (an ordinary cluster as far as the
 * drill knows; the lab remains only as the inventory's fence_command), a streaming cluster with a
 * VIP set up once per file, the CLI, and reads inside hosts through nsenter (independent of SSH).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLValidator } from 'fast-xml-parser';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, expect } from 'vitest';
import { labDown, labPaths, labUp, readState } from '../../src/lab/index.js';
import type { DrillReport } from '../../src/drill/types.js';
import type { WorkloadResult } from '../../src/drill/workload.js';
import { inHost, psqlInHost, testLab, type LabHostInfo } from '../support/lab.js';

/** A drill is several runbooks on a loaded 2-core machine. */
export const DRILL_TIMEOUT = 900_000;
export const PASSWORD = 'drill-repl-pw-8812';
export const secretArgs = ['--secret', 'replication_password=env:PGREPL_PW'];

export interface Cli {
  code: number;
  stdout: string;
  stderr: string;
}

export interface DrillLab {
  name: string;
  inventory: string;
  nodes: string[];
}

export function cli(args: string[], env: Record<string, string> = {}): Promise<Cli> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/runbook.js', ...args], { env: { ...process.env, PGREPL_PW: PASSWORD, ...env }, maxBuffer: 64 << 20, timeout: DRILL_TIMEOUT }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/**
 * The lab up with a streaming cluster and its VIP; its inventory without lab_name. A lab kept
 * from an earlier run (RUNBOOK_LAB_KEEP=1) is reused: the set-up runbooks converge it.
 */
export async function drillLabUp(base: string, k: number, opts: { hosts?: string; setupArgs?: string[] } = {}): Promise<DrillLab> {
  const { name, subnet } = testLab(base, k);
  await labUp({ name, subnet, ...(opts.hosts ? { hosts: opts.hosts } : {}) });
  const doc = parse(readFileSync(labPaths(name).inventory, 'utf8')) as { all: { vars: Record<string, unknown> } };
  delete doc.all.vars.lab_name;
  const inventory = join(mkdtempSync(join(tmpdir(), `${base}-inv-`)), 'inventory.yml');
  writeFileSync(inventory, stringify(doc));
  expect(readFileSync(inventory, 'utf8')).not.toContain('lab_name');
  const setup = await cli(['run', 'setup-warm-standby', '-i', inventory, '--yes', ...(opts.setupArgs ?? []), ...secretArgs]);
  expect(setup.code, setup.stdout + setup.stderr).toBe(0);
  const vip = await cli(['run', 'setup-vip', '-i', inventory, '--yes']);
  expect(vip.code, vip.stdout + vip.stderr).toBe(0);
  const nodes = readState(name)!.spec.hosts.filter((h) => h.role === 'db').map((h) => h.name);
  return { name, inventory, nodes };
}

/**
 * The file's drill lab, registered in the calling describe: up and converged before its tests,
 * down after them (a skipped describe brings no lab up). `use` receives the lab once it is up (and
 * may check it).
 */
export function useDrillLab(base: string, k: number, use: (lab: DrillLab) => void | Promise<void>, opts: { hosts?: string; setupArgs?: string[] } = {}): void {
  let lab: DrillLab | undefined;
  beforeAll(async () => {
    lab = await drillLabUp(base, k, opts);
    await use(lab);
  }, 600_000);
  afterAll(async () => drillLabDown(lab, base, k), 120_000);
}

/** A 3-node lab (pg1, pg2, pg3) with synchronous replication `ANY 1`, for the drill3 files. */
export function useSync3DrillLab(base: string, k: number, use: (lab: DrillLab) => void): void {
  useDrillLab(
    base,
    k,
    async (l) => {
      use(l);
      expect((await psqlInHost(labHost(l, 'pg1'), 'SHOW synchronous_standby_names')).stdout).toMatch(/ANY 1/);
    },
    { hosts: 'pg1=db,pg2=db,pg3=db', setupArgs: ['-e', 'synchronous=quorum'] },
  );
}

export async function drillLabDown(l: DrillLab | undefined, base: string, k: number): Promise<void> {
  if (process.env.RUNBOOK_LAB_KEEP !== '1') await labDown({ name: l?.name ?? testLab(base, k).name });
}

/** A host of the lab, for checks through nsenter. */
export function labHost(l: DrillLab, host: string): LabHostInfo {
  const state = readState(l.name)!;
  return { ...state.spec.hosts.find((h) => h.name === host)!, lab: l.name, pid: state.hosts[host]!.init.pid };
}

export async function runDrill(l: DrillLab, args: string[], env: Record<string, string> = {}): Promise<{ run: Cli; dir: string; report: DrillReport }> {
  const dir = mkdtempSync(join(tmpdir(), 'drill-'));
  const run = await cli(['drill', '-i', l.inventory, '--yes', '--report-dir', dir, ...secretArgs, ...args], env);
  writeFileSync(join(dir, 'stdout.txt'), run.stdout + run.stderr);
  const report = JSON.parse(readFileSync(join(dir, 'drill.json'), 'utf8')) as DrillReport;
  return { run, dir, report };
}

export async function writableNodes(l: DrillLab): Promise<string[]> {
  const out: string[] = [];
  for (const h of l.nodes) if ((await psqlInHost(labHost(l, h), 'SELECT pg_is_in_recovery()')).stdout.trim() === 'f') out.push(h);
  return out;
}

export async function blackholes(l: DrillLab, host: string): Promise<string> {
  return (await inHost(labHost(l, host), 'ip route show type blackhole')).stdout.trim();
}

export function expectReportFiles(dir: string, report: DrillReport): void {
  const svg = readFileSync(join(dir, 'drill-timeline.svg'), 'utf8');
  expect(XMLValidator.validate(svg)).toBe(true);
  for (const p of report.phases) expect(svg).toContain(`data-phase="${p.name}"`);
  expect(XMLValidator.validate(readFileSync(join(dir, 'drill.junit.xml'), 'utf8'))).toBe(true);
  expect(readFileSync(join(dir, 'drill.md'), 'utf8')).toContain('# Failover drill');
  expect(readFileSync(join(dir, 'drill.json'), 'utf8')).not.toContain(PASSWORD);
}

/**
 * What every completed fault drill must show: exit 0, the report files, RTO measured inside the
 * drill's own window (from the fault to the first write after it), the switchover lossless, the
 * original topology back, the fault felt by the probe, a budget per fault and for the switchover,
 * the promote and switchover marked, and no phase silent for long (the heartbeat).
 */
export async function expectCompletedDrill(l: DrillLab, fault: string, r: { run: Cli; dir: string; report: DrillReport }): Promise<void> {
  const { run, dir, report } = r;
  expect(run.code, run.stdout + run.stderr).toBe(0);
  expect(report.ok).toBe(true);
  expectReportFiles(dir, report);
  const recovery = report.phases.find((p) => p.name === 'recovery')!;
  expect(report.rto_ms).not.toBeNull();
  expect(report.rto_ms!).toBeGreaterThan(0);
  expect(report.rto_ms!).toBeLessThanOrEqual(recovery.endedAt - report.fault_at);
  expect(report.switchover_lost_writes).toBe(0);
  expect(report.switchover_outage_ms).not.toBeNull();
  expect(report.primary_after_failover).not.toBe('pg1');
  expect(report.primary_final).toBe('pg1');
  expect(report.exit_checks.length).toBeGreaterThanOrEqual(4);
  expect(report.exit_checks.every((c) => c.ok)).toBe(true);
  expect(report.probe_failed).toBeGreaterThan(0); // the fault was felt
  expect(await writableNodes(l)).toEqual(['pg1']);
  expect(report.budgets.map((b) => b.name)).toEqual([`lost writes (${fault})`, 'lost writes (planned switchover)']);
  expect(report.budgets[1]!.max).toBe(0);
  expect(readFileSync(join(dir, 'drill.junit.xml'), 'utf8')).toContain('loss budget lost writes (planned switchover)');
  expect(report.markers.map((m) => m.name)).toEqual(expect.arrayContaining(['promote', 'switchover']));
  expect(report.write_gaps.length).toBeGreaterThan(0);
  // A phase never waits without a line for long: the heartbeat says something every 5 s (the
  // bound leaves room for a loaded machine's late timers).
  // Only the drill's own stamped lines count: Date.parse of an arbitrary line's first 24
  // characters is lenient and turned a runbook's line into a date thousands of years away.
  const lines = run.stdout.split('\n').filter((line) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /.test(line));
  const stamps = lines.map((line) => Date.parse(line.slice(0, 24)));
  expect(stamps.length).toBeGreaterThan(10);
  const gaps = stamps.slice(1).map((t, i) => t - stamps[i]!);
  const silent = Math.max(...gaps);
  const at = gaps.indexOf(silent);
  expect(silent, `silent for ${silent} ms between:\n${lines[at]}\n${lines[at + 1]}`).toBeLessThan(9000);
}

/**
 * What every drill with a pgbench workload must show, whatever the replication mode: enough
 * acknowledged transactions, the fault felt by pgbench (a round ended with aborted clients or could
 * not connect), the per-transaction log agreeing with every summary pgbench printed, and
 * pgbench_history read on the final primary.
 */
export function expectWorkloadCounted(w: WorkloadResult): void {
  expect(w.committed).toBeGreaterThan(100);
  expect(w.round_log!.some((r) => r.exit !== 0), JSON.stringify(w.round_log)).toBe(true);
  expect(w.aborted_clients + w.refused_rounds).toBeGreaterThan(0);
  for (const r of w.round_log!) if (r.summary !== null) expect(r.acknowledged, JSON.stringify(r)).toBe(r.summary);
  expect(w.per_second.reduce((s, [, n]) => s + n, 0)).toBe(w.committed);
  expect(w.per_second.length).toBeGreaterThan(5);
  expect(w.history_rows).toBeDefined();
}
