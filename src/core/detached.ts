/**
 * Detached remote jobs: a command that must outlive the SSH connection (a clone, a drill's
 * self-undoing fault) runs under a small supervisor on the host, in a session of its own, which
 * records its PID, output and exit status under a known directory:
 *
 *   root:        /var/lib/runbook/jobs/<id>/
 *   other users: ${XDG_STATE_HOME:-$HOME/.local/state}/runbook/jobs/<id>/
 *
 *   cmd      the command (display form, secrets masked; a job never holds a secret)
 *   pid      the supervisor's PID (= the job's process group and session)
 *   start    the PID's start time (/proc/PID/stat field 22), so a reused PID is not taken for it
 *   started  ISO time it started;  out  stdout+stderr;  exit  its exit status, written last
 *   ended    ISO time it ended
 *
 * A job's id is chosen by its caller and is stable across runs (e.g. one per data directory), so
 * a re-run or `--resume` finds the job a killed run started and waits for it (reattaches) instead
 * of starting a second one. Starting a job whose id is still running reattaches to it.
 */
import { fact } from '../engine/define.js';
import type { JobAction } from '../engine/actions.js';
import type { Fact } from '../engine/types.js';
import { UnreachableError } from '../errors.js';
import { type Command, raw, sh } from '../shell/command.js';
import { quoteWord } from '../shell/quote.js';
import { maskSecrets } from '../shell/secret.js';
import { CLOSED_BY_RUNBOOK, CommandFailedError, type ExecOptions, type ExecResult } from '../transport/types.js';

/** How a job talks to its host: the step's exec (its become applies), never failing on exit codes. */
export type JobExec = (command: Command, options?: ExecOptions) => Promise<ExecResult>;

export type JobState =
  | { state: 'absent'; id: string }
  | { state: 'running'; id: string; pid: number; startedAt: string; command: string }
  | { state: 'exited'; id: string; exitCode: number; startedAt: string; endedAt: string; command: string }
  /** A PID was recorded, no exit status, and the process is gone (host rebooted, supervisor killed -9). */
  | { state: 'lost'; id: string; pid: number; startedAt: string; command: string };

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$/;

export function checkJobId(id: string): string {
  if (!ID.test(id)) throw new TypeError(`detached job id ${JSON.stringify(id)}: letters, digits, . _ - only`);
  return id;
}

/** A stable job id from free text (e.g. `pg-clone` + a data directory path). */
export function jobId(...parts: string[]): string {
  return checkJobId(
    parts
      .join('-')
      .replace(/[^A-Za-z0-9._-]+/g, '-')
      .replace(/-+/g, '-')
      .replace(/^[-.]+|-+$/g, '')
      .slice(0, 120),
  );
}

/** Shell lines that set $d to the job's directory (by effective user). */
function jobDir(id: string): Command {
  return sh`if [ "$(id -u)" = 0 ]; then __rb_jobs=/var/lib/runbook/jobs; else __rb_jobs="\${XDG_STATE_HOME:-$HOME/.local/state}/runbook/jobs"; fi
d="$__rb_jobs"/${checkJobId(id)}`;
}

// The PID's start time: field 22 of /proc/PID/stat, counted after the ") " that ends the name.
const START_OF = `__rb_start() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }`;

/** Prints key=value lines describing the job; exit 0 always. */
function statusScript(id: string): Command {
  return sh`${jobDir(id)}
${raw(START_OF)}
if [ ! -d "$d" ] || [ ! -f "$d/pid" ]; then echo state=absent; exit 0; fi
echo "pid=$(cat "$d/pid")"
echo "started=$(cat "$d/started" 2>/dev/null)"
echo "cmd=$(head -n 1 "$d/cmd" 2>/dev/null)"
__rb_exited() { echo state=exited; echo "exit=$(cat "$d/exit")"; echo "ended=$(cat "$d/ended" 2>/dev/null)"; exit 0; }
[ -f "$d/exit" ] && __rb_exited
p=$(cat "$d/pid")
if kill -0 "$p" 2>/dev/null && [ "$(__rb_start "$p")" = "$(cat "$d/start" 2>/dev/null)" ]; then echo state=running; exit 0; fi
# The job may have written its exit status and ended between the first look and kill -0.
[ -f "$d/exit" ] && __rb_exited
echo state=lost`;
}

