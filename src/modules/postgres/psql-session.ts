/**
 * Several SQL facts against one server through ONE psql process (issue 17): the facts of a batch
 * that run the same psql line (same server, port, database, user; the batch is per become user)
 * are sent as one psql session, their queries one after another on its stdin (secrets stay on
 * stdin, as with one psql each), each between markers carrying the batch's random nonce, which
 * psql prints itself (`\echo` on stdout, `\warn` on stderr), so a query's output cannot forge them.
 *
 * One failing query must not hide the others: the session runs with ON_ERROR_STOP off, and each
 * query's end marker carries its own outcome, an exit code as a psql of its own would have had:
 * 0, or 3 when the query (any statement of it) failed: psql's :ERROR after it, or an error line in
 * its own stderr (:ERROR only tells about the last statement). Unlike a psql of its own, the
 * statements of a failed query after its error still run (their output is in its stdout, its exit
 * code stays 3): harmless for facts, which only read and whose parse never takes the output of a
 * failed query; probes, which may write, are never shared (src/engine/gather.ts). A query that opens a transaction is
 * followed, outside its markers, by a ROLLBACK, so that an aborted transaction cannot fail the
 * queries after it. When psql cannot connect at all (exit 2, no marker printed) every query gets
 * psql's exit code and its whole stderr, exactly what each would have seen alone; a session that
 * ends mid-way (the server went away) gives the queries it did not finish psql's exit code.
 */
import type { FactSession } from '../../engine/gather.js';
import type { ExecResult } from '../../transport/types.js';
import { type Command, type CommandPart, mergeText } from '../../shell/command.js';
import type { SqlFragment } from '../../shell/index.js';

type Outcome = Pick<ExecResult, 'exitCode' | 'stdout' | 'stderr'>;

/** An error line of psql or the server, with or without psql's "psql:<stdin>:N: " prefix. */
const ERROR_LINE = /^(?:psql:[^\n]*?: )?(?:ERROR|FATAL|PANIC|error):/m;
/** A query that starts a transaction of its own (a statement at the start of a line). */
const OPENS_TRANSACTION = /^\s*(?:BEGIN|START\s+TRANSACTION)\b/im;

const mark = (nonce: string) => `@@RB-${nonce}@@ psql`;

/** The session's stdin: each query between its markers, its outcome in its end marker. */
export function sessionInput(queries: readonly SqlFragment[], nonce: string): { parts: CommandPart[] } {
  const m = mark(nonce);
  const parts: CommandPart[] = [];
  queries.forEach((q, i) => {
    parts.push({ text: `\\echo '${m} ${i}'\n\\warn '${m} ${i}'\n` }, ...q.parts);
    parts.push({ text: `\n;\n\\if :ERROR\n\\echo '\\n${m} end ${i} 3'\n\\else\n\\echo '\\n${m} end ${i} 0'\n\\endif\n\\warn '\\n${m} end ${i}'\n` });
    if (OPENS_TRANSACTION.test(q.toString())) parts.push({ text: 'ROLLBACK;\n' });
  });
  return { parts: mergeText(parts) };
}

/** The session's result (one batch piece) split back into each query's own: see the header. */
export function splitSession(r: Outcome, count: number, nonce: string): Outcome[] {
  const m = mark(nonce);
  const out: Outcome[] = [];
  let po = 0;
  let pe = 0;
  for (let i = 0; i < count; i++) {
    const start = `${m} ${i}\n`;
    const o0 = r.stdout.indexOf(start, po);
    const o1 = o0 < 0 ? -1 : r.stdout.indexOf(`\n${m} end ${i} `, o0 + start.length);
    const oEnd = o1 < 0 ? -1 : r.stdout.indexOf('\n', o1 + 1);
    const e0 = r.stderr.indexOf(start, pe);
    const e1 = e0 < 0 ? -1 : r.stderr.indexOf(`\n${m} end ${i}\n`, e0 + start.length);
    if (oEnd < 0 || e1 < 0) {
      // Not finished: psql's own outcome (exit 2 when it never connected), with what it printed from here on.
      const stdout = o0 < 0 ? '' : r.stdout.slice(o0 + start.length);
      const stderr = e0 < 0 ? r.stderr.slice(pe) : r.stderr.slice(e0 + start.length);
      const code = r.exitCode === 0 ? 3 : r.exitCode;
      for (let j = i; j < count; j++) out.push({ exitCode: code, stdout: j === i ? stdout : '', stderr });
      return out;
    }
    const stdout = r.stdout.slice(o0 + start.length, o1);
    const stderr = r.stderr.slice(e0 + start.length, e1);
    const said = r.stdout.slice(o1 + 1 + `${m} end ${i} `.length, oEnd);
    out.push({ exitCode: said === '0' && !ERROR_LINE.test(stderr) ? 0 : 3, stdout, stderr });
    po = oEnd + 1;
    pe = e1 + `\n${m} end ${i}\n`.length;
  }
  return out;
}

/** One psql fact's part in a shared session: `line` is the session's psql (ON_ERROR_STOP off). */
export class PsqlSession implements FactSession {
  constructor(
    readonly key: string,
    readonly query: SqlFragment,
    private readonly line: () => Command,
  ) {}

  combine(members: FactSession[], nonce: string): { command: Command; split(result: ExecResult): Outcome[] } {
    const queries = (members as PsqlSession[]).map((s) => s.query);
    return { command: this.line().withStdin(sessionInput(queries, nonce)), split: (r) => splitSession(r, queries.length, nonce) };
  }
}
