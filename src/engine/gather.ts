/**
 * Gathering: every fact a step needs on one host, run as ONE remote script per (host, become user)
 * instead of one round trip per fact. Each fact runs in its own subshell with stdin closed; its
 * stdout, stderr and exit code are kept in a temp dir and printed back between delimiters that
 * carry a random nonce, so fact output cannot forge them.
 */
import { randomBytes } from 'node:crypto';
import { Command, joinCommands, raw, sh } from '../shell/command.js';
import { maskSecrets } from '../shell/secret.js';
import type { ExecOptions, ExecResult } from '../transport/types.js';
import type { Fact, FactMap, FactSource } from './types.js';
import { RunbookError, ExitCode } from '../errors.js';

export interface Executor {
  exec(host: string, command: Command, options?: ExecOptions): Promise<ExecResult>;
}

export function isRemote<T>(f: FactSource<T>): f is { onHost: string; fact: Fact<T> } {
  return 'onHost' in f && 'fact' in f;
}

/** A fact's command as a script piece: stdin (e.g. SQL for psql) is piped from a quoted printf. */
function factScript(f: Fact<unknown>): Command {
  const { stdin } = f.command;
  const bare = stdin ? new Command(f.command.parts) : f.command;
  if (!stdin || stdin.length === 0) return bare;
  const words = stdin.map((p) => ('text' in p ? sh`${p.text}` : sh`${p.secret}`));
  return sh`printf '%s' ${joinCommands(words, ' ')} | { ${bare}
}`;
}

/** The batch script for some facts; exported for tests. */
export function batchScript(facts: Array<Fact<unknown>>, nonce: string): Command {
  const pieces: Command[] = [raw(`__rb_d=$(mktemp -d) || exit 97\ntrap 'rm -rf "$__rb_d"' EXIT\n`)];
  facts.forEach((f, i) => {
    pieces.push(sh`( ${factScript(f)}
) >"$__rb_d/${raw(String(i))}.o" 2>"$__rb_d/${raw(String(i))}.e" </dev/null; echo $? >"$__rb_d/${raw(String(i))}.c"
`);
  });
  const mark = `@@RB-${nonce}@@`;
  pieces.push(
    raw(`for __rb_i in ${facts.map((_, i) => i).join(' ')}; do
printf '${mark} %s %s\\n' "$__rb_i" "$(cat "$__rb_d/$__rb_i.c")"; cat "$__rb_d/$__rb_i.o"
printf '\\n${mark} err\\n'; cat "$__rb_d/$__rb_i.e"; printf '\\n${mark} end\\n'
done
`),
  );
  return joinCommands(pieces, '');
}

/** Split the batch output back into one ExecResult per fact. */
export function parseBatch(host: string, facts: Array<Fact<unknown>>, stdout: string, nonce: string, durationMs: number): ExecResult[] {
  const mark = `@@RB-${nonce}@@`;
  const out: ExecResult[] = [];
  let pos = 0;
  for (let i = 0; i < facts.length; i++) {
    const head = stdout.indexOf(`${mark} ${i} `, pos);
    const headEnd = head < 0 ? -1 : stdout.indexOf('\n', head);
    const errMark = headEnd < 0 ? -1 : stdout.indexOf(`\n${mark} err\n`, headEnd);
    const endMark = errMark < 0 ? -1 : stdout.indexOf(`\n${mark} end\n`, errMark);
    if (endMark < 0) throw new RunbookError(`${host}: facts script output is incomplete at fact ${facts[i]!.name}`, ExitCode.stepFailed);
    const code = Number(stdout.slice(head + mark.length + String(i).length + 2, headEnd));
    out.push({
      host,
      command: facts[i]!.command.toString(),
      exitCode: Number.isFinite(code) ? code : null,
      stdout: maskSecrets(stdout.slice(headEnd + 1, errMark)),
      stderr: maskSecrets(stdout.slice(errMark + mark.length + 6, endMark)),
      durationMs,
      timedOut: false,
    });
    pos = endMark + mark.length + 6;
  }
  return out;
}

/** Run the facts of one host and become user in one round trip. */
export async function runFactBatch(exec: Executor, host: string, become: boolean | string | undefined, facts: Array<Fact<unknown>>, timeoutSec: number): Promise<ExecResult[]> {
  if (facts.length === 0) return [];
  const nonce = randomBytes(6).toString('hex');
  const opts: ExecOptions = { timeoutSec };
  if (become !== undefined && become !== false) opts.become = become;
  const res = await exec.exec(host, batchScript(facts, nonce), opts);
  if (res.exitCode !== 0) {
    const why = res.timedOut ? `timed out after ${timeoutSec}s` : `exit code ${res.exitCode}`;
    throw new RunbookError(`${host}: reading facts ${facts.map((f) => f.name).join(', ')} failed (${why})${res.stderr.trim() ? `: ${res.stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`, ExitCode.stepFailed);
  }
  return parseBatch(host, facts, res.stdout, nonce, res.durationMs);
}

/**
 * Read a whole fact map for `host`: facts grouped by (target host, become), one batch each, the
 * batches in parallel. A fact's own become wins over the step's.
 */
export async function gatherFacts<F>(exec: Executor, host: string, stepBecome: boolean | string | undefined, map: FactMap<F>, timeoutSec = 120): Promise<F> {
  const groups = new Map<string, { host: string; become: boolean | string | undefined; keys: string[]; facts: Array<Fact<unknown>> }>();
  for (const [key, src] of Object.entries(map) as Array<[string, FactSource<unknown>]>) {
    const target = isRemote(src) ? src.onHost : host;
    const f = isRemote(src) ? src.fact : src;
    const become = f.become ?? stepBecome;
    const gk = `${target}\0${String(become ?? '')}`;
    let g = groups.get(gk);
    if (!g) groups.set(gk, (g = { host: target, become, keys: [], facts: [] }));
    g.keys.push(key);
    g.facts.push(f);
  }
  const values: Record<string, unknown> = {};
  await Promise.all(
    [...groups.values()].map(async (g) => {
      const results = await runFactBatch(exec, g.host, g.become, g.facts, timeoutSec);
      results.forEach((r, i) => {
        const f = g.facts[i]!;
        try {
          values[g.keys[i]!] = f.parse(r);
        } catch (e) {
          throw new RunbookError(`${g.host}: fact ${f.name}: ${(e as Error).message}`, ExitCode.stepFailed, { cause: e });
        }
      });
    }),
  );
  return values as F;
}
