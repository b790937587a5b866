/**
 * `npm run bench` at its smallest (--quick: 2 hosts, one repetition), so the harness, the
 * fixture, the playbooks and the floor cannot rot. Asserts the shape of the JSON and that every
 * figure was measured; never a timing threshold (that is what the bench reports, not what CI gates).
 *
 * The bench brings up its own lab ("bench", 10.231.30.0/24) and takes it down. RUNBOOK_LAB_REUSE is
 * not passed on: with it the bench would converge setup-warm-standby on the shared default lab,
 * under the other e2e tests.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function bench(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const { RUNBOOK_LAB_REUSE: _reuse, ...env } = process.env;
    execFile(process.execPath, ['bench/run.mjs', ...args], { env, encoding: 'utf8', timeout: 170_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

const positive = expect.any(Number);

describe('npm run bench --quick', () => {
  it('measures runbook, ansible-playbook and the floor and writes the JSON', { timeout: 180_000 }, async () => {
    const out = join(dir, 'latest.json');
    const r = await bench(['--quick', '--out', out]);
    expect(r.code, r.stderr.slice(-3000)).toBe(0);

    const json = JSON.parse(readFileSync(out, 'utf8'));
    expect(json.reps).toBe(1);
    expect(json.noop_rerun).toMatchObject({ runbook_s: positive, ansible_s: positive, floor_s: positive, steps: positive });
    for (const key of ['runbook_s', 'ansible_s', 'floor_s', 'steps', 'per_step_overhead_ms', 'startup_gap_ms'] as const) expect(Number.isFinite(json.noop_rerun[key])).toBe(true);
    for (const key of ['runbook_s', 'ansible_s', 'floor_s', 'steps'] as const) expect(json.noop_rerun[key]).toBeGreaterThan(0);

    expect(json.fanout).toHaveLength(1);
    const [row] = json.fanout;
    expect(row).toMatchObject({ hosts: 2, steps: 10 });
    for (const key of ['runbook_s', 'ansible_s', 'floor_s', 'rss_mb', 'ansible_rss_mb'] as const) expect(row[key]).toBeGreaterThan(0);

    // the playbooks still name exactly the steps the runbooks ran
    for (const m of [json.noop_rerun.mapping, row.mapping]) expect(m).toEqual({ missing_in_playbook: [], not_run_by_runbook: [] });
    expect(json.machine.nproc).toBeGreaterThan(0);
    expect(json.goals.map((g: { goal: string }) => g.goal)).toContain('no-op re-run ≤ 1.5× the floor');

    // the table is printed, and nothing of the bench lab is left behind
    expect(r.stdout).toMatch(/no-op setup-warm-standby\s+2\s+\d+/);
    expect(r.stdout).toMatch(/fan-out ten-checks\s+2\s+10/);
    const labs = await new Promise<string>((resolve) => execFile('ip', ['netns', 'list'], { encoding: 'utf8' }, (_e, s) => resolve(s)));
    expect(labs).not.toMatch(/\brb-bench-/);
  });
});
