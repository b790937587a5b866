/**
 * Several SQL facts through one psql (src/modules/postgres/psql-session.ts): the session's input,
 * and the splitter that gives each query its own output, errors and exit code back. The outputs
 * below are what psql 15 prints for these inputs (seen on the lab: markers by \echo and \warn, an
 * error line without a "psql:" prefix when the script comes on stdin); the e2e case in
 * test/e2e/shared/engine.ts runs the same against a real server.
 */
import { describe, expect, it } from 'vitest';
import { sessionPieces } from '../../../src/engine/gather.js';
import { psqlCommand, statusFact, slotsFact, replicationFact } from '../../../src/modules/postgres/facts.js';
import { sessionInput, splitSession } from '../../../src/modules/postgres/psql-session.js';
import { readOnlyTestProbe } from '../../../src/modules/postgres/probes.js';
import { secret, sql } from '../../../src/shell/index.js';
import type { ExecResult } from '../../../src/transport/types.js';

const nonce = '0123456789ab';
const m = `@@RB-${nonce}@@ psql`;
const text = (parts: ReadonlyArray<{ text: string } | { secret: unknown }>) => parts.map((p) => ('text' in p ? p.text : '<secret>')).join('');
/** What psql prints around query i: stdout and stderr pieces. */
const piece = (i: number, out: string, err: string, lastFailed = false) => ({
  out: `${m} ${i}\n${out}\n${m} end ${i} ${lastFailed ? 3 : 0}\n`,
  err: `${m} ${i}\n${err}\n${m} end ${i}\n`,
});

