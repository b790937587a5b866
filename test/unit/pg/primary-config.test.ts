import { describe, expect, it } from 'vitest';
import { type PgCluster, resolveCluster } from '../../../src/modules/postgres/cluster.js';
import { hbaEntries, replicationSettings, settingsProblems } from '../../../src/modules/postgres/steps/primary.js';
import { renderSettings } from '../../../src/modules/postgres/ops.js';
import { secret } from '../../../src/shell/index.js';

const p = {
  cluster_group: 'postgres', replication_user: 'replicator', replication_password: secret('pw'), vip: undefined,
  wal_keep_size: '256MB', max_slot_wal_keep_size: '2GB', wal_archive_dir: undefined, wal_archive_shared: false, synchronous: undefined, synchronous_strict: undefined,
};

describe('primary-side configuration', () => {
  it('modern settings only (no wal_keep_segments, no checkpoint_segments), rewind-ready, keepalives', () => {
    const { settings: s } = replicationSettings(p, undefined, 150000);
    expect(s).toMatchObject({ wal_level: 'replica', wal_log_hints: 'on', hot_standby: 'on', wal_keep_size: '256MB', max_slot_wal_keep_size: '2GB', tcp_keepalives_idle: '60' });
    expect(Object.keys(s)).not.toContain('wal_keep_segments');
    expect(Object.keys(s)).not.toContain('archive_mode');
  });

  it('WAL archiving on 15+: basic_archive into the directory, no archive_command; inventory pg_settings win', () => {
    const { settings: s, notes } = replicationSettings({ ...p, wal_archive_dir: '/srv/wal/' }, { listen_addresses: '*', wal_keep_size: '1GB' }, 150004);
    expect(s.archive_mode).toBe('on');
    expect(s.archive_library).toBe('basic_archive');
    expect(s['basic_archive.archive_directory']).toBe('/srv/wal');
    expect(String(s.archive_command)).toBe('');
    // A local directory: the standby could not read it, so no restore_command, and the plan says so.
    expect(s.restore_command).toBeUndefined();
    expect(notes.join('; ')).toMatch(/no restore_command: \/srv\/wal is local to each node/);
    expect(s.listen_addresses).toBe('*');
    expect(s.wal_keep_size).toBe('1GB');
  });

  it('before 15: the temp-sync-link archive_command; a shared archive gets a restore_command', () => {
    const { settings: s, notes } = replicationSettings({ ...p, wal_archive_dir: '/mnt/wal', wal_archive_shared: true }, undefined, 130012);
    expect(s.archive_library).toBeUndefined();
    expect(String(s.archive_command)).toContain('ln "$t" "$f"');
    expect(String(s.restore_command)).toBe('cp /mnt/wal/%f %p');
    expect(notes.join('; ')).toMatch(/restore_command from \/mnt\/wal \(wal_archive_shared/);
  });

  it('the injection from issue 13 lands quoted in the file: one shell word, % doubled, GUC-quoted', () => {
    const dir = '/var/lib/postgresql/arch x; touch /tmp/pwned-var $(touch /tmp/pwned-sub)';
    const text = renderSettings(replicationSettings({ ...p, wal_archive_dir: dir, wal_archive_shared: true }, undefined, 140000).settings);
    expect(text).toContain(`restore_command = 'cp ''/var/lib/postgresql/arch x; touch /tmp/pwned-var $(touch /tmp/pwned-sub)''/%f %p'`);
    expect(text).toContain(`archive_command = 'd=''/var/lib/postgresql/arch x; touch /tmp/pwned-var $(touch /tmp/pwned-sub)''; f="$d/%f";`);
  });

  it('synchronous=quorum is recorded in the managed file (failover and failback read it back)', () => {
    const { settings: s } = replicationSettings(p, undefined, 150000, { mode: 'quorum', strict: true });
    expect(s['runbook.synchronous']).toBe('quorum');
    expect(s['runbook.synchronous_strict']).toBe('on');
  });

  it('bad input refused with the param or var name, all at once', () => {
    const hosts = [
      { name: 'pg1', vars: { pg_settings: { archive_command: 'cp %p /x/%f', cluster_name: 'a\nb', 'Bad Name': 1 }, pg_synchronous: 'yes' } },
      { name: 'pg2', vars: { pg_settings: 'x' } },
    ];
    const problems = settingsProblems({ ...p, wal_archive_dir: 'rel/dir\n', wal_keep_size: 'lots', synchronous: 'all' }, hosts);
    expect(problems).toEqual([
      'wal_archive_dir "rel/dir\\n" must be an absolute path',
      'wal_keep_size "lots" is not a size (e.g. 256MB, 2GB)',
      'synchronous: "all" is not one of off, quorum',
      'pg1: pg_synchronous: "yes" is not one of off, quorum',
      'pg1: pg_settings.archive_command: a shell command cannot come from pg_settings (it would reach /bin/sh unquoted); use wal_archive_dir',
      'pg1: pg_settings.cluster_name holds a line break, which postgresql.conf cannot carry',
      'pg1: pg_settings.Bad Name: not a setting name',
      'pg2: pg_settings must be a mapping of setting names to values',
    ]);
    expect(settingsProblems({ ...p, wal_archive_dir: '/a/\nb' }, [])).toEqual(['wal_archive_dir "/a/\\nb" holds a line break, which postgresql.conf cannot carry']);
    expect(settingsProblems({ ...p, wal_archive_dir: "/a b/$(x)/'q'/%f/ü" }, [])).toEqual([]);
  });

  it('pg_hba: every node admitted for replication and for pg_rewind (postgres db), scram, identical on all nodes', () => {
    const h = (name: string, address: string) => ({ name, address, vars: { pg_primary: 'pg1' }, groups: ['postgres'] });
    const c = resolveCluster({ select: () => [h('pg1', '10.0.0.11'), h('pg2', 'db2.example')] }, p) as PgCluster;
    expect(hbaEntries(c).map((e) => [e.database, e.address, e.method].join(' '))).toEqual([
      'replication 10.0.0.11/32 scram-sha-256',
      'postgres 10.0.0.11/32 scram-sha-256',
      'replication db2.example scram-sha-256',
      'postgres db2.example scram-sha-256',
    ]);
  });

  it('node vars that would change a conninfo or an hba line are refused', () => {
    const h = (name: string, address: string, vars: Record<string, unknown> = {}) => ({ name, address, vars: { pg_primary: 'pg1', ...vars }, groups: ['postgres'] });
    const errors = resolveCluster({ select: () => [h('pg1', '10.0.0.11 trust'), h('pg2', 'db2', { pg_application_name: 'wörld' })] }, p);
    expect(errors).toEqual([
      'pg1: address (ansible_host) "10.0.0.11 trust" must be an IP address or a host name',
      'pg2: pg_application_name "wörld" must be 1-63 printable ASCII characters (PostgreSQL replaces others with ?)',
    ]);
  });
});
