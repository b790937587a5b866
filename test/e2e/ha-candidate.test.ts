/**
 * Issue 12 point 2 on a 3-node lab of its own (testLab('hacand', 13): pg1, pg2, pg3, nfs1): pg3
 * made to lag (replay paused while pg1 takes writes), then pg1's postmaster killed with SIGKILL.
 * Asked to promote pg3 by name, failover refuses unless approved; on its own it promotes pg2
 * (the most advanced healthy standby), pg3 ends streaming from pg2 on the new timeline (replay
 * resumed), pg1 is fenced; nothing written on pg1 before the kill is missing on pg2 or pg3.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inHost } from '../support/lab.js';
import { DATA, type HaLab, eventually, haDown, haUp, killPostmaster, runbook, setupCluster, value } from './support-ha.js';

describe('failover picks the candidate by data; the other standby follows', () => {
  let l: HaLab;

  beforeAll(async () => {
    l = await haUp('hacand', 13);
    const r = await setupCluster(l);
    expect(r.code, r.out).toBe(0);
  }, 900_000);

  afterAll(async () => {
    await haDown(l);
  });

  it('pg3 behind (replay paused): named it is refused unless approved; otherwise pg2 is promoted and pg3 follows it', async () => {
    await value(l, 'pg3', 'SELECT pg_wal_replay_pause()');
    await value(l, 'pg1', 'CREATE TABLE lagged AS SELECT generate_series(1, 5000) AS i');
    await eventually('pg2 replayed the table', async () => (await value(l, 'pg2', "SELECT to_regclass('lagged') IS NOT NULL")) === 't');
    expect(await value(l, 'pg3', "SELECT to_regclass('lagged') IS NOT NULL")).toBe('f');
    await killPostmaster(l, 'pg1');

    const named = await runbook(l, 'failover', '--yes', '-e', 'candidate=pg3');
    expect(named.code, named.out).toBe(8);
    expect(named.out).toMatch(/candidate pg3 replay paused.*--approve candidate:pg3/);
    expect(await value(l, 'pg3', 'SELECT pg_is_in_recovery()')).toBe('t');
    expect(await value(l, 'pg2', 'SELECT pg_is_in_recovery()')).toBe('t');

    // Approved by name, the choice passes (checked only: the plan goes on to the fence).
    const approved = await runbook(l, 'failover', '--check', '-e', 'candidate=pg3', '--approve', 'candidate:pg3');
    expect(approved.code, approved.out).toBe(7);
    expect(approved.out).toMatch(/failover-candidate[\s\S]*pg3: ok: candidate pg3, followers pg2: pg3 named \(approved: replay paused/);

    const fo = await runbook(l, 'failover', '--yes');
    expect(fo.code, fo.out).toBe(0);
    expect(fo.out).toMatch(/candidate pg2, followers pg3: pg2 is the most advanced healthy standby/);
    expect(await value(l, 'pg2', 'SELECT pg_is_in_recovery()')).toBe('f');
    const tl = await value(l, 'pg2', 'SELECT timeline_id FROM pg_control_checkpoint()');
    expect(Number(tl)).toBeGreaterThan(1);
    // pg3 follows pg2 on the new timeline, with its slot there.
    expect(await value(l, 'pg3', 'SELECT status || sender_host || received_tli FROM pg_stat_wal_receiver')).toBe(`streaming${l.host.pg2!.address}${tl}`);
    expect(await value(l, 'pg2', "SELECT active FROM pg_replication_slots WHERE slot_name = 'pg3'")).toBe('t');
    await value(l, 'pg2', "INSERT INTO runbook_marker (note) VALUES ('after failover')");
    await eventually('the new write on pg3', async () => (await value(l, 'pg3', "SELECT count(*) FROM runbook_marker WHERE note = 'after failover'")) === '1');
    expect(await value(l, 'pg3', 'SELECT count(*) FROM lagged')).toBe('5000');
    // pg1 is fenced: no server, standby.signal, start.conf manual. Only pg1.
    expect((await inHost(l.host.pg1!, `pgrep -x postgres || echo none; test -f ${DATA}/standby.signal && echo signal; tail -n 1 /etc/postgresql/15/main/start.conf`)).stdout.trim().split('\n')).toEqual(['none', 'signal', 'manual']);
    for (const h of ['pg2', 'pg3']) expect((await inHost(l.host[h]!, 'tail -n 1 /etc/postgresql/15/main/start.conf')).stdout.trim(), h).toBe('auto');

    // A re-run changes nothing.
    const again = await runbook(l, 'failover', '--check');
    expect(again.code, again.out).toBe(0);
  }, 900_000);
});