export function parseJobState(id: string, stdout: string): JobState {
  const kv = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0 && !kv.has(line.slice(0, i))) kv.set(line.slice(0, i), line.slice(i + 1));
  }
  const state = kv.get('state');
  const pid = Number(kv.get('pid'));
  const startedAt = kv.get('started') ?? '';
  const command = kv.get('cmd') ?? '';
  switch (state) {
    case 'running':
      return { state, id, pid, startedAt, command };
    case 'lost':
      return { state, id, pid, startedAt, command };
    case 'exited': {
      const code = Number(kv.get('exit'));
      return { state, id, exitCode: Number.isInteger(code) ? code : 255, startedAt, endedAt: kv.get('ended') ?? '', command };
    }
    default:
      return { state: 'absent', id };
  }
}

/** The job's state as a fact (never cached: it changes by itself). Use it in a step's gather. */
export function jobFact(id: string, become: boolean | string = true): Fact<JobState> {
  return fact({
    name: `job.${id}`,
    become,
    cache: false,
    command: statusScript(id),
    parse: (r) => {
      if (r.exitCode !== 0) throw new Error(`detached job ${id}: status probe failed: ${r.stderr.trim()}`);
      return parseJobState(id, r.stdout);
    },
  });
}

export interface StartOptions {
  /** Killed (TERM, KILL 10 s later) after this long. */
  timeoutSec?: number;
}

/**
 * Start `command` detached, or report the job already running under this id (nothing new starts).
 * Prints the job's state lines (as statusScript) afterwards.
 */
export function startJobCommand(id: string, command: Command, o: StartOptions = {}): Command {
  if (command.hasSecrets || command.stdin) throw new TypeError(`detached job ${id}: a detached command cannot take secrets or stdin (they would have to be stored on the host)`);
  const inner = o.timeoutSec !== undefined ? sh`timeout -k 10 ${Math.max(1, Math.ceil(o.timeoutSec))} sh -c ${command.toString()}` : command;
  // The supervisor: own session (setsid), records its PID first, the exit status last (rename).
  const supervisor = sh`d=$1
echo $$ > "$d/pid.tmp"
sed 's/.*) //' "/proc/$$/stat" | cut -d' ' -f20 > "$d/start"
mv "$d/pid.tmp" "$d/pid"
( ${inner} ) > "$d/out" 2>&1 < /dev/null
echo $? > "$d/exit.tmp"
date -u +%Y-%m-%dT%H:%M:%SZ > "$d/ended"
mv "$d/exit.tmp" "$d/exit"`;
  return sh`${jobDir(id)}
${raw(START_OF)}
if [ -f "$d/pid" ] && [ ! -f "$d/exit" ] && kill -0 "$(cat "$d/pid")" 2>/dev/null && [ "$(__rb_start "$(cat "$d/pid")")" = "$(cat "$d/start" 2>/dev/null)" ]; then
  echo reattached=1
else
  mkdir -p "$__rb_jobs" && chmod 700 "$__rb_jobs" && rm -rf "$d" && mkdir -m 700 "$d" || exit 1
  printf '%s\\n' ${maskSecrets(command.toString()).replace(/\n/g, ' ')} > "$d/cmd"
  date -u +%Y-%m-%dT%H:%M:%SZ > "$d/started"
  setsid sh -c ${supervisor.toString()} runbook-job "$d" < /dev/null > /dev/null 2>&1 &
  i=0; while [ ! -f "$d/pid" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
fi
${statusScript(id)}`;
}

/** New output of the job from byte `offset` on (at most `max` bytes), then its state lines. */
function pollScript(id: string, offset: number, max: number): Command {
  return sh`${jobDir(id)}
if [ -f "$d/out" ]; then echo "size=$(wc -c < "$d/out")"; fi
echo --runbook-out--
[ -f "$d/out" ] && tail -c +${offset + 1} "$d/out" | head -c ${max}
echo
echo --runbook-end--
${statusScript(id)}`;
}

