import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jobFact, jobId, parseJobState, runDetached, startJobCommand } from '../../../src/core/detached.js';
import type { Command } from '../../../src/shell/index.js';
import { acquireCommand, lockHolder, parseHolder, staleReason } from '../../../src/core/lock.js';
import { secret, sh } from '../../../src/shell/index.js';

describe('detached job records', () => {
  it('parses every state', () => {
    expect(parseJobState('j', 'state=absent\n')).toEqual({ state: 'absent', id: 'j' });
    expect(parseJobState('j', 'pid=12\nstarted=T\ncmd=sleep 1\nstate=running\n')).toEqual({ state: 'running', id: 'j', pid: 12, startedAt: 'T', command: 'sleep 1' });
    expect(parseJobState('j', 'pid=12\nstarted=T\ncmd=x\nstate=exited\nexit=3\nended=E\n')).toMatchObject({ state: 'exited', exitCode: 3, endedAt: 'E' });
    expect(parseJobState('j', 'pid=12\nstarted=T\ncmd=x\nstate=lost\n')).toMatchObject({ state: 'lost', pid: 12 });
  });
  it('a job that ends between the status read\'s two looks is exited, not lost', () => {
    // The status script, run here as a non-root user would ($XDG_STATE_HOME), with `kill` replaced by
    // one that lets the job finish at exactly that moment: exit status written, process gone.
    const state = mkdtempSync(join(tmpdir(), 'rb-job-'));
    const d = join(state, 'runbook/jobs/j');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'pid'), '999999\n');
    writeFileSync(join(d, 'exit.tmp'), '0\n');
    const finishesNow = `id() { echo 1000; }\nkill() { mv "$d/exit.tmp" "$d/exit"; return 1; }\n`;
    const r = spawnSync('/bin/sh', ['-c', finishesNow + jobFact('j').command.toString()], { encoding: 'utf8', env: { ...process.env, XDG_STATE_HOME: state } });
    expect(parseJobState('j', r.stdout)).toMatchObject({ state: 'exited', exitCode: 0 });
    // and a process that is gone without writing its status is still lost
    const k = join(state, 'runbook/jobs/k');
    mkdirSync(k, { recursive: true });
    writeFileSync(join(k, 'pid'), '999999\n');
    const gone = spawnSync('/bin/sh', ['-c', `id() { echo 1000; }\nkill() { return 1; }\n${jobFact('k').command.toString()}`], { encoding: 'utf8', env: { ...process.env, XDG_STATE_HOME: state } });
    expect(parseJobState('k', gone.stdout).state).toBe('lost');
  });
  it('a job planned as a reattach that ended meanwhile is waited for (its result read), never started again', async () => {
    const state = mkdtempSync(join(tmpdir(), 'rb-job-'));
    const d = join(state, 'runbook/jobs/clone');
    mkdirSync(d, { recursive: true });
    for (const [f, v] of Object.entries({ pid: '999999', start: '1', started: 'T0', cmd: 'the earlier run', out: 'done 100%\n', exit: '0', ended: 'T1' })) writeFileSync(join(d, f), `${v}\n`);
    const sent: string[] = [];
    // The commands run here by /bin/sh as a non-root user would run them ($XDG_STATE_HOME).
    const x = async (c: Command) => {
      sent.push(c.toString());
      const r = spawnSync('/bin/sh', ['-c', `id() { echo 1000; }\n${c.toString()}`], { encoding: 'utf8', env: { ...process.env, XDG_STATE_HOME: state } });
      return { host: 'h', command: c.toString(), exitCode: r.status, stdout: r.stdout, stderr: r.stderr, durationMs: 0 };
    };
    const r = await runDetached(x as never, 'clone', sh`touch ${join(state, 'started-again')}`, { attachOnly: true, intervalMs: 10 });
    expect(r).toMatchObject({ exitCode: 0, reattached: true });
    expect(r.outputTail).toContain('done 100%');
    expect(sent.some((c) => c.includes('setsid'))).toBe(false);
    expect(spawnSync('cat', [join(d, 'cmd')], { encoding: 'utf8' }).stdout).toBe('the earlier run\n');
    // without attachOnly an ended job's record is replaced by a new start
    await runDetached(x as never, 'clone', sh`touch ${join(state, 'started-again')}`, { intervalMs: 10 });
    expect(sent.some((c) => c.includes('setsid'))).toBe(true);
  });
  it('makes stable ids and refuses secrets', () => {
    expect(jobId('pg-clone', '/var/lib/postgresql/15/main')).toBe('pg-clone-var-lib-postgresql-15-main');
    expect(() => startJobCommand('x', sh`echo ${secret('hunter22')}`)).toThrow(/cannot take secrets/);
    expect(() => startJobCommand('../x', sh`true`)).toThrow(/letters, digits/);
  });
});

describe('cluster lock', () => {
  const now = Date.parse('2026-12-01T21:00:00Z');
  const h = { ...lockHolder('r1', 'failover', now), controller: 'ctl', pid: 42 };
  it('is stale when its process is gone on the same controller, or its lease expired', () => {
    expect(staleReason(h, { now, controller: 'ctl', pidAlive: () => true })).toBeUndefined();
    expect(staleReason(h, { now, controller: 'ctl', pidAlive: () => false })).toMatch(/process 42 on ctl is gone/);
    // another controller: its PID says nothing here; only the lease counts
    expect(staleReason(h, { now, controller: 'other', pidAlive: () => false })).toBeUndefined();
    expect(staleReason(h, { now: now + 121_000, controller: 'other', pidAlive: () => true })).toMatch(/lease expired/);
  });
  it('round-trips its holder and quotes it into the command', () => {
    expect(parseHolder(JSON.stringify(h))).toEqual(h);
    expect(parseHolder('garbage')).toBeNull();
    const c = acquireCommand(h, { breakRunId: 'old' }).toString();
    expect(c).toContain('flock -w 10 9');
    expect(c).toContain(`'${JSON.stringify(h)}'`);
  });
});
