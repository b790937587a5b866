import { describe, expect, it } from 'vitest';
import { parseRawLayout } from '../../../src/modules/postgres/layout-facts.js';
import { resolveLayout, type PgLayout } from '../../../src/modules/postgres/layout.js';
import { includePattern } from '../../../src/modules/postgres/ops.js';

// What the layout probe prints on each kind of host (fixtures of the one-script fact).
const DEBIAN = `os_id=debian
os_like=
systemd=1
cluster=15  main    5432 online postgres /var/lib/postgresql/15/main /var/log/postgresql/postgresql-15-main.log
debian_bin=/usr/lib/postgresql/15/bin/postgres
`;
const RHEL_SYSTEMD = `os_id=rocky
os_like=rhel centos fedora
systemd=1
pgdg_bin=/usr/pgsql-14/bin/postgres
pgdg_data=/var/lib/pgsql/14/data/PG_VERSION
`;
// The lab's RHEL variant: a Debian OS, PGDG paths, no systemd, pg_lsclusters lists nothing.
const LAB_RHEL = `os_id=debian
systemd=0
pgdg_bin=/usr/pgsql-15/bin/postgres
pgdg_data=/var/lib/pgsql/15/data/PG_VERSION
debian_bin=/usr/lib/postgresql/15/bin/postgres
`;

const layout = (text: string, vars = {}): PgLayout => {
  const l = resolveLayout(parseRawLayout(text), vars);
  if (typeof l === 'string') throw new Error(l);
  return l;
};

describe('layout detection', () => {
  it('Debian: pg_lsclusters gives version, cluster, port and data dir; config in /etc; pg_ctlcluster', () => {
    expect(layout(DEBIAN)).toMatchObject({
      family: 'debian',
      version: '15',
      cluster: 'main',
      dataDir: '/var/lib/postgresql/15/main',
      configDir: '/etc/postgresql/15/main',
      binDir: '/usr/lib/postgresql/15/bin',
      ctl: 'pg_ctlcluster',
      managedConf: '/etc/postgresql/15/main/conf.d/runbook-replication.conf',
      hbaFile: '/etc/postgresql/15/main/pg_hba.conf',
      includeLine: "include_dir = 'conf.d'",
    });
  });

  it('RHEL with systemd (seed 002: PostgreSQL 14): config in the data dir, systemd unit postgresql-14', () => {
    expect(layout(RHEL_SYSTEMD)).toMatchObject({
      family: 'rhel',
      version: '14',
      dataDir: '/var/lib/pgsql/14/data',
      configDir: '/var/lib/pgsql/14/data',
      binDir: '/usr/pgsql-14/bin',
      ctl: 'systemd',
      service: 'postgresql-14',
      includeLine: "include_if_exists = 'runbook-replication.conf'",
    });
  });

  it('an installed PGDG cluster wins over the OS family; without systemd it is pg_ctl', () => {
    const l = layout(LAB_RHEL);
    expect(l.family).toBe('rhel');
    expect(l.ctl).toBe('pg_ctl');
    expect(l.binDir).toBe('/usr/pgsql-15/bin');
    expect(l.startLog).toBe('/var/lib/pgsql/15/runbook-pg_ctl.log');
  });

  it('inventory vars override detection and are reported', () => {
    const l = layout(DEBIAN, { pg_data_dir: '/srv/pg/main', pg_ctl_mode: 'systemd', pg_primary: 'pg1' });
    expect(l.dataDir).toBe('/srv/pg/main');
    expect(l.ctl).toBe('systemd');
    expect(l.overridden).toEqual(['pg_data_dir', 'pg_ctl_mode']);
  });

  it('refuses to guess between several clusters, or without any PostgreSQL', () => {
    const two = DEBIAN + 'cluster=16 main 5433 online postgres /var/lib/postgresql/16/main x\n';
    expect(resolveLayout(parseRawLayout(two))).toMatch(/several clusters.*set pg_version/);
    expect(layout(two, { pg_version: '16' }).port).toBe(5433);
    expect(resolveLayout(parseRawLayout('os_id=debian\nsystemd=0\n'))).toMatch(/no PostgreSQL found/);
    expect(resolveLayout(parseRawLayout(DEBIAN), { pg_ctl_mode: 'initd' })).toMatch(/pg_ctl_mode must be/);
  });

  it('the include pattern recognises the line the layout adds', () => {
    for (const l of [layout(DEBIAN), layout(LAB_RHEL)]) expect(includePattern(l).test(l.includeLine)).toBe(true);
    expect(includePattern(layout(DEBIAN)).test("#include_dir = 'conf.d'")).toBe(false);
  });
});