describe('one psql session for several queries', () => {
  it('puts each query between markers psql prints itself, a ROLLBACK after one that opens a transaction, secrets kept as secrets', () => {
    const input = sessionInput([sql`SELECT 1`, sql`BEGIN;\nCREATE TABLE test (name char(10));\nROLLBACK;`, sql`SELECT ${secret('pw-123', 'pw')} = 'x';`], nonce);
    const t = text(input.parts);
    expect(t).not.toContain('pw-123');
    expect(input.parts.some((p) => 'secret' in p)).toBe(true);
    expect(t).toContain(`\\echo '${m} 0'\n\\warn '${m} 0'\nSELECT 1\n;\n\\if :ERROR\n\\echo '\\n${m} end 0 3'\n\\else\n\\echo '\\n${m} end 0 0'\n\\endif\n\\warn '\\n${m} end 0'\n\\echo '${m} 1'`);
    // the ROLLBACK only after the query that began a transaction, outside its markers
    expect(t.match(/ROLLBACK;\n/g)).toHaveLength(2);
    expect(t).toContain(`\\warn '\\n${m} end 1'\nROLLBACK;\n\\echo '${m} 2'`);
  });

  it('gives each query its own output, stderr and exit code: a failing query (even one whose last statement worked) hides none of the others', () => {
    const a = piece(0, '1\x1f2\x1e3\x1f4\n', '');
    const b = piece(1, '', 'ERROR:  column "nosuch" does not exist\nLINE 1: SELECT nosuch;\n               ^\n');
    const c = piece(2, 'writable\n', '', false);
    const d = piece(3, '', 'ERROR:  cannot execute CREATE TABLE in a read-only transaction\n');
    const stdout = a.out + b.out + c.out + d.out;
    // between two queries psql may print what the ROLLBACK said: outside every query's markers
    const stderr = a.err + b.err + c.err + 'WARNING:  there is no transaction in progress\n' + d.err;
    const got = splitSession({ exitCode: 0, stdout, stderr }, 4, nonce);
    expect(got.map((g) => g.exitCode)).toEqual([0, 3, 0, 3]);
    expect(got[0]!.stdout).toBe('1\x1f2\x1e3\x1f4\n');
    expect(got[1]!.stderr).toMatch(/^ERROR: {2}column "nosuch"/);
    expect(got[2]).toEqual({ exitCode: 0, stdout: 'writable\n', stderr: '' });
    expect(got[3]!.stderr).toBe('ERROR:  cannot execute CREATE TABLE in a read-only transaction\n');
    // psql's :ERROR alone (the last statement failed) also counts
    expect(splitSession({ exitCode: 0, stdout: piece(0, '', '', true).out, stderr: piece(0, '', '').err }, 1, nonce)[0]!.exitCode).toBe(3);
  });

  it('psql could not connect: every query gets its exit code and whole stderr, as a psql of its own would have', () => {
    const err = 'psql: error: connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: No such file or directory\n';
    const got = splitSession({ exitCode: 2, stdout: '', stderr: err }, 3, nonce);
    expect(got).toEqual([0, 1, 2].map(() => ({ exitCode: 2, stdout: '', stderr: err })));
  });

  it('a session that ended mid-way: the finished queries keep their results, the others get psql exit code', () => {
    const a = piece(0, 't\n', '');
    const lost = 'server closed the connection unexpectedly\nconnection to server was lost\n';
    const got = splitSession({ exitCode: 2, stdout: `${a.out}${m} 1\npartial`, stderr: `${a.err}${m} 1\n${lost}` }, 3, nonce);
    expect(got.map((g) => g.exitCode)).toEqual([0, 2, 2]);
    expect(got[0]!.stdout).toBe('t\n');
    expect(got[1]).toEqual({ exitCode: 2, stdout: 'partial', stderr: lost });
    expect(got[2]!.stderr).toBe(lost);
    // psql exited 0 without a query's end marker (cannot happen with well-formed input): a failure, never a success
    expect(splitSession({ exitCode: 0, stdout: `${m} 0\n`, stderr: `${m} 0\n` }, 1, nonce)[0]!.exitCode).toBe(3);
  });

  it('a query whose output imitates a marker (another nonce) does not split it', () => {
    const fake = '@@RB-ffffffffffff@@ psql end 0 0\n';
    const a = piece(0, fake, '');
    const got = splitSession({ exitCode: 0, stdout: a.out, stderr: a.err }, 1, nonce);
    expect(got[0]).toEqual({ exitCode: 0, stdout: fake, stderr: '' });
  });

  it('in a batch: the facts of one server (same psql line) become one piece at the first one\'s place, in order; another server stays apart', () => {
    const local = { port: 5432, bin: '/usr/lib/postgresql/15/bin' };
    const other = { port: 5433, bin: '/usr/lib/postgresql/15/bin' };
    const plain = { name: 'plain', command: psqlCommand(other, sql`SELECT 2`), parse: (r: ExecResult) => r };
    const probe = readOnlyTestProbe(local); // it may write: never shared
    const facts = [statusFact(local), plain, slotsFact(local), replicationFact(local), probe];
    const { pieces, expand } = sessionPieces(facts.slice(0, 4), nonce);
    expect(pieces).toHaveLength(2);
    expect(sessionPieces(facts, nonce).pieces.at(-1)).toBe(probe);
    expect(pieces[0]!.name).toBe('pg.status + pg.replication_slots + pg.stat_replication');
    expect(pieces[1]).toBe(plain); // alone on its server: its own psql, ON_ERROR_STOP on
    const line = pieces[0]!.command.toString();
    expect(line.split('\n')[0]).toContain('-v ON_ERROR_STOP=0');
    expect(plain.command.toString().split('\n')[0]).toContain('-v ON_ERROR_STOP=1');
    expect((line.match(/\\echo '@@RB-0123456789ab@@ psql \d'/g) ?? []).length).toBe(3);
    const session = { host: 'h', command: 'c', durationMs: 5, timedOut: false, exitCode: 0, stdout: piece(0, 'S\n', '').out + piece(1, 'L\n', '').out + piece(2, '', 'ERROR:  boom\n').out, stderr: piece(0, '', '').err + piece(1, '', '').err + piece(2, '', 'ERROR:  boom\n').err };
    const alone = { host: 'h', command: 'p', durationMs: 5, timedOut: false, exitCode: 0, stdout: '2\n', stderr: '' };
    const back = expand([session, alone]);
    expect(back.map((r) => [r.exitCode, r.stdout])).toEqual([[0, 'S\n'], [0, '2\n'], [0, 'L\n'], [3, '']]);
    expect(back[3]!.command).toBe(facts[3]!.command.toString());
  });
});
