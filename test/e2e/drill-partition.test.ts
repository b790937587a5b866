/**
 * The partition drill on a lab of its own (testLab('drill-part', 22)), with `lab_name` removed from
 * the inventory: the primary is cut by rules installed over SSH (blackhole routes here: no nft or
 * iptables), the failover fences it through the inventory's fence_command, and the link comes
 * back by itself at the deadline — also when the drill is kill -9'd mid-partition.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inHost, psqlInHost } from '../support/lab.js';
import {
  DRILL_TIMEOUT, PASSWORD, blackholes, useDrillLab, expectCompletedDrill, labHost, runDrill, secretArgs, writableNodes, type DrillLab,
} from './support-drill.js';

const BASE = 'drill-part';
const K = 22;
let lab: DrillLab;

describe('drill --fault partition', () => {
  useDrillLab(BASE, K, (l) => {
    lab = l;
  });

  it('cuts pg1 over SSH, fences it through fence_command, the link comes back by itself, the topology is restored', async () => {
    // A deadline far beyond any failover on a loaded machine: the link must come back because the
    // failover fenced pg1 (its guard sees PostgreSQL stopped), not because time ran out.
    const r = await runDrill(lab, ['--fault', 'partition', '--fault-seconds', '300']);
    await expectCompletedDrill(lab, 'partition', r);
    const { run, report } = r;
    expect(report.partition!.tool).toBe('blackhole');
    expect(report.partition!.cut_verified).toContain('do not answer');
    expect(report.partition!.restored_verified).toContain('no rule of the cut left');
    expect(report.partition!.log!.restoredAt).toBeGreaterThan(report.partition!.log!.cutAt!);
    expect(report.partition!.log!.pgStoppedAt).toBeGreaterThan(report.partition!.log!.cutAt!);
    expect(report.partition!.log!.restoredAt).toBeLessThan(Date.parse(report.partition!.deadline));
    expect(report.partition!.restored_verified).toContain('before its deadline: PostgreSQL on pg1 had stopped (fenced)');
    expect(report.fence).toMatchObject({ verdict: 'fence-command' });
    expect(run.stdout).toContain('fence evidence for pg1: fence-command');
    // The SSH connect to the cut-off primary gave up at TCP (3 s), not after the 10 s handshake budget.
    expect(run.stdout).toContain('pg1: SSH unreachable (connect timeout (no TCP answer in 3 s))');
    expect(await blackholes(lab, 'pg1')).toBe('');
  }, DRILL_TIMEOUT);

  it('kill -9 of the drill while pg1 is cut off: the link comes back by itself at the deadline', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drill-kill9-'));
    const child = spawn(process.execPath, ['bin/runbook.js', 'drill', '-i', lab.inventory, '--fault', 'partition', '--fault-seconds', '30', '--yes', '--report-dir', dir, ...secretArgs], {
      env: { ...process.env, PGREPL_PW: PASSWORD },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const deadline = Date.now() + 300_000;
    while (!out.includes('cut holds') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 200));
    expect(out, out).toContain('cut holds');
    // The guard's line, not the plan's ("restores the link at the deadline").
    const restoreAt = Date.parse(/guard job \S+ restores the link at (\d{4}-\S+Z)/.exec(out)![1]!);
    expect(restoreAt).toBeGreaterThan(Date.now());
    // The controller dies: the drill and the runbook it may have started (its process group).
    process.kill(-child.pid!, 'SIGKILL');
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(undefined) : child.once('close', r)));
    expect(Date.now()).toBeLessThan(restoreAt);
    expect(await blackholes(lab, 'pg1')).not.toBe(''); // still cut: nobody is left to undo it but the guard
    while (Date.now() < restoreAt + 60_000 && (await blackholes(lab, 'pg1')) !== '') await new Promise((r) => setTimeout(r, 500));
    expect(await blackholes(lab, 'pg1')).toBe('');
    expect(Date.now()).toBeGreaterThanOrEqual(restoreAt);
    const job = await inHost(labHost(lab, 'pg1'), 'd=$(ls -td /var/lib/runbook/jobs/drill-partition-* | head -n 1); cat "$d/out" "$d/exit"');
    expect(job.stdout).toMatch(/^cut \d+/m);
    expect(job.stdout).toMatch(/^restored \d+/m);
    expect(job.stdout).not.toMatch(/^pg-stopped/m); // PostgreSQL ran on: the deadline brought the link back
    // The topology: the drill died before its failover; pg1 is still the primary, pg2 follows it again.
    expect(await writableNodes(lab)).toEqual(['pg1']);
    let streaming = '';
    for (const until = Date.now() + 120_000; streaming !== 'streaming' && Date.now() < until; ) {
      streaming = (await psqlInHost(labHost(lab, 'pg1'), "SELECT state FROM pg_stat_replication WHERE application_name = 'pg2'")).stdout.trim();
      if (streaming !== 'streaming') await new Promise((r) => setTimeout(r, 1000));
    }
    expect(streaming).toBe('streaming');
  }, DRILL_TIMEOUT);
});