/** Kill the job's whole process group (TERM, then KILL after 5 s) and wait until it is gone. */
export function cancelJobCommand(id: string): Command {
  return sh`${jobDir(id)}
[ -f "$d/pid" ] && [ ! -f "$d/exit" ] || exit 0
p=$(cat "$d/pid")
kill -TERM -"$p" 2>/dev/null
i=0; while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
kill -KILL -"$p" 2>/dev/null
true`;
}

/** Forget a finished job's record (its output goes with it). */
export function clearJobCommand(id: string): Command {
  return sh`${jobDir(id)}
if [ -f "$d/pid" ] && [ ! -f "$d/exit" ] && kill -0 "$(cat "$d/pid")" 2>/dev/null; then echo "job ${id} is running" >&2; exit 1; fi
rm -rf "$d"`;
}

export interface WaitOptions {
  /** Give up waiting (the job keeps running) after this long. Default: 1 h. */
  timeoutMs?: number;
  /** Poll interval. Default 1 s. */
  intervalMs?: number;
  /** New output as it arrives. */
  onOutput?: (chunk: string) => void;
  /** How long a lost connection may take to come back before the wait gives up. Default 30 s. */
  reconnectMs?: number;
}

export interface JobResult {
  id: string;
  exitCode: number;
  /** The last 4 KB of its output. */
  outputTail: string;
  /** It was already running (or already done) when we came: started by an earlier run. */
  reattached: boolean;
}

