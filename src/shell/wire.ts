/**
 * The one path from a Command to the bytes sent over SSH. Secrets never enter a command line
 * (where `ps` would show them): each is read from stdin into a shell variable by a preamble, and
 * the script refers to the variable. A become password goes first on stdin, for `sudo -S`.
 */
import { type Command, type CommandPart } from './command.js';
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

export function toWire(command: Command, options: WireOptions = {}): WireCommand {
  const secrets: string[] = [];
  const script = command.parts.map((p) => partToScript(p, secrets)).join('');
  const preamble = secrets.map((_, i) => `IFS= read -r __rb_s${i} || exit ${PREAMBLE_FAILED}\n`).join('');
  // The script sits inside { } on its own lines so that a trailing comment cannot swallow the brace.
  let inner = preamble ? `${preamble}{\n${script}\n}` : script;
  const withPassword = options.become?.password;
  if (withPassword) inner = `printf '%s\\n' ${quoteWord(BECOME_STARTED)} >&2\n${inner}`;

  let line = `sh -c ${quoteWord(inner)}`;
  if (options.timeoutSec !== undefined) {
    const t = Math.max(1, Math.ceil(options.timeoutSec));
    line = `timeout -k 5 ${t} ${line}`;
  }
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
  let stdin = secrets.map((s) => lineOf(s, 'secret')).join('');
  if (command.stdin) stdin += command.stdin.map((p) => ('text' in p ? p.text : p.secret.reveal())).join('');
  return becomePassword === undefined ? { line, stdin } : { line, stdin, becomePassword };
}

function partToScript(part: CommandPart, secrets: string[]): string {
  if ('text' in part) return part.text;
  secrets.push(part.secret.reveal());
  return `"$__rb_s${secrets.length - 1}"`;
}

function lineOf(value: string, what: string): string {
  if (/[\n\r]/.test(value)) throw new TypeError(`a ${what} cannot contain a line break`);
  return `${value}\n`;
}
