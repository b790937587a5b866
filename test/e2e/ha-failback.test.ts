/**
 * Issue 12 points 3 and 5 on a 3-node lab of its own (testLab('haback', 14): pg1, pg2, pg3, nfs1):
 * - commits that exist only on the old primary (replication cut, synchronous_commit=local, then a
 *   SIGKILL): failback refuses (exit 8) and touches nothing; with accept_data_loss the ledger
 *   directory holds the WAL and a summary naming exactly those transactions, the JSON report lists
 *   them, and the node rejoins;
 * - a failback whose rewind source is unreachable (blackhole in pg1's netns) or whose password is
 *   wrong fails with that cause, moves nothing aside, and standby.signal is still there;
 * - the planned switchover of failback under a pgbench load: every transaction pgbench counted is
 *   in pgbench_history afterwards, and no gate timed out.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inHost } from '../support/lab.js';
import { DATA, type HaLab, HostLoop, blackhole, clearBlackholes, eventually, haDown, haUp, killPostmaster, runbook, setupCluster, value } from './support-ha.js';

const LEDGER_ROOT = '/var/lib/postgresql/15/runbook-ledger';

interface Report {
  results: Array<{ stepId: string; host: string; status: string; data?: { ledger?: { dir: string; lost: Array<{ xid: number; status: string }>; lostCount: number; range: unknown } } }>;
}

describe('failback: divergence ledger, source failures, switchover under load', () => {
  let l: HaLab;
  const primaryNow = async (): Promise<string> => {
    for (const h of ['pg1', 'pg2', 'pg3']) if ((await value(l, h, 'SELECT pg_is_in_recovery()').catch(() => '')) === 'f') return h;
    throw new Error('no writable node');
  };
  /** What must not change when failback refuses: data dir listing, pg_wal, signals, no copies, no ledger. */
  const pg1Snapshot = () =>
    inHost(l.host.pg1!, `ls -la ${DATA} ${DATA}/pg_wal | md5sum; ls -d ${DATA}.old.* 2>/dev/null | wc -l; test -f ${DATA}/standby.signal && echo signal; pgrep -x postgres >/dev/null && echo running || echo stopped`).then((r) => r.stdout);

  beforeAll(async () => {
    l = await haUp('haback', 14);
    const r = await setupCluster(l);
    expect(r.code, r.out).toBe(0);
    await value(l, 'pg1', 'CREATE TABLE IF NOT EXISTS lost (id int PRIMARY KEY, note text)');
  }, 900_000);

  afterAll(async () => {
    await haDown(l);
  });

  it('commits only on the old primary: refused without accept_data_loss (nothing touched); with it the ledger keeps them and pg1 rejoins', async () => {
    await eventually('table on standbys', async () => (await value(l, 'pg3', "SELECT to_regclass('lost') IS NOT NULL")) === 't');
    // Cut replication both ways (a route on the standbys' side alone still lets pg1's WAL reach
    // them: only their acknowledgements are dropped), then commits that only pg1 has.
    for (const h of ['pg2', 'pg3']) {
      await blackhole(l, h, 'pg1');
      await blackhole(l, 'pg1', h);
    }
    const xids: number[] = [];
    let fo: Awaited<ReturnType<typeof runbook>>;
    try {
      for (let i = 1; i <= 5; i++) xids.push(Number(await value(l, 'pg1', `SET synchronous_commit = local; INSERT INTO lost VALUES (${i}, 'only on pg1') RETURNING txid_current()`)));
      await killPostmaster(l, 'pg1');
      // The routes stay until the failover has promoted and re-pointed the standbys: cleared
      // earlier, TCP retransmits what pg1 sent during the cut and the "lost" commits arrive after all.
      fo = await runbook(l, 'failover', '--yes');
    } finally {
      await clearBlackholes(l);
    }
    expect(fo.code, fo.out).toBe(0);
    const promoted = await primaryNow();
    expect(promoted).not.toBe('pg1');
    expect(await value(l, promoted, 'SELECT count(*) FROM lost')).toBe('0');

    const before = await pg1Snapshot();
    const refused = await runbook(l, 'failback', '--yes');
    expect(refused.code, refused.out).toBe(8);
    expect(refused.out).toMatch(/pg1 diverged at \S+ on timeline 1; \d+ WAL records past it .*: 5 committed transactions/);
    expect(refused.out).toContain(`xid ${xids[0]} committed`);
    expect(refused.out).toContain('accept_data_loss=true');
    expect(await pg1Snapshot()).toBe(before);
    expect((await inHost(l.host.pg1!, `ls ${LEDGER_ROOT} 2>/dev/null | wc -l`)).stdout.trim()).toBe('0');

    const report = `/tmp/${l.name}-failback-ledger.json`;
    const fb = await runbook(l, 'failback', '--yes', '-e', 'accept_data_loss=true', '--report', `json=${report}`);
    expect(fb.code, fb.out).toBe(0);
    // The ledger directory: the WAL, pg_waldump's output and a summary naming the lost transactions.
    const dir = (await inHost(l.host.pg1!, `ls -d ${LEDGER_ROOT}/*`)).stdout.trim();
    expect(dir).toMatch(/-tl1-/);
    expect(Number((await inHost(l.host.pg1!, `ls ${dir}/wal | wc -l`)).stdout.trim())).toBeGreaterThan(0);
    const summary = (await inHost(l.host.pg1!, `cat ${dir}/summary.txt`)).stdout;
    for (const x of xids) expect(summary).toMatch(new RegExp(`xid ${x}\\tCOMMIT\\t\\d{4}-`));
    expect((await inHost(l.host.pg1!, `grep -c 'desc: COMMIT' ${dir}/waldump.txt`)).stdout.trim()).toBe('5');
    // The JSON report carries the ledger.
    const r = JSON.parse(readFileSync(report, 'utf8')) as Report;
    const ledger = r.results.find((x) => x.stepId === 'rejoin-ledger' && x.host === 'pg1')!.data!.ledger!;
    expect(ledger.lostCount).toBe(5);
    // the directory the plan named (and the confirmation showed) is the one written
    expect(ledger.dir).toBe(dir);
    expect(ledger.lost.map((t) => t.xid).sort()).toEqual([...xids].sort());
    // pg1 rejoined and is the primary again; the discarded rows are gone everywhere.
    expect(await primaryNow()).toBe('pg1');
    expect(await value(l, 'pg1', 'SELECT count(*) FROM lost')).toBe('0');
    for (const h of ['pg2', 'pg3']) expect(await value(l, h, 'SELECT pg_is_in_recovery()'), h).toBe('t');
  }, 900_000);

  it('rewind source unreachable, or a wrong password: fails with that cause, nothing moved aside, standby.signal kept', async () => {
    // Everything pg1 wrote (the last run's markers) replayed on both standbys first: this case is about the source, not about lost writes.
    const lsn = await value(l, 'pg1', 'SELECT pg_current_wal_lsn()');
    for (const h of ['pg2', 'pg3']) await eventually(`${h} replayed ${lsn}`, async () => (await value(l, h, `SELECT pg_last_wal_replay_lsn() >= '${lsn}'`)) === 't', 60_000);
    await killPostmaster(l, 'pg1');
    const fo = await runbook(l, 'failover', '--yes');
    expect(fo.code, fo.out).toBe(0);
    const promoted = await primaryNow();

    await blackhole(l, 'pg1', promoted);
    try {
      const fb = await runbook(l, 'failback', '--yes');
      expect(fb.code, fb.out).toBe(3);
      expect(fb.out).toMatch(new RegExp(`the rewind source ${promoted} \\(\\S+\\) cannot be used: .*(Invalid argument|timeout|No route)`));
    } finally {
      await clearBlackholes(l);
    }
    const snap = await pg1Snapshot();
    expect(snap).toMatch(/\n0\nsignal\nstopped/);

    const pgpass = '/var/lib/postgresql/.pgpass';
    await inHost(l.host.pg1!, `cp -p ${pgpass} ${pgpass}.e2e && sed -i 's/:replicator:.*/:replicator:wrong-password/' ${pgpass}`);
    try {
      const fb = await runbook(l, 'failback', '--yes');
      expect(fb.code, fb.out).toBe(3);
      expect(fb.out).toContain('password authentication failed');
    } finally {
      await inHost(l.host.pg1!, `mv ${pgpass}.e2e ${pgpass}`);
    }
    expect(await pg1Snapshot()).toMatch(/\n0\nsignal\nstopped/);
  }, 900_000);

  it('planned switchover under pgbench: every transaction pgbench counted is there, no timeout', async () => {
    const primary = await primaryNow();
    expect(primary).not.toBe('pg1');
    const bench = '/usr/lib/postgresql/15/bin/pgbench';
    expect((await inHost(l.host[primary]!, `su -s /bin/sh postgres -c '${bench} -i -q -s 2 postgres' 2>&1 | tail -n 1`)).stdout).toMatch(/done/);
    await eventually('pgbench tables on the standbys', async () => (await value(l, 'pg3', "SELECT to_regclass('pgbench_history') IS NOT NULL")) === 't', 60_000);
    // pgbench on the current primary's host (local socket): it stops when the switchover stops that server.
    // At a fixed rate (-R): a steady load, not one that takes the cores CI shares between files.
    const load = new HostLoop(l.host[primary]!, `su -s /bin/sh postgres --session-command '${bench} -n -c 4 -j 2 -R 150 -T 600 postgres' 2>&1`);
    try {
      await eventually('pgbench commits', async () => Number(await value(l, primary, 'SELECT count(*) FROM pgbench_history')) > 100, 60_000);
      const fb = await runbook(l, 'failback', '--yes');
      expect(fb.code, fb.out).toBe(0);
      expect(fb.out).not.toMatch(/timed out/);
      expect(fb.out).toMatch(/shut down; shutdown checkpoint at \S+/);
      expect(fb.out).toContain('zero loss');
    } finally {
      await eventually('pgbench ended (its server stopped)', async () => load.exited, 60_000).catch(() => undefined);
    }
    const out = await load.stop();
    const processed = Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1] ?? NaN);
    expect(processed, out).toBeGreaterThan(100);
    expect(await primaryNow()).toBe('pg1');
    const history = Number(await value(l, 'pg1', 'SELECT count(*) FROM pgbench_history'));
    // A commit pgbench counted is never missing; one in flight at the stop may be there uncounted.
    expect(history).toBeGreaterThanOrEqual(processed);
    expect(history - processed).toBeLessThanOrEqual(4);
  }, 900_000);
});
