/**
 * Pure parts of issue 13: raise-only settings, who owes which restart and in what order, the
 * archive command before 15 (run for real in /bin/sh against a temp directory), the archive
 * verdict, and what synchronous_standby_names the primary should have.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { archiveCommand, archiveVerdict, parseArchiveProbe } from '../../../src/modules/postgres/archive.js';
import type { PgNode } from '../../../src/modules/postgres/cluster.js';
import type { PgSender } from '../../../src/modules/postgres/facts.js';
import { type CurrentSettings, parseCurrentSettings, pendingRestarts, raiseOnly, restartOrder, settingRank, sourcesOutsideManaged } from '../../../src/modules/postgres/settings.js';
import { planSync, quorumNames, syncWish } from '../../../src/modules/postgres/sync.js';

const MANAGED = '/etc/postgresql/15/main/conf.d/runbook-replication.conf';
const MIN = { wal_level: 'replica', max_wal_senders: '10', max_replication_slots: '10', wal_keep_size: '256MB', max_slot_wal_keep_size: '2GB', hot_standby: 'on' };
const cur = (files: Array<[string, string, string, string?]>, running: Array<Partial<CurrentSettings['running'][0]> & { name: string }> = []): CurrentSettings => ({
  files: files.map(([name, setting, sourcefile, error], i) => ({ seqno: i + 1, name, setting, sourcefile, error: error ?? null })),
  running: running.map((r) => ({ setting: '', unit: null, source: 'configuration file', sourcefile: null, pendingRestart: false, ...r })),
});

describe('settings only raise', () => {
  it('ranks values per setting: wal_level order, sizes with units, -1 as unlimited', () => {
    expect(settingRank('wal_level', 'logical')! > settingRank('wal_level', 'replica')!).toBe(true);
    expect(settingRank('wal_level', 'hot_standby')).toBe(settingRank('wal_level', 'replica'));
    expect(settingRank('wal_keep_size', '1GB')).toBe(1024);
    expect(settingRank('wal_keep_size', '512')).toBe(512);
    expect(settingRank('wal_keep_size', '2048kB')).toBe(2);
    expect(settingRank('max_slot_wal_keep_size', '-1')).toBe(Number.POSITIVE_INFINITY);
    expect(settingRank('max_wal_senders', 'x')).toBeUndefined();
  });

  it('logical stays logical, 20 senders stay 20, a bigger wal_keep_size stays; the plan says where each was set', () => {
    const pg1 = cur([
      ['wal_level', 'logical', '/etc/postgresql/15/main/postgresql.conf'],
      ['wal_level', 'replica', MANAGED],
      ['max_wal_senders', '20', '/etc/postgresql/15/main/postgresql.conf'],
      ['max_wal_senders', '10', MANAGED],
    ]);
    const pg2 = cur([['wal_keep_size', '1GB', '/var/lib/postgresql/15/main/postgresql.auto.conf']], [{ name: 'max_replication_slots', setting: '30', source: 'command line' }]);
    const sources = [...sourcesOutsideManaged('pg1', MANAGED, pg1), ...sourcesOutsideManaged('pg2', MANAGED, pg2)];
    const r = raiseOnly(MIN, sources);
    expect(r.settings).toMatchObject({ wal_level: 'logical', max_wal_senders: '20', max_replication_slots: '30', wal_keep_size: '1GB', max_slot_wal_keep_size: '2GB', hot_standby: 'on' });
    expect(r.kept.map((k) => `${k.name} ${k.kept} ${k.where}`)).toEqual([
      'wal_level logical pg1: /etc/postgresql/15/main/postgresql.conf',
      'max_wal_senders 20 pg1: /etc/postgresql/15/main/postgresql.conf',
      'max_replication_slots 30 pg2: command line',
      'wal_keep_size 1GB pg2: /var/lib/postgresql/15/main/postgresql.auto.conf',
    ]);
  });

  it('a default is nobody\'s choice (the minimum applies); lower values elsewhere change nothing', () => {
    const c = cur([['max_wal_senders', '5', '/etc/postgresql/15/main/postgresql.conf']], [{ name: 'max_slot_wal_keep_size', setting: '-1', unit: 'MB', source: 'default' }]);
    const r = raiseOnly(MIN, sourcesOutsideManaged('pg1', MANAGED, c));
    expect(r.settings).toEqual(MIN);
    expect(r.kept).toEqual([]);
  });

  it('parses the fact rows (file and running)', () => {
    const c = parseCurrentSettings([
      ['f', '3', 'wal_level', 'logical', '/a.conf', null],
      ['r', 'wal_level', 'replica', null, 'configuration file', `${MANAGED}:true`],
    ]);
    expect(c.files[0]).toEqual({ seqno: 3, name: 'wal_level', setting: 'logical', sourcefile: '/a.conf', error: null });
    expect(c.running[0]).toEqual({ name: 'wal_level', setting: 'replica', unit: null, source: 'configuration file', sourcefile: MANAGED, pendingRestart: true });
  });
});

describe('restart: only what our file changed, standbys first', () => {
  it('a pending restart is ours when the last line for the name is in our file; others are reported', () => {
    const c = cur(
      [
        ['wal_log_hints', 'on', MANAGED],
        ['shared_buffers', '256MB', '/var/lib/postgresql/15/main/postgresql.auto.conf', 'setting could not be applied'],
      ],
      [
        { name: 'wal_log_hints', pendingRestart: true },
        { name: 'shared_buffers', pendingRestart: true },
      ],
    );
    expect(pendingRestarts(MANAGED, c)).toEqual({ ours: ['wal_log_hints'], others: [{ name: 'shared_buffers', where: '/var/lib/postgresql/15/main/postgresql.auto.conf' }] });
  });

  it('one node at a time: standbys before the primary; nodes with nothing of ours or down are left alone', () => {
    const order = restartOrder([
      { name: 'pg1', inRecovery: false, ours: ['wal_level'], others: [] },
      { name: 'pg2', inRecovery: true, ours: ['wal_level'], others: [] },
      { name: 'pg3', inRecovery: true, ours: [], others: [{ name: 'shared_buffers', where: 'x' }] },
      { name: 'pg4', inRecovery: null, ours: ['wal_level'], others: [] },
      { name: 'pg5', inRecovery: true, ours: ['max_wal_senders'], others: [] },
    ]);
    expect(order.map((n) => n.name)).toEqual(['pg2', 'pg5', 'pg1']);
  });
});

describe('archive_command before 15 (run in /bin/sh, as the server would)', () => {
  const root = mkdtempSync(join(tmpdir(), 'rb-archive-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  // The injection of issue 13, as a real directory.
  const dir = join(root, "arch x; touch CANARY $(touch CANARY2) 'q' 100%");
  mkdirSync(dir, { recursive: true });
  const wal = join(root, 'pg_wal');
  mkdirSync(wal);
  const run = (seg: string) => {
    const line = archiveCommand(dir).text.replace(/%([pf%])/g, (_m, c: string) => (c === 'p' ? `pg_wal/${seg}` : c === 'f' ? seg : '%'));
    return spawnSync('/bin/sh', ['-c', line], { cwd: root, encoding: 'utf8' });
  };

  it('archives into that very directory; nothing in the name runs', () => {
    writeFileSync(join(wal, 'seg1'), 'one');
    expect(run('seg1').status).toBe(0);
    expect(readFileSync(join(dir, 'seg1'), 'utf8')).toBe('one');
    expect(existsSync(join(root, 'CANARY')) || existsSync(join(root, 'CANARY2'))).toBe(false);
    expect(readdirSync(dir)).toEqual(['seg1']);
  });

  it('an identical file already there is success; a different one is refused and kept', () => {
    expect(run('seg1').status).toBe(0);
    writeFileSync(join(wal, 'seg1'), 'other');
    expect(run('seg1').status).not.toBe(0);
    expect(readFileSync(join(dir, 'seg1'), 'utf8')).toBe('one');
  });

  it('a temp file left by a crash mid-copy does not block the next attempt', () => {
    writeFileSync(join(dir, '.seg2.rb-tmp.12345'), 'partial');
    writeFileSync(join(wal, 'seg2'), 'two');
    expect(run('seg2').status).toBe(0);
    expect(readFileSync(join(dir, 'seg2'), 'utf8')).toBe('two');
  });

  it('a failed copy leaves no file under the final name', () => {
    expect(run('missing').status).not.toBe(0);
    expect(existsSync(join(dir, 'missing'))).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes('missing'))).toEqual([]);
  });
});

describe('archive verdict', () => {
  it('names pg_stat_archiver.last_failed_wal when the segment does not arrive', () => {
    const p = parseArchiveProbe('missing 000000010000000000000005 3 000000010000000000000004 2026-12-01 21:00:00+00');
    expect(archiveVerdict(p, '/arch')).toBe(
      'WAL segment 000000010000000000000005 did not reach /arch within 30 s; pg_stat_archiver: failed_count 3, last_failed_wal 000000010000000000000004 at 2026-12-01 21:00:00+00',
    );
    expect(archiveVerdict(parseArchiveProbe('archived 000000010000000000000005'), '/arch')).toBe(true);
    expect(archiveVerdict(parseArchiveProbe('standby'), '/arch')).toBe(true);
    expect(archiveVerdict(parseArchiveProbe('missing X 0 -'), '/a')).toMatch(/last_failed_wal none$/);
  });
});

describe('synchronous replication', () => {
  const node = (name: string, app = name): PgNode => ({ name, address: name, port: 5432, applicationName: app, slotName: name, intendedPrimary: name === 'pg1', vars: {} });
  const nodes = [node('pg1'), node('pg2'), node('pg3', 'pg "3"')];
  const sender = (app: string, syncState = 'quorum', state = 'streaming'): PgSender => ({ applicationName: app, clientAddr: null, state, sentLsn: null, replayLsn: null, replayLagBytes: 0, syncState });
  const Q = quorumNames(nodes);

  it('ANY 1 over every node, names double-quoted (the same value whichever node is primary)', () => {
    expect(Q).toBe('ANY 1 ("pg1", "pg2", "pg ""3""")');
  });

  it('the param wins, then the inventory var, then what the managed file recorded', () => {
    expect(syncWish('quorum', undefined, undefined, undefined, null)).toEqual({ mode: 'quorum', strict: false });
    expect(syncWish(undefined, 'quorum', undefined, 'true', null)).toEqual({ mode: 'quorum', strict: true });
    expect(syncWish(undefined, undefined, undefined, undefined, { mode: 'quorum', strict: 'on' })).toEqual({ mode: 'quorum', strict: true });
    expect(syncWish('off', 'quorum', undefined, undefined, { mode: 'quorum', strict: null })).toEqual({ mode: 'off', strict: false });
  });

  it('set when a standby streams; ok once pg_stat_replication shows it in the quorum', () => {
    const w = { mode: 'quorum' as const, strict: false };
    expect(planSync(w, nodes, 'pg1', { current: '', senders: [sender('pg2', 'async')] })).toMatchObject({ kind: 'set', value: Q });
    expect(planSync(w, nodes, 'pg1', { current: Q, senders: [sender('pg2', 'async')] }).kind).toBe('wait-sync-state');
    expect(planSync(w, nodes, 'pg1', { current: Q, senders: [sender('pg2'), sender('pg "3"')] })).toMatchObject({ kind: 'ok' });
  });

  it('a primary left with no standby: suspended (writes go on), unless strict', () => {
    const none = { current: Q, senders: [sender('pg2', 'quorum', 'catchup')] };
    expect(planSync({ mode: 'quorum', strict: false }, nodes, 'pg2', none)).toMatchObject({ kind: 'set', value: '' });
    expect(planSync({ mode: 'quorum', strict: false }, nodes, 'pg2', { current: '', senders: [] }).kind).toBe('ok');
    expect(planSync({ mode: 'quorum', strict: true }, nodes, 'pg2', none).kind).toBe('ok');
    expect(planSync({ mode: 'quorum', strict: true }, nodes, 'pg2', { current: '', senders: [] })).toMatchObject({ kind: 'set', value: Q });
  });

  it('off: only our own value is undone; a DBA\'s is left and named', () => {
    expect(planSync({ mode: 'off', strict: false }, nodes, 'pg1', { current: Q, senders: [] })).toMatchObject({ kind: 'set', value: '' });
    expect(planSync({ mode: 'off', strict: false }, nodes, 'pg1', { current: 'FIRST 1 (x)', senders: [] })).toMatchObject({ kind: 'ok' });
  });
});
