/**
 * Issue 13, point 2 on a lab of its own (testLab('raise', 25)): setup-warm-standby's settings are
 * minimums. A primary whose DBA set wal_level=logical and max_wal_senders=20 in postgresql.conf (read
 * before runbook's conf.d file) and has a logical slot keeps all three after setup (and after the
 * restart setup needs for wal_log_hints); a pending restart someone else staged is reported, not acted
 * on; without a terminal and without --yes the restart is refused before any host is touched.
 * One lab, the cases in order (each builds on the last). Runs the compiled CLI (`npm run build`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quoteWord } from '../../src/shell/quote.js';
import { inHost, ownLabDown, ownLabUp, testLab, type LabHostInfo, type OwnLab } from '../support/lab.js';
import { runCli } from '../support/plan-vs-run.js';

const lab = testLab('raise', 25);
const env = { PGREPL_PW: 'raise-only:pw' };
const CONF = '/etc/postgresql/15/main/postgresql.conf';

describe('settings that only raise; restarts only for what runbook changed (debian lab)', () => {
  let inventory = '';
  let own: OwnLab | undefined;
  const host: Record<string, LabHostInfo> = {};
  const run = (...more: string[]) => runCli(['run', 'setup-warm-standby', '-i', inventory, '--secret', 'replication_password=env:PGREPL_PW', ...more], { cwd: '/tmp', env, timeoutMs: 600_000 });
  const sh = async (h: string, cmd: string) => {
    const r = await inHost(host[h]!, cmd);
    if (r.code !== 0) throw new Error(`${h}: ${cmd}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const value = (h: string, query: string) => sh(h, `su -s /bin/sh postgres -c 'cd / && psql -XAtq -v ON_ERROR_STOP=1 -c "$0"' ${quoteWord(query)}`);
  /** What must not move when nothing may be touched: the managed file and each server's start time. */
  const untouched = async () => ({
    conf: await sh('pg1', 'ls /etc/postgresql/15/main/conf.d/; cat /etc/postgresql/15/main/conf.d/* 2>/dev/null; true'),
    pg1: await value('pg1', 'SELECT pg_postmaster_start_time()'),
    pg2: await value('pg2', 'SELECT pg_postmaster_start_time(), pg_is_in_recovery()'),
    roles: await value('pg1', "SELECT count(*) FROM pg_roles WHERE rolname = 'replicator'"),
  });

  beforeAll(async () => {
    own = await ownLabUp(lab);
    Object.assign(host, own.host);
    inventory = own.inventory;
    // The DBA's own choices, in postgresql.conf (read before conf.d: a managed file there would lower them).
    await sh('pg1', `printf '%s\\n' 'wal_level = logical' 'max_wal_senders = 20' >> ${CONF} && pg_ctlcluster 15 main restart`);
    expect(await value('pg1', "SELECT pg_create_logical_replication_slot('cdc', 'test_decoding') IS NOT NULL")).toBe('t');
  }, 600_000);

  afterAll(async () => {
    await ownLabDown(own);
  }, 300_000);

  it('without a terminal and without --yes the restart is refused (exit 6) before any host is touched', async () => {
    const before = await untouched();
    // The clone is approved: the restart alone is what is refused.
    const r = await run('--approve', 'clone-standby');
    expect(r.code, r.out).toBe(6);
    expect(r.out).toMatch(/step pg-restart is destructive and needs confirmation, but there is no terminal/);
    expect(r.out).toContain('No host was touched');
    expect(r.out).not.toMatch(/STEP /);
    expect(await untouched()).toEqual(before);
  }, 300_000);

  it('wal_level=logical, the logical slot and max_wal_senders=20 survive setup-warm-standby and its restart', async () => {
    const start = await value('pg1', 'SELECT pg_postmaster_start_time()');
    const r = await run('--yes');
    expect(r.code, r.out).toBe(0);
    // The plan says what it kept and why.
    expect(r.out).toMatch(/kept wal_level=logical \(set in pg1: \/etc\/postgresql\/15\/main\/postgresql\.conf; higher than replica\)/);
    expect(r.out).toMatch(/kept max_wal_senders=20 \(set in pg1: \/etc\/postgresql\/15\/main\/postgresql\.conf; higher than 10\)/);
    // setup owed a restart (wal_log_hints): it happened, and the server came back with the DBA's values.
    expect(await value('pg1', 'SELECT pg_postmaster_start_time()')).not.toBe(start);
    expect(await value('pg1', "SELECT current_setting('wal_log_hints')")).toBe('on');
    expect(await value('pg1', "SELECT current_setting('wal_level') || ' ' || current_setting('max_wal_senders')")).toBe('logical 20');
    // The slot is there and decodes (it would stop the server at start with wal_level < logical).
    expect(await value('pg1', "SELECT slot_type || ' ' || plugin FROM pg_replication_slots WHERE slot_name = 'cdc'")).toBe('logical test_decoding');
    await value('pg1', "SELECT pg_logical_emit_message(true, 'e2e', 'raise-only') IS NOT NULL");
    expect(await value('pg1', "SELECT count(*) > 0 FROM pg_logical_slot_get_changes('cdc', NULL, NULL)")).toBe('t');
    // The standby got the same file: its max_wal_senders is at least the primary's (a standby refuses less).
    expect(await value('pg2', "SELECT pg_is_in_recovery() || ' ' || current_setting('wal_level') || ' ' || current_setting('max_wal_senders')")).toBe('true logical 20');
    expect(await value('pg1', 'SELECT state FROM pg_stat_replication')).toBe('streaming');
  }, 600_000);

  it('a pending restart someone else staged is reported, not acted on', async () => {
    await value('pg1', 'ALTER SYSTEM SET max_connections = 110');
    await value('pg1', 'SELECT pg_reload_conf()');
    await expect.poll(() => value('pg1', "SELECT pending_restart FROM pg_settings WHERE name = 'max_connections'"), { timeout: 30_000, interval: 500 }).toBe('t');
    const starts = { pg1: await value('pg1', 'SELECT pg_postmaster_start_time()'), pg2: await value('pg2', 'SELECT pg_postmaster_start_time()') };
    const r = await run('--yes');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/pg1: max_connections \(from \/var\/lib\/postgresql\/15\/main\/postgresql\.auto\.conf\) waits for a restart staged outside runbook: reported, not acted on/);
    expect(r.out).toMatch(/no restart owed for runbook's settings/);
    expect(await value('pg1', 'SELECT pg_postmaster_start_time()')).toBe(starts.pg1);
    expect(await value('pg2', 'SELECT pg_postmaster_start_time()')).toBe(starts.pg2);
    expect(await value('pg1', "SELECT current_setting('max_connections') || ' ' || pending_restart FROM pg_settings WHERE name = 'max_connections'")).toBe('100 true');
    // And the DBA's values are still what runs.
    expect(await value('pg1', "SELECT current_setting('wal_level') || ' ' || current_setting('max_wal_senders')")).toBe('logical 20');
  }, 600_000);
});
