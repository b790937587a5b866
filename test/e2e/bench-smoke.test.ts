/**
 * `npm run bench` at its smallest (--quick: 2 hosts, one repetition, one stop drill), so the
 * harness, the fixture, the playbooks, both floors and the drill rows cannot rot. Asserts the shape
 * of the JSON and that every figure was measured; never a timing threshold (that is what the bench
 * reports, not what CI gates).
 *
 * The bench brings up its own labs ("bench", 10.231.30.0/24, and "bench-fan", 10.231.31.0/24;
 * -sN and 10.231.(32N+30/31) under RUNBOOK_TEST_SLOT=N) and takes them down. RUNBOOK_LAB_REUSE is
 * not passed on: with it the bench would converge setup-warm-standby on the shared default lab,
 * under the other e2e tests. BENCH_FAULT=kill-first-ansible kills its first ansible-playbook run:
 * the run must be retried, its output kept, and the figure still measured.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listNetworkObjects } from '../../src/lab/network.js';
import { labTag } from '../../src/lab/spec.js';
import { BENCH_LAB, FAN_LAB } from '../../bench/lib/labs.mjs';

const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function bench(args: string[], extraEnv: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const { RUNBOOK_LAB_REUSE: _reuse, ...env } = process.env;
    execFile(process.execPath, ['bench/run.mjs', ...args], { env: { ...env, ...extraEnv }, encoding: 'utf8', timeout: 480_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

const positive = expect.any(Number);

describe('npm run bench --quick', () => {
  it('measures runbook, ansible-playbook, both floors and a drill, retries a killed peer, and writes the JSON', { timeout: 500_000 }, async () => {
    const out = join(dir, 'latest.json');
    const r = await bench(['--quick', '--out', out], { BENCH_FAULT: 'kill-first-ansible' });
    expect(r.code, r.stderr.slice(-3000)).toBe(0);

    const json = JSON.parse(readFileSync(out, 'utf8'));
    expect(json.reps).toBe(1);
    const noop = json.noop_rerun;
    expect(noop).toMatchObject({ runbook_s: positive, ansible_s: positive, floor_s: positive, one_exec_floor_s: positive, steps: positive });
    for (const key of ['runbook_s', 'ansible_s', 'floor_s', 'one_exec_floor_s', 'steps', 'per_step_overhead_ms', 'startup_gap_ms'] as const) expect(Number.isFinite(noop[key])).toBe(true);
    for (const key of ['runbook_s', 'ansible_s', 'floor_s', 'one_exec_floor_s', 'steps'] as const) expect(noop[key]).toBeGreaterThan(0);
    // the one-exec floor: one exec per host, every fact of the recording but the lock's
    expect(noop.one_exec_floor_detail).toMatchObject({ mode: 'one-exec', hosts: 2, commands: 2 });
    expect(noop.one_exec_floor_detail.facts).toBeGreaterThan(noop.round_trips);

    // the killed ansible-playbook run was retried (the figure above) and its output kept
    expect(noop.failed.ansible.reason).toBe('1 failed attempt(s): 1 passed on the retry, 0 failed twice (no sample): ansible-playbook: exit SIGTERM');
    expect(noop.failed.ansible.logs).toHaveLength(1);
    expect(readFileSync(noop.failed.ansible.logs[0], 'utf8')).toMatch(/^\$ ansible-playbook .*\nexit SIGTERM after/);
    expect(r.stdout).toMatch(/2 hosts, ansible: 1 failed attempt\(s\): 1 passed on the retry, 0 failed twice \(no sample\): ansible-playbook: exit SIGTERM \(output: \S*noop-ansible-1\.log\)/);

    expect(json.fanout).toHaveLength(1);
    const [row] = json.fanout;
    expect(row).toMatchObject({ hosts: 2, steps: 10 });
    for (const key of ['runbook_s', 'ansible_s', 'floor_s', 'one_exec_floor_s', 'rss_mb', 'ansible_rss_mb'] as const) expect(row[key]).toBeGreaterThan(0);
    expect(row.failed).toBeUndefined();

    // the playbooks still name exactly the steps the runbooks ran
    for (const m of [noop.mapping, row.mapping]) expect(m).toEqual({ missing_in_playbook: [], not_run_by_runbook: [] });

    // the drill row comes from runbook's own drill report
    expect(json.drill.runs).toHaveLength(1);
    const [drill] = json.drill.runs;
    expect(drill).toMatchObject({ fault: 'stop', exit: 0, ok: true, rto_ms: positive, switchover_outage_ms: positive });
    const report = JSON.parse(readFileSync(drill.report, 'utf8'));
    expect([report.rto_ms, report.switchover_outage_ms]).toEqual([drill.rto_ms, drill.switchover_outage_ms]);
    expect(json.drill.switchover_outage.median_ms).toBe(drill.switchover_outage_ms);

    // pyinfra: a figure, or why not — never a made-up one
    expect(typeof json.pyinfra.blocked).toBe('string');
    expect(json.machine.nproc).toBeGreaterThan(0);
    const goals = json.goals.map((g: { goal: string }) => g.goal);
    for (const g of ['no-op re-run ≤ 1.5× the one-exec floor', 'planned switchover write outage (through the VIP) < 1 s', 'RTO, clean stop of the primary (no goal)', '50 hosts × 10 checks ≥ 3× faster than pyinfra'])
      expect(goals).toContain(g);
    const pyGoal = json.goals.find((g: { goal: string }) => g.goal.includes('pyinfra'));
    expect(pyGoal.met === null ? pyGoal.value : 'measured').toMatch(/^(blocked: |measured)/);

    // the table is printed, and nothing of the bench labs is left behind
    expect(r.stdout).toMatch(/no-op setup-warm-standby\s+2\s+\d+/);
    expect(r.stdout).toMatch(/fan-out ten-checks\s+2\s+10/);
    expect(r.stdout).toMatch(/drill --fault stop: RTO \d+ ms, switchover outage \d+ ms, exit 0/);
    for (const lab of [BENCH_LAB, FAN_LAB]) expect(await listNetworkObjects({ tag: labTag(lab.name) })).toEqual({ netns: [], links: [] });
    // what the run keeps lies beside its --out file; the recordings (they may hold the secret) do not stay
    expect(drill.report.startsWith(dir)).toBe(true);
    expect(existsSync(join(dir, 'noop.report.json'))).toBe(true);
    expect(existsSync(join(dir, 'noop.wire.json'))).toBe(false);
  });
});
