/**
 * Issue 18, part 2, on a lab of its own (testLab('fsync-fo', 24): pg1, pg2, nfs1): the file sync
 * follows the primary through a failover (pg2 → pg1) and a failback in seed 003's order (stop the
 * sync, the changed files back to pg1 listed in the plan, switch over, pg1 → pg2 again), then
 * disable-file-sync removes it. `runbook check` after a kill of the primary is CRITICAL and names
 * the candidate failover then promotes. Part 1 (setup, the key, check's other faults, an old
 * primary SSH cannot reach): filesync.test.ts. Runs the compiled CLI (`npm run build`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DIR,
  INTERVAL,
  PULL_SLACK_MS,
  arrives,
  check,
  criticals,
  direction,
  eventually,
  killPostmaster,
  parseReport,
  pgDown,
  psql,
  run,
  scheduledPull,
  setupClusterAndSync,
  sh,
  stamp,
  syncLabDown,
  syncLabUp,
  type SyncLab,
} from './support-filesync.js';

describe('file sync through failover, failback and disable', () => {
  let l: SyncLab;
  let failedOver = false;
  let failedBack = false;

  beforeAll(async () => {
    l = await syncLabUp('fsync-fo', 24);
    const { standby, sync } = await setupClusterAndSync(l);
    expect(standby.code, standby.out).toBe(0);
    expect(sync.code, sync.out).toBe(0);
    expect(await direction(l)).toEqual({ cron: ['pg2'], keys: ['pg1'] });
  }, 900_000);

  afterAll(async () => {
    await syncLabDown(l);
  });

  it('after a kill of the primary check is CRITICAL and names the candidate failover then picks; after failover the sync runs pg2 → pg1', async () => {
    await arrives(l, 'pg1', 'pg2', 'before-kill.txt');
    await killPostmaster(l, 'pg1');
    await eventually('pg1 down', async () => pgDown(l, 'pg1'), 20_000);
    const c = await check(l, '--format', 'json');
    expect(c.code, c.out).toBe(2);
    const report = parseReport(c.out);
    expect(criticals(report)).toMatch(/postgres-up@pg1: pg1: PostgreSQL does not answer/);
    expect(criticals(report)).toMatch(/one-writable@cluster: no writable node/);
    expect(report.candidate).toBe('pg2');
    const fence = report.findings.find((f) => f.check === 'fence')!;
    expect(fence.message).toContain('evidence down-ssh-pgctl');

    const fo = await run(l, 'failover', '--yes');
    expect(fo.code, fo.out).toBe(0);
    failedOver = true;
    // the node check named is the one failover promoted
    expect(fo.out).toMatch(new RegExp(`${report.candidate}: changed: promote ${report.candidate}`));
    expect(await psql(l, 'pg2', 'SELECT pg_is_in_recovery()')).toBe('f');
    expect(fo.out).toMatch(/pg1: changed: files: cron \/etc\/cron\.d\/runbook-filesync-files/);
    expect(await direction(l)).toEqual({ cron: ['pg1'], keys: ['pg2'] });
    // cron loads the new file at the next minute: its first pull comes from pg2, then every interval
    expect(await scheduledPull(l, 'pg1', Math.floor(Date.now() / 1000) - 1)).toBe(l.host.pg2!.address);
    const { ms } = await arrives(l, 'pg2', 'pg1', 'during-failover-1.txt');
    expect(ms).toBeLessThan(INTERVAL * 1000 + PULL_SLACK_MS);
    console.log(`failover ${fo.ms} ms; during-failover-1.txt arrived after ${ms} ms`);
  }, 600_000);

  it('failback: stop the sync, files back to pg1 (listed in the plan), switch over, pg1 → pg2 again', async () => {
    expect(failedOver).toBe(true);
    // pg1's pulls stopped (as failback's first file-sync step does): a cron job still sleeping
    // pulls nothing once its file is gone; one running is waited for.
    await sh(l, 'pg1', 'rm -f /etc/cron.d/runbook-filesync-files && flock -w 120 /run/runbook-filesync-files.lock true');
    await sh(l, 'pg2', `echo 'only on pg2 so far' > ${DIR}/during-failover-2.txt && chmod 600 ${DIR}/during-failover-2.txt`);
    const want = await stamp(l, 'pg2', `${DIR}/during-failover-2.txt`);
    await new Promise((r) => setTimeout(r, (2 * INTERVAL + 2) * 1000)); // two intervals: no pull reaches pg1 now
    expect(await stamp(l, 'pg1', `${DIR}/during-failover-2.txt`)).toBe('absent');
    const fb = await run(l, 'failback', '--yes');
    expect(fb.code, fb.out).toBe(0);
    failedBack = true;
    expect(fb.out).toMatch(/pg1: will change: pull 1 changed file\(s\) from pg2: files \/srv\/files: >f\+* during-failover-2\.txt/);
    // the order of seed 003: stop, catch up, switch over, catch up again, sync in the original direction
    const at = (re: RegExp) => fb.out.search(re);
    expect(at(/\[filesync-stop\]/)).toBeGreaterThan(0);
    expect(at(/\[filesync-stop\]/)).toBeLessThan(at(/\[filesync-catch-up\]/));
    expect(at(/\[filesync-catch-up\]/)).toBeLessThan(at(/\[switchover\]/));
    expect(at(/\[switchover\]/)).toBeLessThan(at(/\[filesync-back-schedule\]/));
    expect(await psql(l, 'pg1', 'SELECT pg_is_in_recovery()')).toBe('f');
    expect(await stamp(l, 'pg1', `${DIR}/during-failover-2.txt`)).toBe(want);
    expect(await stamp(l, 'pg1', `${DIR}/during-failover-1.txt`)).toBe(await stamp(l, 'pg2', `${DIR}/during-failover-1.txt`));
    expect(await direction(l)).toEqual({ cron: ['pg2'], keys: ['pg1'] });
    expect(await scheduledPull(l, 'pg2', Math.floor(Date.now() / 1000) - 1)).toBe(l.host.pg1!.address);
    await arrives(l, 'pg1', 'pg2', 'after-failback.txt');
    await eventually('check OK after failback', async () => (await check(l)).code === 0, 90_000);
    const c = await check(l);
    expect(c.out).toMatch(/\[OK\] health\/file-sync@pg2: pg2: file sync files from pg1: last success \d+ s ago/);
    console.log(`failback ${fb.ms} ms`);
  }, 600_000);

  it('disable-file-sync removes the schedule, the key entries, the keys and the locks', async () => {
    expect(failedBack).toBe(true);
    const r = await run(l, 'disable-file-sync', '--yes');
    expect(r.code, r.out).toBe(0);
    for (const h of ['pg1', 'pg2']) {
      const left = await sh(l, h, 'ls /etc/cron.d/runbook-filesync-* /etc/runbook/filesync/files.* /run/runbook-filesync-files.lock /usr/local/lib/runbook/filesync-files 2>/dev/null; grep -c "filesync files" /root/.ssh/authorized_keys || true; test -e /var/lib/runbook/filesync/files && echo state-left; true');
      expect(left, h).toBe('0');
    }
    expect(await stamp(l, 'pg2', `${DIR}/after-failback.txt`)).not.toBe('absent'); // the files stay
    // no pull runs any more: a file written on pg1 stays there
    await sh(l, 'pg1', `echo late > ${DIR}/after-disable.txt`);
    await new Promise((r) => setTimeout(r, (2 * INTERVAL + 2) * 1000));
    expect(await stamp(l, 'pg2', `${DIR}/after-disable.txt`)).toBe('absent');
    const again = await run(l, 'disable-file-sync', '--check');
    expect(again.code, again.out).toBe(0);
    // check no longer reports a file sync
    expect((await check(l)).out).not.toContain('file-sync');
  }, 300_000);
});
