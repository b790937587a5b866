/**
 * Gathering: every fact a step needs on one host, run as ONE remote script per (host, become user)
 * instead of one round trip per fact. Each fact runs in its own subshell with stdin closed (or fed
 * its own stdin); markers carrying a random nonce (so fact output cannot forge them) are printed
 * around it on stdout and stderr, the end marker on stdout with its exit code.
 */
import { randomBytes } from 'node:crypto';
import { Command, joinCommands, raw, sh } from '../shell/command.js';
import { maskSecrets } from '../shell/secret.js';
import type { ExecOptions, ExecResult } from '../transport/types.js';
import type { Fact, FactGroup, FactInput, FactMap, FactSource, RemoteFact } from './types.js';
import { RunbookError, ExitCode, UnreachableError } from '../errors.js';
import { FactCache } from './context.js';

export interface Executor {
  exec(host: string, command: Command, options?: ExecOptions): Promise<ExecResult>;
}

export function isRemote<T>(f: FactSource<T>): f is RemoteFact<T> {
  return 'onHost' in f && 'fact' in f;
}

export function isGroup(f: FactInput<unknown>): f is FactGroup<Record<string, unknown>> {
  return 'each' in f && typeof (f as FactGroup<unknown>).each === 'object';
}

/** Every fact source of a map, groups opened: [key, sub-key or undefined, source]. */
export function factEntries(map: FactMap<unknown>): Array<[string, string | undefined, FactSource<unknown>]> {
  type Entry = [string, string | undefined, FactSource<unknown>];
  return (Object.entries(map) as Array<[string, FactInput<unknown>]>).flatMap(([k, src]): Entry[] =>
    isGroup(src) ? (Object.entries(src.each) as Array<[string, FactSource<unknown>]>).map(([sub, f]): Entry => [k, sub, f]) : [[k, undefined, src as FactSource<unknown>]],
  );
}

/**
 * Commands that may share ONE process with others of the same session key in a batch (several
 * SQL queries against one server through one psql: src/modules/postgres/psql-session.ts). The
 * module that builds such a command registers it; the batch then runs the members of a key as
 * one command, in the order asked, and each member gets its own result back (its own output,
 * errors and exit code: one failing member must not hide the others). Probes (they may write)
 * are never shared.
 */
export interface FactSession {
  /** Members with the same key (in one batch, so one host and user) may run as one command. */
  key: string;
  /** The one command for `members` (this session among them), and each member's result from its result. */
  combine(members: FactSession[], nonce: string): { command: Command; split(result: ExecResult): Array<Pick<ExecResult, 'exitCode' | 'stdout' | 'stderr'>> };
}

const sessions = new WeakMap<Command, FactSession>();

/** Mark `command` as one that may share a process with others of `session.key` (see FactSession). */
export function sharingSession(command: Command, session: FactSession): Command {
  sessions.set(command, session);
  return command;
}

/**
 * The facts of a batch as the script runs them: the members of a session key (two or more) as one
 * piece at the place of the first, every other fact as it is; `expand` gives the results back in
 * the facts' order.
 */
