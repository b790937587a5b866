// Takes runbook's recorded wire lines apart (src/shell/wire.ts builds them; src/engine/gather.ts
// builds the fact batches inside): the become user, the secrets the preamble reads from stdin, and
// each fact's bare shell text, without the sudo / watchdog / timeout wrapper and the batch markers.
// The one-exec floor (bench/floor.mjs --one-exec) joins a host's facts into ONE shell.
import { quoteWord } from '../../dist/src/shell/quote.js';

/** One POSIX-quoted word at `pos` ('…' pieces, \x, safe characters); returns [value, end]. */
function wordAt(s, pos) {
  let out = '';
  let i = pos;
  while (i < s.length && !/\s/.test(s[i])) {
    if (s[i] === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated quote at ${i}`);
      out += s.slice(i + 1, end);
      i = end + 1;
    } else if (s[i] === '\\') {
      out += s[i + 1];
      i += 2;
    } else out += s[i++];
  }
  return [out, i];
}

/** The argument of the first `sh -c WORD` at or after `from` whose prefix matches `re`. */
function shArg(text, re) {
  const m = re.exec(text);
  if (!m) return undefined;
  const [value, end] = wordAt(text, m.index + m[0].length);
  return { value, end, match: m };
}

const MARK = /^printf '(@@RB-[0-9a-f]+@@) (\d+)\\n'; printf '\1 \2\\n' >&2$/;

/**
 * A recorded command → { user, secrets (count), timeoutSec, facts: [text] } or undefined when the
 * line is not runbook's wire form. `facts` holds one entry per fact of a batch (each `( CMD\n)
 * </dev/null` as gather.ts runs it), or the whole script when it is not a batch.
 */
export function unwrap(line) {
  const outer = shArg(line, /^(?:sudo -n -u (\S+) -- )?sh -c /);
  if (!outer || outer.end !== line.length) return undefined;
  const user = outer.match[1] ? wordAt(outer.match[1], 0)[0] : undefined;
  const run = shArg(outer.value, /setsid (?:timeout -k 5 (\d+) )?sh -c /);
  if (!run) return undefined;
  let inner = run.value;
  const pre = /^((?:IFS= read -r __rb_s\d+ \|\| exit 125\n)+)\{\n([\s\S]*)\n\}$/.exec(inner);
  const secrets = pre ? pre[1].split('\n').filter(Boolean).length : 0;
  if (pre) inner = pre[2];
  const lines = inner.split('\n');
  const facts = [];
  let current;
  for (const l of lines) {
    if (MARK.test(l)) current = [];
    else if (current && l.startsWith('__rb_c=$?; printf ')) {
      facts.push(current.join('\n'));
      current = undefined;
    } else if (current) current.push(l);
  }
  return { user, secrets, timeoutSec: run.match[1] ? Number(run.match[1]) : undefined, batch: facts.length > 0, facts: facts.length ? facts : [inner] };
}

/** runbook's run lock (src/core/lock.ts): its take and release are not checks of the runbook's work. */
const isLock = (fact) => fact.includes('/var/lib/runbook/.lock.mutex');

/**
 * A host's recorded commands as ONE command: every fact of every recorded exec, in order, bare
 * (each in its subshell, stdin closed, as gather.ts runs it), the lock's take and release left out,
 * in ONE shell (`sudo -n -u USER -- sh -c`; facts of several become users on one host are
 * refused: in the lab every fact runs as root). The secrets the preambles read come first on stdin, read into
 * renamed variables. The script ends by printing each fact's exit code after "@@FLOOR@@".
 * Returns { line, stdin, facts, codes } (codes: the recorded exit code of each fact kept, or null).
 */
export function oneExec(commands) {
  const groups = [];
  const stdin = [];
  const codes = [];
  let nsecrets = 0;
  for (const c of commands) {
    const u = unwrap(c.line);
    if (!u) throw new Error(`not runbook's wire form: ${c.line.slice(0, 80)}`);
    const secretLines = (c.stdin.match(/[^\n]*\n/g) ?? []).slice(0, u.secrets);
    if (secretLines.length < u.secrets) throw new Error(`recorded stdin holds fewer than ${u.secrets} secret lines`);
    const names = secretLines.map((_, i) => `__rb_f${nsecrets + i}`);
    nsecrets += u.secrets;
    stdin.push(...secretLines);
    const rename = (text) => text.replace(/__rb_s(\d+)/g, (_, i) => names[Number(i)]);
    u.facts.forEach((fact, i) => {
      if (isLock(fact)) return;
      const user = u.user ?? '';
      let g = groups.at(-1);
      if (!g || g.user !== user) groups.push((g = { user, facts: [] }));
      g.facts.push(u.batch ? rename(fact) : `( ${rename(fact)}\n) </dev/null`);
      codes.push(u.batch ? (c.factCodes?.[i] ?? null) : c.exitCode);
    });
  }
  if (groups.length > 1) throw new Error(`facts as several become users (${groups.map((g) => g.user || 'login').join(', ')}): the one-exec floor runs one shell`);
  const g = groups[0] ?? { user: '', facts: [] };
  const preamble = Array.from({ length: nsecrets }, (_, i) => `IFS= read -r __rb_f${i} || exit 125`);
  const facts = g.facts.map((f) => `${f}\n__fc="$__fc $?"`);
  const script = [...preamble, '__fc=', ...facts, `printf '\\n@@FLOOR@@%s\\n' "$__fc"`].join('\n');
  const line = g.user ? `sudo -n -u ${quoteWord(g.user)} -- sh -c ${quoteWord(script)}` : `sh -c ${quoteWord(script)}`;
  return { line, stdin: stdin.join(''), facts: codes.length, codes };
}

/** The per-fact exit codes a one-exec script printed last. */
export function floorCodes(stdout) {
  const m = /@@FLOOR@@((?: \d+)*)\s*$/.exec(stdout);
  return m ? m[1].trim().split(/\s+/).filter(Boolean).map(Number) : undefined;
}
