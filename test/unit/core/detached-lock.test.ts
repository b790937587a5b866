import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jobFact, jobId, parseJobState, runDetached, startJobCommand } from '../../../src/core/detached.js';
import type { Command } from '../../../src/shell/index.js';
import { ClusterLock, LockedError, acquireCommand, lockHolder, parseHolder, staleReason } from '../../../src/core/lock.js';
import type { ExecResult } from '../../../src/transport/types.js';
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

  describe('with attemptAll (the lock in the first batch of reads)', () => {
    const result = (host: string, stdout: string, exitCode = 0): ExecResult => ({ host, command: 'lock', exitCode, stdout, stderr: '', durationMs: 1, timedOut: false });
    /** A pool for plain execs (releases, retries): records them. */
    const pool = () => {
      const plain: string[] = [];
      return { plain, exec: async (host: string, c: Command) => (plain.push(`${host}:${/grep -q/.test(c.toString()) ? 'release' : 'acquire'}`), result(host, 'acquired r9\n')) };
    };
    const me = { ...lockHolder('r9', 'setup', now), controller: 'ctl', pid: 42 };

    it('tries every host at once through the batch and takes them all', async () => {
      const p = pool();
      const asked: string[][] = [];
      const lock = await ClusterLock.acquire(p, ['pg2', 'pg1'], me, {
        attemptAll: (_c, hosts) => (asked.push(hosts), new Map(hosts.map((x) => [x, Promise.resolve(result(x, 'acquired r9\n'))]))),
      });
      expect(asked).toEqual([['pg1', 'pg2']]);
      expect([...lock.hosts].sort()).toEqual(['pg1', 'pg2']);
      expect(p.plain).toEqual([]); // no exec of its own
      await lock.release();
      expect(p.plain.sort()).toEqual(['pg1:release', 'pg2:release']);
    });

    it('a host held by a live run that keeps it: refused after the retries (exit 11, the holder named), and what it took released', async () => {
      const other0 = { ...lockHolder('r1', 'failover', Date.now()), controller: 'ctl', pid: process.pid };
      const p = { plain: [] as string[], exec: async (host: string, c: Command) => (p.plain.push(`${host}:${/grep -q/.test(c.toString()) ? 'release' : 'acquire'}`), result(host, `held\n${JSON.stringify(other0)}\n`)) };
      const other = { ...lockHolder('r1', 'failover', Date.now()), controller: 'ctl', pid: process.pid };
      const err = await ClusterLock.acquire(p, ['pg1', 'pg2'], me, {
        attemptAll: (_c, hosts) => new Map(hosts.map((x) => [x, Promise.resolve(x === 'pg2' ? result(x, `held\n${JSON.stringify(other)}\n`) : result(x, 'acquired r9\n'))])),
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LockedError);
      expect((err as LockedError).message).toMatch(/^pg2: locked by run r1 \(failover/);
      expect(p.plain.filter((x) => x === 'pg2:acquire')).toHaveLength(10);
      expect(p.plain.at(-1)).toBe('pg1:release');
    });

    it('two runs racing for the same hosts: the one holding the first host retries the other, which the loser releases', async () => {
      const p = pool();
      const other = { ...lockHolder('r1', 'failover', Date.now()), controller: 'ctl', pid: process.pid };
      const lock = await ClusterLock.acquire(p, ['pg1', 'pg2'], me, {
        attemptAll: (_c, hosts) => new Map(hosts.map((x) => [x, Promise.resolve(x === 'pg2' ? result(x, `held\n${JSON.stringify(other)}\n`) : result(x, 'acquired r9\n'))])),
      });
      expect([...lock.hosts].sort()).toEqual(['pg1', 'pg2']);
      expect(p.plain).toEqual(['pg2:acquire']); // the retry, by a plain exec
      await lock.release();
    });

    it('the first host held by another live run: refused at once, no retries', async () => {
      const p = pool();
      const other = { ...lockHolder('r1', 'failover', Date.now()), controller: 'ctl', pid: process.pid };
      const err = await ClusterLock.acquire(p, ['pg1', 'pg2'], me, {
        attemptAll: (_c, hosts) => new Map(hosts.map((x) => [x, Promise.resolve(x === 'pg1' ? result(x, `held\n${JSON.stringify(other)}\n`) : result(x, 'acquired r9\n'))])),
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LockedError);
      expect((err as LockedError).message).toMatch(/^pg1: locked by run r1/);
      expect(p.plain).toEqual(['pg2:release']);
    });

    it('a release sent along with other work: that host is not released again; retake takes it back, or refuses when another run took it', async () => {
      const p = pool();
      const lock = await ClusterLock.acquire(p, ['pg1', 'pg2'], me, {
        attemptAll: (_c, hosts) => new Map(hosts.map((x) => [x, Promise.resolve(result(x, 'acquired r9\n'))])),
      });
      expect(lock.releaseCommandFor('pg1')?.toString()).toContain('"runId":"r9"');
      lock.releasedOn('pg2', result('pg2', '', 90)); // it did not run (the mutex): still ours
      lock.releasedOn('pg1', result('pg1', ''));
      expect(lock.releaseCommandFor('pg1')).toBeUndefined();
      expect([...lock.hosts]).toEqual(['pg2']);
      await lock.retake();
      expect(p.plain).toEqual(['pg1:acquire']);
      expect([...lock.hosts].sort()).toEqual(['pg1', 'pg2']);
      await lock.release();
      expect(p.plain.slice(1).sort()).toEqual(['pg1:release', 'pg2:release']);

      const other = { ...lockHolder('r1', 'failover', Date.now()), controller: 'ctl', pid: process.pid };
      const q = { plain: [] as string[], exec: async (host: string) => (q.plain.push(host), result(host, `held\n${JSON.stringify(other)}\n`)) };
      const lock2 = await ClusterLock.acquire(q, ['pg1'], me, { attemptAll: (_c, hosts) => new Map(hosts.map((x) => [x, Promise.resolve(result(x, 'acquired r9\n'))])) });
      lock2.releasedOn('pg1', result('pg1', ''));
      const [a, b] = await Promise.all([lock2.retake().catch((e: unknown) => e), lock2.retake().catch((e: unknown) => e)]);
      expect(a).toBeInstanceOf(LockedError);
      expect(b).toBe(a); // every apply waits for the same retake and meets its refusal
      expect((a as LockedError).message).toMatch(/^pg1: locked by run r1 .* since this run released it/);
      expect(q.plain).toEqual(['pg1']);
    });

    it('a batch that failed on one host: what was taken is released and the error stands', async () => {
      const p = pool();
      const err = await ClusterLock.acquire(p, ['pg1', 'pg2'], me, {
        attemptAll: (_c, hosts) => new Map(hosts.map((x) => [x, x === 'pg2' ? Promise.reject(new Error('boom')) : Promise.resolve(result(x, 'acquired r9\n'))])),
      }).catch((e: unknown) => e);
      expect(String(err)).toMatch(/boom/);
      expect(p.plain).toEqual(['pg1:release']);
    });
  });
});
