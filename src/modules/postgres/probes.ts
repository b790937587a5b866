/**
 * Probes: PostgreSQL observations that write (a WAL record, a CREATE TABLE attempt, a WAL switch).
 * Never cached, never run in --check; none of them leaves a row or a table behind.
 */
import { probe } from '../../engine/checks.js';
import type { Fact } from '../../engine/types.js';
import { sql } from '../../shell/index.js';
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