export function sessionPieces(facts: Array<Fact<unknown>>, nonce: string): { pieces: Array<Fact<unknown>>; expand: (results: ExecResult[]) => ExecResult[] } {
  const byKey = new Map<string, number[]>();
  facts.forEach((f, i) => {
    // A probe may write: it keeps a process of its own, where nothing after a failing statement runs.
    const s = f.probe ? undefined : sessions.get(f.command);
    if (!s) return;
    let list = byKey.get(s.key);
    if (!list) byKey.set(s.key, (list = []));
    list.push(i);
  });
  const shared = [...byKey.values()].filter((m) => m.length > 1);
  if (shared.length === 0) return { pieces: facts, expand: (r) => r };
  const groupOf = new Map<number, number[]>();
  for (const m of shared) for (const i of m) groupOf.set(i, m);
  const pieces: Array<Fact<unknown>> = [];
  const back: Array<{ members: number[]; split?: (r: ExecResult) => Array<Pick<ExecResult, 'exitCode' | 'stdout' | 'stderr'>> }> = [];
  facts.forEach((f, i) => {
    const m = groupOf.get(i);
    if (!m) {
      pieces.push(f);
      back.push({ members: [i] });
    } else if (m[0] === i) {
      const { command, split } = sessions.get(f.command)!.combine(m.map((j) => sessions.get(facts[j]!.command)!), nonce);
      pieces.push({ name: m.map((j) => facts[j]!.name).join(' + '), command, parse: (r) => r });
      back.push({ members: m, split });
    }
  });
  const expand = (results: ExecResult[]): ExecResult[] => {
    const out: ExecResult[] = new Array(facts.length);
    back.forEach((b, k) => {
      const r = results[k]!;
      if (!b.split) out[b.members[0]!] = r;
      else b.split(r).forEach((x, j) => (out[b.members[j]!] = { ...r, ...x, command: facts[b.members[j]!]!.command.toString() }));
    });
    return out;
  };
  return { pieces, expand };
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

/**
 * The batch script for some facts; exported for tests. Each fact runs as `( CMD ) </dev/null`
 * between markers printed (by the `printf` builtin: no extra exec) on both stdout and stderr; the
 * end marker carries the exit code. The newline printed before each end marker is stripped back by
 * parseBatch, so output without a trailing newline stays exact.
 */
export function batchScript(facts: Array<Fact<unknown>>, nonce: string): Command {
  const mark = `@@RB-${nonce}@@`;
  const pieces: Command[] = [];
  facts.forEach((f, i) => {
    pieces.push(raw(`printf '${mark} ${i}\\n'; printf '${mark} ${i}\\n' >&2\n`));
    pieces.push(sh`( ${factScript(f)}
) </dev/null
`);
    pieces.push(raw(`__rb_c=$?; printf '\\n${mark} end ${i} %s\\n' "$__rb_c"; printf '\\n${mark} end ${i}\\n' >&2\n`));
  });
  return joinCommands(pieces, '');
}

/** Fact i's text in one stream: between its start marker line and "\n<end marker>". */
function section(host: string, f: Fact<unknown>, text: string, mark: string, i: number, pos: number): { body: string; tail: number; next: number } {
  const startLine = `${mark} ${i}\n`;
  const head = text.indexOf(startLine, pos);
  const endMark = head < 0 ? -1 : text.indexOf(`\n${mark} end ${i}`, head + startLine.length);
  const lineEnd = endMark < 0 ? -1 : text.indexOf('\n', endMark + 1);
  if (lineEnd < 0) throw new RunbookError(`${host}: facts script output is incomplete at fact ${f.name}`, ExitCode.stepFailed);
  const tail = endMark + 1 + `${mark} end ${i}`.length;
  return { body: text.slice(head + startLine.length, endMark), tail, next: lineEnd + 1 };
}

/** Split the batch output (both streams) back into one ExecResult per fact. */
export function parseBatch(host: string, facts: Array<Fact<unknown>>, stdout: string, stderr: string, nonce: string, durationMs: number): ExecResult[] {
  const mark = `@@RB-${nonce}@@`;
  const out: ExecResult[] = [];
  let po = 0;
  let pe = 0;
  for (let i = 0; i < facts.length; i++) {
    const f = facts[i]!;
    const o = section(host, f, stdout, mark, i, po);
    const e = section(host, f, stderr, mark, i, pe);
    const codeText = stdout.slice(o.tail, o.next - 1);
    const code = /^ \d+$/.test(codeText) ? Number(codeText.slice(1)) : null;
    out.push({
      host,
      command: f.command.toString(),
      exitCode: code,
      stdout: maskSecrets(o.body),
      stderr: maskSecrets(e.body),
      durationMs,
      timedOut: false,
    });
    po = o.next;
    pe = e.next;
  }
  return out;
}

function batchFailed(host: string, facts: Array<Fact<unknown>>, res: ExecResult, timeoutSec: number): RunbookError {
  const why = res.timedOut ? `timed out after ${timeoutSec}s` : `exit code ${res.exitCode}`;
  return new RunbookError(`${host}: reading facts ${facts.map((f) => f.name).join(', ')} failed (${why})${res.stderr.trim() ? `: ${res.stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`, ExitCode.stepFailed);
}

interface Waiting {
  facts: Array<Fact<unknown>>;
  timeoutSec: number;
  resolve: (r: ExecResult[]) => void;
  reject: (e: unknown) => void;
}

/** Fact reads waiting for the next turn of the event loop, per executor and (host, become). */
const waiting = new WeakMap<Executor, Map<string, Waiting[]>>();
/** A coalesced script stays well under Linux's 128 KiB limit on one argument (sh -c SCRIPT). */
const MAX_COALESCED_CHARS = 48 * 1024;

/**
 * Run the facts of one host and become user in one round trip. Reads for the same host, user and
 * timeout that are asked for in the same turn of the event loop (the checks of one step on several hosts
 * reading each other's facts, a step's own batch beside another host's remote facts) go out as
 * ONE script, each request's facts kept together and in the order asked; each request gets its
 * own results, or its own error when the script as a whole failed.
 */
export function runFactBatch(exec: Executor, host: string, become: boolean | string | undefined, facts: Array<Fact<unknown>>, timeoutSec: number): Promise<ExecResult[]> {
  if (facts.length === 0) return Promise.resolve([]);
  let byTarget = waiting.get(exec);
  if (!byTarget) waiting.set(exec, (byTarget = new Map()));
  // Same timeout too: a short read (a drill's poll) never waits on a longer one's allowance.
  const key = `${host}\0${become === undefined || become === false ? '' : String(become)}\0${timeoutSec}`;
  return new Promise((resolve, reject) => {
    let queue = byTarget.get(key);
    if (!queue) {
      const q: Waiting[] = (queue = []);
      byTarget.set(key, q);
      setImmediate(() => {
        byTarget.delete(key);
        for (const group of coalesce(q)) void runGroup(exec, host, become, group);
      });
    }
    queue.push({ facts, timeoutSec, resolve, reject });
  });
}

/** Requests in order, cut into groups whose scripts stay under MAX_COALESCED_CHARS. */
function coalesce(queue: Waiting[]): Waiting[][] {
  const groups: Waiting[][] = [];
  let size = 0;
  for (const w of queue) {
    const chars = w.facts.reduce((n, f) => n + f.command.toString().length + 200, 0);
    const last = groups[groups.length - 1];
    if (last && size + chars <= MAX_COALESCED_CHARS) {
      last.push(w);
      size += chars;
    } else {
      groups.push([w]);
      size = chars;
    }
  }
  return groups;
}

/** One script for the group's facts; each request resolves to its own slice of the results. */
async function runGroup(exec: Executor, host: string, become: boolean | string | undefined, group: Waiting[]): Promise<void> {
  const timeoutSec = group[0]!.timeoutSec;
  const all = group.flatMap((w) => w.facts);
  let results: ExecResult[];
  try {
    const nonce = randomBytes(6).toString('hex');
    const opts: ExecOptions = { timeoutSec };
    if (become !== undefined && become !== false) opts.become = become;
    const { pieces, expand } = sessionPieces(all, nonce);
    const res = await exec.exec(host, batchScript(pieces, nonce), opts);
    if (res.exitCode !== 0) {
      for (const w of group) w.reject(batchFailed(host, w.facts, res, timeoutSec));
      return;
    }
    results = expand(parseBatch(host, pieces, res.stdout, res.stderr, nonce, res.durationMs));
  } catch (e) {
    for (const w of group) w.reject(e);
    return;
  }
  let at = 0;
  for (const w of group) {
    w.resolve(results.slice(at, at + w.facts.length));
    at += w.facts.length;
  }
}

/** runFactBatch through the run's fact cache: only facts not cached are read (one batch). */
async function readBatch(exec: Executor, host: string, become: boolean | string | undefined, facts: Array<Fact<unknown>>, timeoutSec: number, cache?: FactCache): Promise<ExecResult[]> {
  if (!cache) return runFactBatch(exec, host, become, facts, timeoutSec);
  const generation = cache.generation;
  const keys = facts.map((f) => (f.cache === false && !f.readAhead ? undefined : FactCache.key(host, become, f.command)));
  const results: Array<ExecResult | undefined> = keys.map((k, i) => (k === undefined ? undefined : facts[i]!.cache === false ? cache.take(k) : cache.get(k)));
  const missing = facts.map((_, i) => i).filter((i) => results[i] === undefined);
  if (missing.length > 0) {
    const read = await runFactBatch(exec, host, become, missing.map((i) => facts[i]!), timeoutSec);
    read.forEach((r, j) => {
      const i = missing[j]!;
      results[i] = r;
      const k = keys[i];
      if (k !== undefined && facts[i]!.cache !== false) cache.store(k, r, generation);
    });
  }
  return results as ExecResult[];
}

type Key = [string, string | undefined];
interface Entry {
  key: Key;
  host: string;
  become: boolean | string | undefined;
  fact: Fact<unknown>;
  unreachable: ((reason: string) => unknown) | undefined;
}

/** The facts of a map, each with its target host and user (a fact's own become wins over the step's). */
export function entriesOf(host: string, stepBecome: boolean | string | undefined, map: FactMap<unknown>): Entry[] {
  return factEntries(map).map(([key, sub, src]) => {
    const f = isRemote(src) ? src.fact : src;
    return { key: [key, sub], host: isRemote(src) ? src.onHost : host, become: f.become ?? stepBecome, fact: f, unreachable: isRemote(src) ? src.unreachable : undefined };
  });
}

/** The record gatherFacts returns, filled as results come in. */
function factValues(map: FactMap<unknown>): { values: Record<string, unknown>; put: (k: Key, v: unknown) => void; parse: (e: Entry, r: ExecResult) => void } {
  const values: Record<string, unknown> = {};
  const put = ([k, sub]: Key, v: unknown) => {
    if (sub === undefined) values[k] = v;
    else ((values[k] ??= {}) as Record<string, unknown>)[sub] = v;
  };
  // A group is a record even with no member (no peer reachable, no sync defined): {} not undefined.
  for (const [key, src] of Object.entries(map) as Array<[string, FactInput<unknown>]>) if (isGroup(src)) values[key] = {};
  const parse = (e: Entry, r: ExecResult) => {
    try {
      put(e.key, e.fact.parse(r));
    } catch (err) {
      throw new RunbookError(`${e.host}: fact ${e.fact.name}: ${(err as Error).message}`, ExitCode.stepFailed, { cause: err });
    }
  };
  return { values, put, parse };
}

/**
 * A whole fact map from results read earlier (`found` gives a fact's result on its target host,
 * or undefined): undefined unless every fact is found, so a step never mixes reads of two moments.
 */
export function gatherFrom<F>(host: string, stepBecome: boolean | string | undefined, map: FactMap<F>, found: (target: string, become: boolean | string | undefined, f: Fact<unknown>) => ExecResult | undefined): F | undefined {
  const entries = entriesOf(host, stepBecome, map as FactMap<unknown>);
  const results = entries.map((e) => found(e.host, e.become, e.fact));
  if (results.some((r) => r === undefined)) return undefined;
  const v = factValues(map as FactMap<unknown>);
  entries.forEach((e, i) => v.parse(e, results[i]!));
  return v.values as F;
}

/**
 * Read a whole fact map for `host`: facts grouped by (target host, become), one batch each, the
 * batches in parallel. A fact's own become wins over the step's. With `cache` (check stage only),
 * facts an earlier check read with nothing applied since are reused.
 */
export async function gatherFacts<F>(exec: Executor, host: string, stepBecome: boolean | string | undefined, map: FactMap<F>, timeoutSec = 120, cache?: FactCache): Promise<F> {
  type Group = { host: string; become: boolean | string | undefined; entries: Entry[] };
  const groups = new Map<string, Group>();
  const v = factValues(map as FactMap<unknown>);
  for (const e of entriesOf(host, stepBecome, map as FactMap<unknown>)) {
    const gk = `${e.host}\0${String(e.become ?? '')}`;
    let g = groups.get(gk);
    if (!g) groups.set(gk, (g = { host: e.host, become: e.become, entries: [] }));
    g.entries.push(e);
  }
  await Promise.all(
    [...groups.values()].map(async (g) => {
      let results: ExecResult[];
      try {
        results = await readBatch(exec, g.host, g.become, g.entries.map((e) => e.fact), timeoutSec, cache);
      } catch (e) {
        // Facts that say what "unreachable" means get that value; any other fact fails as before.
        if (!(e instanceof UnreachableError) || g.entries.some((x) => x.unreachable === undefined)) throw e;
        for (const x of g.entries) v.put(x.key, x.unreachable!(e.reason));
        return;
      }
      results.forEach((r, i) => v.parse(g.entries[i]!, r));
    }),
  );
  return v.values as F;
}
