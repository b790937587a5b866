/**
 * The PostgreSQL acceptance chain of issue 5 for one layout, on a 2-node lab of its own (it stops
 * and promotes servers, which would break the shared labs): setup → second run --check →
 * base-backup under writes → guards → hard stop → failover → failback → failback --check. Every
 * point is checked apart from the runbook's report, with psql inside the hosts (nsenter, not SSH).
 * pg-ha.test.ts (Debian) and pg-ha-rhel.test.ts (RHEL) call it, so the two layouts run side by side.
 * Runs the compiled CLI (`npm run build`). Each case runs several runbooks: their deadlines are
 * generous (a loaded 2-core CI machine makes every round trip slow); every wait polls.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inHost } from '../support/lab.js';
import { type HaLab, PASSWORD, type Run, ackedIds, eventually, haDown, haUp, psql, runbook, value, writer } from './support-ha.js';

const READ_ONLY = 'cannot execute CREATE TABLE in a read-only transaction';

const layouts = {
  debian: { data: '/var/lib/postgresql/15/main', stopImmediate: 'pg_ctlcluster 15 main stop -m immediate' },
  rhel: { data: '/var/lib/pgsql/15/data', stopImmediate: `su -s /bin/sh postgres -c '/usr/pgsql-15/bin/pg_ctl -D /var/lib/pgsql/15/data stop -m immediate'` },
} as const;

export function pgHaChain(layout: keyof typeof layouts, base: string, k: number): void {
  const { data, stopImmediate } = layouts[layout];
  const wanted = (process.env.RUNBOOK_LAB_LAYOUTS ?? 'debian,rhel').split(',').includes(layout);
  // skipped: RUNBOOK_LAB_LAYOUTS leaves this layout out
  (wanted ? describe : describe.skip)(`PostgreSQL HA runbooks, ${layout} layout`, () => {
    let l: HaLab;

    beforeAll(async () => {
      l = await haUp(base, k, { hosts: 'pg1=db,pg2=db,nfs1=nfs', layout });
    });

    afterAll(async () => {
      await haDown(l);
    });

    it('setup-warm-standby leaves a streaming standby; the second run --check exits 0', async () => {
      // --check on the fresh lab: says what would change (exit 7) and touches nothing.
      const dry = await runbook(l, 'setup-warm-standby', '--check');
      expect(dry.code, dry.out).toBe(7);
      expect(dry.out).toMatch(/pg2: would change: replace pristine stand-alone pg2/);
      expect(await value(l, 'pg2', 'SELECT pg_is_in_recovery()')).toBe('f');

      const r = await runbook(l, 'setup-warm-standby', '--yes');
      expect(r.code, r.out).toBe(0);
      expect(await value(l, 'pg2', 'SELECT pg_is_in_recovery()')).toBe('t');
      expect(await value(l, 'pg1', 'SELECT pg_is_in_recovery()')).toBe('f');
      const ro = await psql(l, 'pg2', 'CREATE TABLE test (name char(10));');
      expect(ro.code).not.toBe(0);
      expect(ro.stderr).toContain(`ERROR:  ${READ_ONLY}`);
      expect(await value(l, 'pg1', "SELECT application_name || ' ' || state FROM pg_stat_replication")).toBe('pg2 streaming');
      expect(await value(l, 'pg1', "SELECT active FROM pg_replication_slots WHERE slot_name = 'pg2'")).toBe('t');
      // The password never reached a command line or the output.
      expect(r.out).not.toContain(PASSWORD);

      const check = await runbook(l, 'setup-warm-standby', '--check');
      expect(check.code, check.out).toBe(0);
      expect(check.out).not.toMatch(/would-change=[1-9]/);
    }, 900_000);

    it('base-backup re-clones the standby while a client writes to the primary; every acknowledged row is on both', async () => {
      await value(l, 'pg1', 'CREATE TABLE IF NOT EXISTS e2e_writes (id serial PRIMARY KEY, at timestamptz DEFAULT now())');
      const before = await value(l, 'pg2', 'SELECT system_identifier FROM pg_control_system()');
      const w = writer(l, 'pg1', 'e2e_writes');
      let acked: number[];
      let r: Run | undefined;
      try {
        await eventually('the writer writes', async () => ackedIds(w.output).length > 0, 60_000);
        r = await runbook(l, 'base-backup', '--yes', '-e', 'reclone=true');
        // It wrote while the clone ran, not only before.
        const during = ackedIds(w.output).length;
        await eventually('writes after the clone', async () => ackedIds(w.output).length > during, 60_000);
      } finally {
        acked = ackedIds(await w.stop());
      }
      expect(r!.code, r!.out).toBe(0);
      expect(r!.out).toMatch(/pg2: changed: re-clone pg2/);
      const rows = Number(await value(l, 'pg1', 'SELECT count(*) FROM e2e_writes'));
      // One commit may have been in flight when the client was killed: there, but not acknowledged.
      expect(rows - acked.length).toBeGreaterThanOrEqual(0);
      expect(rows - acked.length).toBeLessThanOrEqual(1);
      await eventually('all rows on pg2', async () => Number(await value(l, 'pg2', 'SELECT count(*) FROM e2e_writes')) === rows);
      const max = Math.max(...acked);
      expect(Number(await value(l, 'pg2', `SELECT count(*) FROM e2e_writes WHERE id IN (${acked.join(',')})`))).toBe(acked.length);
      expect(Number(await value(l, 'pg2', 'SELECT max(id) FROM e2e_writes'))).toBeGreaterThanOrEqual(max);
      expect(await value(l, 'pg2', 'SELECT pg_is_in_recovery()')).toBe('t');
      expect(await value(l, 'pg2', 'SELECT system_identifier FROM pg_control_system()')).toBe(before);
      // The old data dir was moved aside, not deleted.
      expect((await inHost(l.host.pg2!, `ls -d ${data}.old.* | wc -l`)).stdout.trim()).not.toBe('0');
    }, 900_000);

    it('guards: base-backup aimed at the primary is refused, failover with a writable primary is refused', async () => {
      const rows = await value(l, 'pg1', 'SELECT count(*) FROM e2e_writes');
      const bb = await runbook(l, 'base-backup', '--yes', '-e', 'target=pg1');
      expect(bb.code, bb.out).toBe(8);
      expect(bb.out).toContain('pg1 is writable (pg_is_in_recovery() = f) and the only writable node: refusing to wipe');
      expect(await value(l, 'pg1', 'SELECT pg_is_in_recovery()')).toBe('f');
      expect(await value(l, 'pg1', 'SELECT count(*) FROM e2e_writes')).toBe(rows);
      expect((await inHost(l.host.pg1!, `ls -d ${data}.old.* 2>/dev/null | wc -l`)).stdout.trim()).toBe('0');

      const fo = await runbook(l, 'failover', '--yes');
      expect(fo.code, fo.out).toBe(8);
      expect(fo.out).toContain('pg1 is reachable and writable: refusing to promote pg2');
      expect(await value(l, 'pg2', 'SELECT pg_is_in_recovery()')).toBe('t');
    }, 900_000);

    it('hard stop of the primary → failover promotes pg2 → failback restores pg1 with zero loss', async () => {
      await value(l, 'pg1', "INSERT INTO runbook_marker (note) VALUES ('e2e before failure')");
      await eventually('marker on pg2', async () => (await value(l, 'pg2', "SELECT count(*) FROM runbook_marker WHERE note = 'e2e before failure'")) === '1');
      expect((await inHost(l.host.pg1!, stopImmediate)).code).toBe(0);

      const fo = await runbook(l, 'failover', '--yes');
      expect(fo.code, fo.out).toBe(0);
      expect(await value(l, 'pg2', 'SELECT pg_is_in_recovery()')).toBe('f');
      expect(await value(l, 'pg2', "INSERT INTO runbook_marker (note) VALUES ('e2e after failover') RETURNING note")).toBe('e2e after failover');
      expect(Number(await value(l, 'pg2', 'SELECT timeline_id FROM pg_control_checkpoint()'))).toBeGreaterThan(1);
      // Fenced: pg1 does not come back by itself as a primary.
      expect((await psql(l, 'pg1', 'SELECT 1')).code).not.toBe(0);
      expect((await inHost(l.host.pg1!, `test -f ${data}/standby.signal && echo fenced`)).stdout.trim()).toBe('fenced');

      const fb = await runbook(l, 'failback', '--yes');
      expect(fb.code, fb.out).toBe(0);
      expect(fb.out).toContain('pg_rewind --dry-run');
      expect(await value(l, 'pg1', 'SELECT pg_is_in_recovery()')).toBe('f');
      expect(await value(l, 'pg2', 'SELECT pg_is_in_recovery()')).toBe('t');
      await eventually('pg2 streams from pg1', async () => (await value(l, 'pg1', "SELECT application_name || ' ' || state FROM pg_stat_replication")) === 'pg2 streaming');
      // The planned switchover lost nothing: identical marker sets on both nodes.
      await eventually('same markers', async () => (await value(l, 'pg1', 'SELECT string_agg(note, \'|\' ORDER BY id) FROM runbook_marker')) === (await value(l, 'pg2', 'SELECT string_agg(note, \'|\' ORDER BY id) FROM runbook_marker')));
      const notes = await value(l, 'pg2', 'SELECT note FROM runbook_marker ORDER BY id');
      expect(notes).toContain('e2e before failure');
      expect(notes).toContain('e2e after failover');
      expect(notes).toMatch(/switchover pg2->pg1/);

      const check = await runbook(l, 'failback', '--check');
      expect(check.code, check.out).toBe(0);
      expect(check.out).not.toMatch(/would-change=[1-9]/);
    }, 1_200_000);
  });
}
