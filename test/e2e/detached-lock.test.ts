/**
 * Detached jobs and the cluster lock over real SSH, on the lab testLab('intr', 5) (k=5; shared
 * with interrupt.test.ts and secrets.test.ts through support-intr.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cancelJobCommand, jobFact, runDetached, startDetached, waitDetached } from '../../src/core/detached.js';
import { ClusterLock, LockedError, lockHolder } from '../../src/core/lock.js';
import { ExitCode } from '../../src/errors.js';
import { sh } from '../../src/shell/index.js';
import { SshTransport } from '../../src/transport/ssh.js';
import { intrDown, intrUp, processes, specOf, type IntrLab } from './support-intr.js';
import { inHost } from '../support/lab.js';

let lab: IntrLab;
beforeAll(async () => {
  lab = await intrUp();
});
afterAll(async () => intrDown(lab));

describe('detached jobs', () => {
  it('a job outlives its connection; a new connection reattaches and gets its exit status and output', async () => {
    const t1 = new SshTransport();
    const c1 = await t1.connect(specOf(lab.host.pg1!));
    const x1 = (c: Parameters<typeof c1.exec>[0], o?: Parameters<typeof c1.exec>[1]) => c1.exec(c, { become: true, ...o, check: false });
    const id = `e2e-gate-${Date.now()}`;
    // The job ends when the test says so (a gate file), not after a fixed time a loaded machine
    // may overrun between the two connections.
    const gate = `/tmp/${id}.go`;
    const job = sh`while [ ! -e ${gate} ]; do sleep 0.2; done; echo finished; exit 7`;
    const started = await startDetached(x1, id, job);
    expect(started.state.state).toBe('running');
    await t1.closeAll(); // the connection goes; the job must not

    const t2 = new SshTransport();
    try {
      const c2 = await t2.connect(specOf(lab.host.pg1!));
      const x2 = (c: Parameters<typeof c2.exec>[0], o?: Parameters<typeof c2.exec>[1]) => c2.exec(c, { become: true, ...o, check: false });
      // Starting it again reattaches: the same supervisor, no second job.
      const again = await startDetached(x2, id, job);
      expect(again.reattached).toBe(true);
      expect(again.state.state === 'running' && started.state.state === 'running' && again.state.pid === started.state.pid).toBe(true);
      // Every process of this job (the supervisor and its subshell) is in the first one's session.
      const sessions = await inHost(lab.host.pg1!, `for p in $(pgrep -f '[r]unbook-job .*${id}'); do ps -o sid= -p $p; done | sort -u`);
      expect(sessions.stdout.trim().split(/\s+/)).toEqual([String(started.state.state === 'running' ? started.state.pid : -1)]);
      await inHost(lab.host.pg1!, `touch ${gate}`);
      const done = await waitDetached(x2, id, { intervalMs: 300 });
      expect(done.exitCode).toBe(7);
      expect(done.outputTail).toContain('finished');
      const f = jobFact(id);
      const state = f.parse(await x2(f.command));
      expect(state).toMatchObject({ state: 'exited', exitCode: 7 });
      await expect(runDetached(x2, `${id}-b`, sh`echo oops >&2; exit 3`, { intervalMs: 200 })).rejects.toThrow(/exit code 3[\s\S]*oops/);
      // cancel kills the whole process group
      await startDetached(x2, `${id}-c`, sh`sleep 100 & sleep 101; wait`);
      await x2(cancelJobCommand(`${id}-c`));
      expect(await processes(lab.host.pg1!, '^sleep 10[01]$')).toEqual([]);
      const dir = await inHost(lab.host.pg1!, `cat /var/lib/runbook/jobs/${id}/exit /var/lib/runbook/jobs/${id}/cmd`);
      expect(dir.stdout).toContain('7');
    } finally {
      await t2.closeAll();
    }
  });
});

describe('cluster lock', () => {
  it('a second run is refused naming the first; release frees it; a dead holder is stale', async () => {
    const t = new SshTransport();
    const pool = { exec: async (h: string, c: Parameters<SshTransport['connect']> extends never ? never : any, o?: any) => (await t.connect(specOf(lab.host[h]!))).exec(c, o) };
    try {
      const a = await ClusterLock.acquire(pool, ['pg1', 'pg2'], lockHolder('run-a', 'failover'));
      expect(a.hosts).toEqual(['pg1', 'pg2']);
      const refused = await ClusterLock.acquire(pool, ['pg1', 'pg2'], lockHolder('run-b', 'failover')).catch((e) => e);
      expect(refused).toBeInstanceOf(LockedError);
      expect(refused.exitCode).toBe(ExitCode.locked);
      expect(refused.message).toMatch(/locked by run run-a \(failover/);
      expect(refused.message).toContain('--break-lock run-a');
      // Re-entrant for the outer holder (the drill): neither refused nor released by the inner run.
      const inner = await ClusterLock.acquire(pool, ['pg1'], lockHolder('run-c', 'failback'), { heldBy: 'run-a' });
      expect(inner.hosts).toEqual([]);
      await inner.release();
      expect((await inHost(lab.host.pg1!, 'cat /var/lib/runbook/lock')).stdout).toContain('"runId":"run-a"');
      await a.release();
      expect((await inHost(lab.host.pg1!, 'test -e /var/lib/runbook/lock; echo $?')).stdout.trim()).toBe('1');
      // A lock whose process is gone (same controller) is broken, with a note.
      const dead = { ...lockHolder('run-dead', 'failover'), pid: 2 ** 22 + 11 };
      const d = await ClusterLock.acquire(pool, ['pg1'], dead);
      await new Promise((r) => setTimeout(r, 10));
      const notes: string[] = [];
      // d's own release would remove it: simulate a kill -9 by not releasing, and take over.
      const e = await ClusterLock.acquire(pool, ['pg1'], lockHolder('run-e', 'failover'), { log: (l) => notes.push(l) });
      expect(notes.join('\n')).toMatch(/breaking the stale lock of run run-dead.*process .* is gone/);
      await e.release();
      await d.release();
      // --break-lock of a live run
      const f = await ClusterLock.acquire(pool, ['pg2'], lockHolder('run-f', 'x'));
      const g = await ClusterLock.acquire(pool, ['pg2'], lockHolder('run-g', 'x'), { breakRunId: 'run-f' });
      expect((await inHost(lab.host.pg2!, 'cat /var/lib/runbook/lock')).stdout).toContain('"runId":"run-g"');
      await g.release();
      await f.release();
    } finally {
      await t.closeAll();
    }
  });
});
