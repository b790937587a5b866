/**
 * Issue 13, point 6 on a 3-node lab of its own (testLab('sync3', 17): pg1, pg2, pg3, nfs1):
 * setup-warm-standby -e synchronous=quorum gives `ANY 1 (…)` with both standbys in sync_state
 * quorum; then pgbench on the primary, a kill -9 of its postmaster mid-run, failover: every
 * transaction pgbench counted as committed is in pgbench_history on the promoted node.
 * Runs the compiled CLI (`npm run build`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inHost } from '../support/lab.js';
import { type HaLab, HostLoop, eventually, haDown, haUp, killPostmaster, runbook, value } from './support-ha.js';

const PGBENCH = '/usr/lib/postgresql/15/bin/pgbench';

describe('synchronous=quorum: a kill -9 of the primary loses no acknowledged transaction (3-node debian lab)', () => {
  let l: HaLab;

  beforeAll(async () => {
    l = await haUp('sync3', 17);
  }, 600_000);

  afterAll(async () => {
    await haDown(l);
  }, 300_000);

  it('setup-warm-standby -e synchronous=quorum: ANY 1 over the nodes, both standbys in quorum', async () => {
    const r = await runbook(l, 'setup-warm-standby', '--yes', '-e', 'synchronous=quorum');
    expect(r.code, r.out).toBe(0);
    expect(await value(l, 'pg1', 'SHOW synchronous_standby_names')).toMatch(/^ANY 1 \("pg1", "pg2", "pg3"\)$/);
    await eventually('both standbys in quorum', async () => (await value(l, 'pg1', "SELECT string_agg(application_name || '=' || sync_state, ' ' ORDER BY application_name) FROM pg_stat_replication")) === 'pg2=quorum pg3=quorum', 60_000);
  }, 900_000);

  it('kill -9 of the primary postmaster during pgbench, then failover: pgbench_history on the promoted node holds every committed transaction', async () => {
    const init = await inHost(l.host.pg1!, `su -s /bin/sh postgres -c 'cd / && ${PGBENCH} -i -s 1 -q postgres' 2>&1`);
    expect(init.code, init.stdout).toBe(0);
    // pgbench on the primary's own host (local socket): its summary counts what COMMIT acknowledged.
    const bench = new HostLoop(l.host.pg1!, `su -s /bin/sh postgres -c 'cd / && ${PGBENCH} -c 4 -j 2 -R 150 -T 120 -n postgres' 2>&1; echo "pgbench-exit=$?"`);
    try {
      // Writes flow through the quorum (a standby has them) before the kill.
      await eventually('pgbench commits replicated', async () => Number(await value(l, 'pg2', 'SELECT count(*) FROM pgbench_history')) > 300, 120_000);
      await killPostmaster(l, 'pg1');
      await eventually('pgbench ends after the kill', async () => bench.output.includes('pgbench-exit='), 120_000);
    } finally {
      await bench.stop();
    }
    const m = /number of transactions actually processed: (\d+)/.exec(bench.output);
    expect(m, bench.output).not.toBeNull();
    const committed = Number(m![1]);
    expect(committed).toBeGreaterThan(300);

    const fo = await runbook(l, 'failover', '--yes');
    expect(fo.code, fo.out).toBe(0);
    const promoted = (await value(l, 'pg2', 'SELECT pg_is_in_recovery()')) === 'f' ? 'pg2' : 'pg3';
    expect(await value(l, promoted, 'SELECT pg_is_in_recovery()')).toBe('f');
    const history = Number(await value(l, promoted, 'SELECT count(*) FROM pgbench_history'));
    // Each pgbench transaction inserts one history row: none acknowledged may be missing (some
    // committed but unacknowledged ones may be there too).
    expect(history, `pgbench counted ${committed} committed; ${promoted} has ${history}`).toBeGreaterThanOrEqual(committed);
    console.log(`sync3: pgbench committed ${committed}, pgbench_history on ${promoted} after failover: ${history}`);
    // The old primary did not come back writable.
    expect((await inHost(l.host.pg1!, 'pgrep -x postgres || echo none')).stdout.trim()).toBe('none');
  }, 900_000);
});
