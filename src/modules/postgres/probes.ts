/**
 * Probes: PostgreSQL observations that write (a WAL record, a CREATE TABLE attempt, a WAL switch).
 * Never cached, never run in --check; none of them leaves a row or a table behind.
 */
import { probe } from '../../engine/checks.js';
import type { Fact } from '../../engine/types.js';
import { Command, sh, sql, stdinText } from '../../shell/index.js';
import { type PgConn, parseRows, psqlCommand } from './facts.js';

export const READ_ONLY_ERROR = 'cannot execute CREATE TABLE in a read-only transaction';

/**
 * On a writable node: a non-transactional WAL message (no table grows), its LSN; null on a node in
 * recovery or down. The standby must replay past it.
 */
export function emitMessageProbe(conn: PgConn, nonce: string): Fact<string | null> {
  return probe({
    name: 'pg.emit_message',
    become: true,
    command: psqlCommand(conn, sql`SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_logical_emit_message(false, 'runbook', ${nonce})::text END`),
    parse: (r) => (r.exitCode === 0 ? (parseRows(r.stdout)[0]?.[0] ?? null) : null),
  });
}

/**
 * Seed 002's read-only test, only where the server says it is in recovery, inside a transaction
 * rolled back: on a standby it fails with READ_ONLY_ERROR; on a writable node nothing is attempted,
 * and even a node promoted in between keeps no table.
 */
export function readOnlyTestProbe(conn: PgConn): Fact<{ inRecovery: boolean; error: string }> {
  const query = sql`SELECT pg_is_in_recovery() AS in_recovery \\gset
\\if :in_recovery
BEGIN;
CREATE TABLE test (name char(10));
ROLLBACK;
\\else
SELECT 'writable';
\\endif
`;
  return probe({
    name: 'pg.read_only_test',
    become: true,
    command: psqlCommand(conn, query),
    parse: (r) => {
      if (r.exitCode === 0) return r.stdout.includes('writable') ? { inRecovery: false, error: '' } : { inRecovery: true, error: 'CREATE TABLE succeeded: the standby is WRITABLE' };
      return { inRecovery: true, error: r.stderr.trim() };
    },
  });
}

/**
 * Seed 000's archive check, on a writable node: a WAL message (so there is something to switch
 * away from), pg_switch_wal(), then up to `seconds` for that segment in `dir`. "standby" on a node
 * in recovery; else "archived SEG" or "missing SEG …" with pg_stat_archiver's failure count.
 */
export function archiveSwitchProbe(conn: PgConn, dir: string, seconds = 30): Fact<string> {
  const write = sql`SELECT CASE WHEN NOT pg_is_in_recovery() THEN pg_logical_emit_message(false, 'runbook', 'archive check') END`;
  const query = sql`SELECT CASE WHEN pg_is_in_recovery() THEN 'standby' ELSE (SELECT pg_walfile_name(pg_switch_wal()) FROM (SELECT 1) s) END;`;
  const failed = sql`SELECT failed_count || ' failed, last error on ' || coalesce(last_failed_wal, 'none') FROM pg_stat_archiver`;
  const q = (x: typeof query) => new Command(psqlCommand(conn, x).parts);
  return probe({
    name: 'pg.archive_switch',
    become: true,
    command: sh`{ read -r w; read -r s; read -r fq; } ; printf '%s\n' "$w" | ${q(write)} >/dev/null 2>&1
seg=$(printf '%s\n' "$s" | ${q(query)}) || { echo "error cannot switch WAL"; exit 0; }
[ "$seg" = standby ] && { echo standby; exit 0; }
i=0; while [ $i -lt ${seconds * 5} ]; do [ -f ${dir}/"$seg" ] && { echo "archived $seg"; exit 0; }; sleep 0.2; i=$((i+1)); done
echo "missing $seg not in ${dir} after ${seconds} s ($(printf '%s\n' "$fq" | ${q(failed)}))"`.withStdin(stdinText`${String(write)}
${String(query)}
${String(failed)}
`),
    parse: (r) => r.stdout.trim() || `error ${r.stderr.trim()}`,
  });
}
