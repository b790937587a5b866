/**
 * The one path from a Command to the bytes sent over SSH. Secrets never enter a command line
 * (where `ps` would show them): each is read from stdin into a shell variable by a preamble, and
 * the script refers to the variable. A become password goes first on stdin, for `sudo -S`.
 */
import { type Command, type CommandPart } from './command.js';
import { BadInputError } from '../errors.js';
import { quoteWord } from './quote.js';
import type { Secret } from './secret.js';

export interface WireOptions {
  /** Run as another user through sudo. */
  become?: { user?: string; password?: Secret };
  /** Seconds after which the remote side kills the command (TERM, then KILL 5 s later). */
  timeoutSec?: number;
}

export interface WireCommand {
  /** The line handed to the remote login shell. Holds no secret. */
  line: string;
  /**
   * Bytes to write to the channel's stdin before closing it. With a become password: only once
   * BECOME_STARTED was seen on stderr, never before.
   */
  stdin: string;
  /**
   * With a become password: the line (password + newline) to write only when sudo prints
   * SUDO_PROMPT on stderr. sudo does not ask root or NOPASSWD users; a password written up front
   * would then be read by the command itself (as its first secret, or by `cat`).
   */
  becomePassword?: string;
}

/** Marker used as sudo's prompt so that a password request is recognised in stderr. */
export const SUDO_PROMPT = '[runbook:become-password]';
/** Exit code of our preamble when stdin ended before the secrets did. */
export const PREAMBLE_FAILED = 125;
/** Printed (with a newline) on stderr by the command under a password become once sudo let it run. */
export const BECOME_STARTED = '[runbook:become-started]';

/**
 * Written by the transport every HEARTBEAT_MS while a command runs; the watchdog reads them. Each
 * beat costs the host a fork of `timeout` and `head` per running command: every 2 s leaves 3 s of
 * slack in the 5 s watchdog window at half the processes of a beat per second.
 */
export const HEARTBEAT = 'h';
export const HEARTBEAT_MS = 2_000;
/** No heartbeat (and no EOF) for this long: the controller is gone, the command is killed. */
export const WATCHDOG_SEC = 5;
/**
 * One argument of execve holds at most 128 KiB on Linux (MAX_ARG_STRLEN), and the line is one
 * argument of the login shell: longer lines are refused here, not with ECONNRESET.
 */
export const MAX_LINE_BYTES = 120_000;

/**
 * Kills the command's process group once the channel's stdin ends (channel closed, runbook
 * killed) or stays silent past WATCHDOG_SEC (a dead link): ssh2's signals do not reach a process
 * without a pty, and sshd kills nothing when a session without a pty closes.
 */
const WATCHDOG = [
  `while b=$(timeout --foreground ${WATCHDOG_SEC} head -c 1 2>/dev/null) && [ -n "$b" ]; do :; done`,
  `kill -TERM -"$1" 2>/dev/null; sleep 2; kill -KILL -"$1" 2>/dev/null`,
].join('\n');

/** A value no command can carry (NUL, a line break in a secret, a line too long): bad input, exit 2. */
export class WireError extends BadInputError {}

/**
 * What a transport writes to the command's stdin: its input, then a heartbeat every HEARTBEAT_MS
 * (never EOF: EOF tells the watchdog the controller is gone). Call the result once the command ended.
 */
export function feedStdin(stream: { write(data: string): unknown; readonly writable: boolean }, stdin: string): () => void {
  if (stdin) stream.write(stdin);
  const timer = setInterval(() => {
    if (stream.writable) stream.write(HEARTBEAT);
  }, HEARTBEAT_MS);
  timer.unref();
  return () => clearInterval(timer);
}

export function toWire(command: Command, options: WireOptions = {}): WireCommand {
  const secrets: string[] = [];
  const script = command.parts.map((p) => partToScript(p, secrets)).join('');
  const preamble = secrets.map((_, i) => `IFS= read -r __rb_s${i} || exit ${PREAMBLE_FAILED}\n`).join('');
  // The script sits inside { } on its own lines so that a trailing comment cannot swallow the brace.
  const inner = preamble ? `${preamble}{\n${script}\n}` : script;
  const withPassword = options.become?.password;

  let stdin = secrets.map((s) => lineOf(s, 'secret')).join('');
  if (command.stdin) stdin += command.stdin.map((p) => ('text' in p ? p.text : p.secret.reveal())).join('');
  if (inner.includes('\0') || stdin.includes('\0')) throw new WireError(`${command.toString().slice(0, 80)}…: holds a NUL byte, which no command line or shell variable can carry`);

  let run = `sh -c ${quoteWord(inner)}`;
  if (options.timeoutSec !== undefined) run = `timeout -k 5 ${Math.max(1, Math.ceil(options.timeoutSec))} ${run}`;
  // The command in a session of its own (its group is what the watchdog kills); its stdin is read
  // whole first (a shell variable: never a file), so the channel's stdin then carries heartbeats only.
  const n = Buffer.byteLength(stdin);
  const wrapper = [
    withPassword ? `printf '%s\\n' ${quoteWord(BECOME_STARTED)} >&2` : '',
    'exec 3<&0',
    n > 0 ? `__rb_in=$(head -c ${n}; echo x)` : '',
    n > 0 ? `printf %s "\${__rb_in%x}" | setsid ${run} 3<&- &` : `setsid ${run} 3<&- </dev/null &`,
    '__rb_c=$!',
    n > 0 ? 'unset __rb_in' : '',
    `setsid sh -c ${quoteWord(WATCHDOG)} runbook-watchdog "$__rb_c" <&3 >/dev/null 2>&1 &`,
    '__rb_w=$!',
    'exec 3<&-',
    'wait "$__rb_c"; __rb_rc=$?',
    'kill -KILL -"$__rb_w" 2>/dev/null',
    // killed by a signal: die by the same one, so the channel reports the signal as a plain exec would
    'if [ "$__rb_rc" -gt 128 ] && [ "$__rb_rc" -lt 160 ]; then trap - HUP INT TERM; kill -$((__rb_rc - 128)) $$; fi',
    'exit "$__rb_rc"',
  ]
    .filter(Boolean)
    .join('\n');

  let line = `sh -c ${quoteWord(wrapper)}`;
  let becomePassword: string | undefined;
  if (options.become) {
    const user = quoteWord(options.become.user ?? 'root');
    if (withPassword) {
      line = `sudo -k -S -p ${quoteWord(SUDO_PROMPT)} -u ${user} -- ${line}`;
      becomePassword = lineOf(withPassword.reveal(), 'become password');
    } else {
      line = `sudo -n -u ${user} -- ${line}`;
    }
  }
  const bytes = Buffer.byteLength(line);
  if (bytes > MAX_LINE_BYTES)
    throw new WireError(`${command.toString().slice(0, 80)}…: the command line is ${formatBytes(bytes)}; at most ${formatBytes(MAX_LINE_BYTES)} fit in one command: pass large data on stdin (Command.withStdin)`);
  return becomePassword === undefined ? { line, stdin } : { line, stdin, becomePassword };
}

function formatBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${Math.round(n / 1024)} KB`;
}

function partToScript(part: CommandPart, secrets: string[]): string {
  if ('text' in part) return part.text;
  secrets.push(part.secret.reveal());
  return `"$__rb_s${secrets.length - 1}"`;
}

function lineOf(value: string, what: string): string {
  if (/[\n\r]/.test(value)) throw new WireError(`a ${what} cannot contain a line break`);
  return `${value}\n`;
}
