import { describe, expect, it } from 'vitest';
import { type PgCluster, resolveCluster } from '../../../src/modules/postgres/cluster.js';
import { hbaEntries, replicationSettings } from '../../../src/modules/postgres/steps/primary.js';
import { secret } from '../../../src/shell/index.js';

const p = { cluster_group: 'postgres', replication_user: 'replicator', replication_password: secret('pw'), vip: undefined, wal_keep_size: '256MB', max_slot_wal_keep_size: '2GB', wal_archive_dir: undefined };

describe('primary-side configuration', () => {
  it('modern settings only (no wal_keep_segments, no checkpoint_segments), rewind-ready, keepalives', () => {
    const s = replicationSettings(p, undefined);
    expect(s).toMatchObject({ wal_level: 'replica', wal_log_hints: 'on', hot_standby: 'on', wal_keep_size: '256MB', max_slot_wal_keep_size: '2GB', tcp_keepalives_idle: '60' });
    expect(Object.keys(s)).not.toContain('wal_keep_segments');
    expect(Object.keys(s)).not.toContain('archive_mode');
  });

  it('WAL archiving: a command that refuses to overwrite, a restore_command; inventory pg_settings win', () => {
    const s = replicationSettings({ ...p, wal_archive_dir: '/srv/wal/' }, { listen_addresses: '*', wal_keep_size: '1GB' });
    expect(s.archive_mode).toBe('on');
    expect(s.archive_command).toBe('test ! -f /srv/wal/%f && cp %p /srv/wal/%f');
    expect(s.restore_command).toBe('cp /srv/wal/%f %p');
    expect(s.listen_addresses).toBe('*');
    expect(s.wal_keep_size).toBe('1GB');
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
});