/** Start (or reattach to) a job; does not wait. */
export async function startDetached(x: JobExec, id: string, command: Command, o: StartOptions = {}): Promise<{ state: JobState; reattached: boolean }> {
  const r = await x(startJobCommand(id, command, o), { check: false });
  if (r.exitCode !== 0) throw new CommandFailedError(r, `cannot start detached job ${id}`);
  const state = parseJobState(id, r.stdout);
  if (state.state === 'absent') throw new Error(`detached job ${id}: the supervisor did not record a PID (${r.stderr.trim() || 'no message'})`);
  return { state, reattached: /^reattached=1$/m.test(r.stdout) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Wait for a job to end; its output streams to onOutput. A connection lost meanwhile is given
 * `reconnectMs` to come back (the job runs on regardless); after that the wait throws
 * UnreachableError saying the job still runs and how to reattach.
 */
export async function waitDetached(x: JobExec, id: string, o: WaitOptions = {}): Promise<Omit<JobResult, 'reattached'>> {
  const interval = o.intervalMs ?? 1000;
  const deadline = Date.now() + (o.timeoutMs ?? 3_600_000);
  let offset = 0;
  let tail = '';
  let lostSince: number | undefined;
  for (;;) {
    let r: ExecResult;
    try {
      r = await x(pollScript(id, offset, 1 << 20), { check: false, timeoutSec: 30 });
      lostSince = undefined;
    } catch (error) {
      if (!(error instanceof UnreachableError)) throw error;
      lostSince ??= Date.now();
      if (Date.now() - lostSince > (o.reconnectMs ?? 30_000))
        throw new UnreachableError(error.host, `${error.reason}; detached job ${id} keeps running on the host: --resume (or a re-run) reattaches to it`, { cause: error });
      await sleep(interval);
      continue;
    }
    const start = r.stdout.indexOf('--runbook-out--\n');
    const end = r.stdout.lastIndexOf('\n--runbook-end--\n');
    if (start >= 0 && end >= start) {
      const chunk = r.stdout.slice(start + '--runbook-out--\n'.length, end);
      if (chunk) {
        offset += Buffer.byteLength(chunk);
        tail = (tail + chunk).slice(-4096);
        o.onOutput?.(chunk);
      }
    }
    const state = parseJobState(id, end >= 0 ? r.stdout.slice(end) : r.stdout);
    if (state.state === 'exited') {
      // The last output may have been written after this poll's read.
      const sizeLine = /^size=(\d+)$/m.exec(r.stdout);
      if (sizeLine && Number(sizeLine[1]) > offset) continue;
      return { id, exitCode: state.exitCode, outputTail: tail };
    }
    if (state.state === 'absent') throw new Error(`detached job ${id}: no record on the host (it was cleared, or never started)`);
    if (state.state === 'lost') throw new Error(`detached job ${id}: its supervisor (PID ${state.pid}) is gone without an exit status (host rebooted or process killed)`);
    if (Date.now() > deadline) throw new Error(`detached job ${id} still runs after ${Math.round((o.timeoutMs ?? 3_600_000) / 1000)} s (PID ${state.pid}); it keeps running`);
    await sleep(interval);
  }
}

/** Start or reattach, then wait; a non-zero exit of the job is an error naming its output. */
export async function runDetached(x: JobExec, id: string, command: Command, o: StartOptions & WaitOptions & { log?: (line: string) => void; attachOnly?: boolean } = {}): Promise<JobResult> {
  let reattached = true;
  if (o.attachOnly) {
    // Planned as a reattach: the job may have ended since the plan read it, and must then be
    // waited for (its result read), never started a second time over its finished work.
    o.log?.(`reattaching to detached job ${id} (started by an earlier run)`);
  } else {
    // The connection can die after the host started the job but before its PID came back: the job
    // may run on, so the error says how to find it again, as a loss during the wait does.
    const started = await startDetached(x, id, command, o).catch((error: unknown) => {
      if (error instanceof UnreachableError && error.reason !== CLOSED_BY_RUNBOOK)
        throw new UnreachableError(error.host, `${error.reason}; detached job ${id} may have started and keep running on the host: --resume (or a re-run) reattaches to it`, { cause: error });
      throw error;
    });
    reattached = started.reattached;
    const { state } = started;
    if (reattached && state.state === 'running') o.log?.(`reattached to detached job ${id} (PID ${state.pid}, started ${state.startedAt})`);
    else if (state.state === 'running') o.log?.(`started detached job ${id} (PID ${state.pid})`);
  }
  const done = await waitDetached(x, id, o);
  if (done.exitCode !== 0) {
    const lines = maskSecrets(done.outputTail).trim().split(/[\r\n]+/).slice(-5).join('\n');
    throw new Error(`detached job ${id} (${maskSecrets(command.toString())}) failed with exit code ${done.exitCode}${lines ? `:\n${lines}` : ''}`);
  }
  return { ...done, reattached };
}

/**
 * The plan action of a detached job: start (or reattach to) `command` under id `id`, stream its
 * progress (at most one line a second), wait for its end; a non-zero exit fails the step with the
 * job's last lines. `runbook plan` shows `[job] ID: COMMAND`. `attachOnly`: the plan found the job
 * running (`command` is then the one it recorded): wait for it, never start one.
 */
export function detachedJob(id: string, command: Command, o: StartOptions & Omit<WaitOptions, 'onOutput'> & { host?: string; attachOnly?: boolean } = {}): JobAction {
  const { host, ...opts } = o;
  return {
    kind: 'job',
    ...(host ? { host } : {}),
    id,
    command,
    run: async (io) => {
      let last = 0;
      await runDetached((c, eo) => io.exec(c, { ...eo, check: false }), id, command, {
        ...opts,
        log: (line) => io.log(line),
        // Progress bars rewrite one line with \r: the last complete one of each chunk.
        onOutput: (chunk) => {
          const line = chunk.split(/[\r\n]/).filter((x) => x.trim()).pop();
          if (line && Date.now() - last > 1000) {
            last = Date.now();
            io.log(line.trim());
          }
        },
      });
    },
  };
}

/** For messages: a quoted display of the job's directory. */
export function jobDirDisplay(id: string, root = true): string {
  return root ? `/var/lib/runbook/jobs/${quoteWord(id)}` : `~/.local/state/runbook/jobs/${quoteWord(id)}`;
}
