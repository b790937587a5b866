/**
 * The engine end to end, over real SSH against the lab, through the compiled CLI with no TTY
 * (and through tmux for the interactive paths). Each test works in its own directory on the hosts
 * and runs the CLI from a temp dir outside the repo (journals, user runbooks).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inHost, labInventoryPath } from '../../support/lab.js';
import { ttySession, type KeyStep } from '../../support/tty.js';

const repo = resolve(import.meta.dirname, '../../..');
const bin = join(repo, 'bin/runbook.js');
const TOKEN = `tok-${Math.random().toString(36).slice(2)}-secret`;
const hosts = ['pg1', 'pg2'];
let inventory: string;
let work: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function start(args: string[], cwd = work): ChildProcess & { out: () => string; err: () => string; done: Promise<Run> } {
  const child = spawn(process.execPath, [bin, ...args], { cwd, env: { ...process.env, RB_TOKEN: TOKEN }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<Run>((res) => child.on('close', (code) => res({ code, stdout, stderr })));
  return Object.assign(child, { out: () => stdout, err: () => stderr, done });
}
const cli = (args: string[], cwd = work) => start(args, cwd).done;

const sampleArgs = (root: string, extra: string[] = []) => ['run', './sample.ts', '-i', inventory, '--limit', hosts.join(','), '-e', `root=${root}`, '--secret', 'token=env:RB_TOKEN', ...extra];

async function sh(host: string, script: string): Promise<string> {
  const r = await inHost(host, script);
  return r.stdout;
}

beforeAll(() => {
  inventory = process.env.RUNBOOK_LAB_INVENTORY || labInventoryPath('debian');
  work = mkdtempSync(join(tmpdir(), 'rb-engine-e2e-'));
  for (const f of readdirSync(join(repo, 'test/fixtures/runbooks'))) copyFileSync(join(repo, 'test/fixtures/runbooks', f), join(work, f));
});

afterAll(async () => {
  for (const h of hosts) await inHost(h, `for d in /srv/rb-e2e-*; do [ -f "$d/daemon.pid" ] && kill "$(cat "$d/daemon.pid")"; done 2>/dev/null; rm -rf /srv/rb-e2e-*`);
});

const uniqueRoot = (name: string) => `/srv/rb-e2e-${name}-${Math.random().toString(36).slice(2, 8)}`;

describe('sample runbook over SSH', () => {
  it('changes on the first run, is all ok on the second, and --check reports exactly a drifted step', async () => {
    const root = uniqueRoot('sample');
    const json = join(work, 'first.json');
    const junit = join(work, 'first.xml');
    const first = await cli(sampleArgs(root, ['--report', `json=${json}`, '--report', `junit=${junit}`]));
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/pg1 +ok=0 changed=6/);
    expect(await sh('pg1', `cat ${root}/greeting.txt; cat ${root}/starts.log | wc -l; kill -0 "$(cat ${root}/daemon.pid)" && echo running`)).toBe('hello\n2\nrunning\n');
    expect(await sh('pg1', `cat ${root}/app.conf`)).toBe(`# BEGIN runbook sample\ntoken = ${TOKEN}\nlisten = 8080\n# END runbook sample\n`);

    // Reports: JSON and JUnit agree with the recap; no secret anywhere.
    const report = JSON.parse(readFileSync(json, 'utf8'));
    const xml = new XMLParser({ ignoreAttributes: false }).parse(readFileSync(junit, 'utf8'));
    const suite = xml.testsuites.testsuite;
    expect(suite['@_name']).toBe('sample');
    expect(Number(suite['@_tests'])).toBe(report.results.length);
    expect(Number(suite['@_tests'])).toBe(report.recap.reduce((n: number, r: any) => n + r.ok + r.changed + r.skipped + r.failed, 0));
    expect(Number(suite['@_failures'])).toBe(0);
    expect(suite.testcase).toHaveLength(12);

    const second = await cli(sampleArgs(root));
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/pg1 +ok=5 changed=0/);
    expect(second.stdout).toMatch(/pg2 +ok=5 changed=0/);
    expect(second.stdout).not.toContain('$ ');
    expect(await sh('pg1', `wc -l < ${root}/starts.log`)).toBe('2\n');

    await inHost('pg2', `sed -i 's/listen = 8080/listen = 9999/' ${root}/app.conf`);
    const check = await cli(sampleArgs(root, ['--check', '--diff']));
    expect(check.code).toBe(7);
    const would = check.stdout.split('\n').filter((l) => l.includes('would change'));
    expect(would).toHaveLength(1);
    expect(would[0]).toMatch(/pg2: would change: update block sample/);
    expect(check.stdout).toMatch(/pg2 +ok=4 changed=0 would-change=1/);
    expect(await sh('pg2', `grep listen ${root}/app.conf`)).toBe('listen = 9999\n');

    for (const text of [first.stdout, first.stderr, second.stdout, check.stdout, check.stderr, readFileSync(json, 'utf8'), readFileSync(junit, 'utf8'), ...readdirSync(join(work, '.runbook/runs')).map((f) => readFileSync(join(work, '.runbook/runs', f), 'utf8'))])
      expect(text).not.toContain(TOKEN);
    // The block holds the token: compared on the host, never read back, so --diff says why it shows none.
    expect(check.stdout).toMatch(/\S+app\.conf: block sample holds a secret: compared on the host, never read back, so no diff is shown/);
  });

  it('plan shows the exact commands per host, marking later steps as depending on an earlier change', async () => {
    const root = uniqueRoot('plan');
    const r = await cli(['plan', './sample.ts', '-i', inventory, '--limit', 'pg1', '-e', `root=${root}`, '--secret', 'token=env:RB_TOKEN']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\[will-change\] dir: create directory/);
    expect(r.stdout).toMatch(/\$ mkdir -p -- \/srv\/rb-e2e-plan/);
    expect(r.stdout).toMatch(/\[depends\] greeting:/);
    expect(r.stdout).not.toContain(TOKEN);
    expect(await sh('pg1', `test -e ${root} && echo exists || echo absent`)).toBe('absent\n');
  });

  it('resumes a SIGKILLed run to the same end state as an uninterrupted run', async () => {
    const root = uniqueRoot('resume');
    const ref = uniqueRoot('ref');
    const p = start(sampleArgs(root, ['-e', 'slow=3']));
    await waitFor(() => p.out().includes('$ sleep 3'), 20_000);
    p.kill('SIGKILL');
    await p.done;
    expect(await sh('pg1', `test -e ${root}/daemon.pid && echo started || echo not-started`)).toBe('not-started\n');
    const resumed = await cli(sampleArgs(root, ['-e', 'slow=3', '--resume', 'last']));
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toContain('(resuming)');
    await cli(sampleArgs(ref, ['-e', 'slow=0']));
    const state = (dir: string) => `cd ${dir} && sha256sum greeting.txt app.conf && ls && kill -0 "$(cat daemon.pid)" && echo running`;
    for (const h of hosts) expect(await sh(h, state(root))).toBe(await sh(h, state(ref)));

    // A changed runbook cannot be resumed.
    const copy = join(work, 'sample-changed.ts');
    copyFileSync(join(work, 'sample.ts'), copy);
    appendFileSync(copy, '\n// changed\n');
    const runId = readdirSync(join(work, '.runbook/runs')).sort().pop()!.replace('.jsonl', '');
    const refused = await cli(['run', './sample-changed.ts', '-i', inventory, '--limit', 'pg1', '-e', `root=${root}`, '--secret', 'token=env:RB_TOKEN', '--resume', runId]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/changed/);
  });
});

describe('confirmations without a terminal', () => {
  it('refuses a destructive step before touching any host, naming the step and --yes; proceeds with --yes', async () => {
    const root = uniqueRoot('destr');
    await inHost('pg1', `mkdir -p ${root} && touch ${root}/scratch`);
    const args = ['run', './destructive.ts', '-i', inventory, '--limit', 'pg1', '-e', `root=${root}`];
    const refused = await cli(args);
    expect(refused.code).toBe(6);
    expect(refused.stderr).toMatch(/wipe-scratch/);
    expect(refused.stderr).toMatch(/--yes/);
    expect(await sh('pg1', `ls ${root}`)).toBe('scratch\n'); // the first (harmless) step did not run either
    const yes = await cli([...args, '--yes']);
    expect(yes.code).toBe(0);
    expect(await sh('pg1', `ls ${root}`)).toBe('marker\n');
    await inHost('pg1', `touch ${root}/scratch`);
    const approved = await cli([...args, '--approve', 'wipe-scratch']);
    expect(approved.code).toBe(0);
    expect(await sh('pg1', `ls ${root}`)).toBe('marker\n');
  });
});

describe('exit codes', () => {
  const outcome = (o: string, extra: string[] = []) => cli(['run', './outcomes.ts', '-i', inventory, '--limit', 'pg1', '-e', `outcome=${o}`, ...extra]);
  it('0 ok, 3 step failed, 4 verify failed, 8 blocked, 7 changes pending, 2 bad input', async () => {
    expect((await outcome('ok')).code).toBe(0);
    const failed = await outcome('fail', ['--report', `junit=${join(work, 'fail.xml')}`]);
    expect(failed.code).toBe(3);
    const xml = new XMLParser({ ignoreAttributes: false }).parse(readFileSync(join(work, 'fail.xml'), 'utf8'));
    const failure = xml.testsuites.testsuite.testcase.failure;
    expect(failure['#text']).toMatch(/command: echo broken >&2; exit 3/);
    expect(failure['#text']).toMatch(/exit code: 3/);
    expect(failure['#text']).toMatch(/broken/);
    expect((await outcome('verify')).code).toBe(4);
    expect((await outcome('blocked')).code).toBe(8);
    expect((await outcome('fail', ['--check'])).code).toBe(7);
    const bad = await outcome('nope', ['-e', 'count=abc']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/outcome/);
    expect(bad.stderr).toMatch(/count: expected a number/);
    const invalid = await outcome('ok', ['-e', 'count=0']);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toMatch(/count must be at least 1/);
  });

  it('5 unreachable, 130 interrupted', async () => {
    const inv = join(work, 'unreachable.yml');
    writeFileSync(inv, 'all:\n  hosts:\n    ghost:\n      ansible_host: 127.0.0.1\n      ansible_port: 1\n      ansible_user: nobody\n');
    const r = await cli(['run', './outcomes.ts', '-i', inv, '-e', 'outcome=fail']);
    expect(r.code).toBe(5);
    expect(r.stdout).toMatch(/ghost.*unreachable=1/);

    const p = start(['run', './outcomes.ts', '-i', inventory, '--limit', 'pg1', '-e', 'outcome=slow']);
    await waitFor(() => p.out().includes('$ sleep 30'), 20_000);
    p.kill('SIGINT');
    const t0 = Date.now();
    const done = await p.done;
    expect(done.code).toBe(130);
    expect(Date.now() - t0).toBeLessThan(20_000);
    const journal = readdirSync(join(work, '.runbook/runs')).map((f) => readFileSync(join(work, '.runbook/runs', f), 'utf8')).find((t) => t.includes('"interrupted":true'));
    expect(journal).toBeDefined();
  });
});

describe('interactive (tmux pseudo-terminal)', () => {
  function session(name: string, args: string[], keys: KeyStep[]): Promise<string> {
    return ttySession(name, `cd ${work} && RB_TOKEN=${TOKEN} ${process.execPath} ${bin} ${args.join(' ')}`, keys);
  }

  it('asks before a destructive step: yes proceeds, no declines with exit 6', async () => {
    const root = uniqueRoot('tty');
    await inHost('pg1', `mkdir -p ${root} && touch ${root}/scratch`);
    const args = ['run', './destructive.ts', '-i', inventory, '--limit', 'pg1', '-e', `root=${root}`];
    const no = await session(`rb-no-${process.pid}`, args, [{ when: /Proceed with step wipe-scratch/, send: ['Down', 'Enter'] }]);
    expect(no).toMatch(/EXIT=6/);
    expect(await sh('pg1', `ls ${root}`)).toBe('marker\nscratch\n');
    const yes = await session(`rb-yes-${process.pid}`, args, [{ when: /Proceed with step wipe-scratch/, send: ['Enter'] }]);
    expect(yes).toMatch(/EXIT=0/);
    expect(await sh('pg1', `ls ${root}`)).toBe('marker\n');
  });

  it('--step asks before every changing step; "no" skips it', async () => {
    const root = uniqueRoot('step');
    const out = await session(`rb-step-${process.pid}`, ['run', './destructive.ts', '-i', inventory, '--limit', 'pg1', '-e', `root=${root}`, '--step'], [
      { when: /Run step marker/, send: ['Down', 'Enter'] },
    ]);
    expect(out).toMatch(/EXIT=0/);
    expect(await sh('pg1', `test -e ${root}/marker && echo yes || echo no`)).toBe('no\n');
  });
});

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 100));
  }
}
