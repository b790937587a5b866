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
  /** Bytes to write to the channel's stdin before closing it. */
  stdin: string;
}

/** Marker used as sudo's prompt so that a password request is recognised in stderr. */
export const SUDO_PROMPT = '[runbook:become-password]';
/** Exit code of our preamble when stdin ended before the secrets did. */
export const PREAMBLE_FAILED = 125;

export function toWire(command: Command, options: WireOptions = {}): WireCommand {
  const secrets: string[] = [];
  const script = command.parts.map((p) => partToScript(p, secrets)).join('');
  const preamble = secrets.map((_, i) => `IFS= read -r __rb_s${i} || exit ${PREAMBLE_FAILED}\n`).join('');
  // The script sits inside { } on its own lines so that a trailing comment cannot swallow the brace.
  const inner = preamble ? `${preamble}{\n${script}\n}` : script;

  let line = `sh -c ${quoteWord(inner)}`;
  if (options.timeoutSec !== undefined) {
    const t = Math.max(1, Math.ceil(options.timeoutSec));
    line = `timeout -k 5 ${t} ${line}`;
  }
  let stdin = '';
  if (options.become) {
    const user = quoteWord(options.become.user ?? 'root');
    if (options.become.password) {
      line = `sudo -k -S -p ${quoteWord(SUDO_PROMPT)} -u ${user} -- ${line}`;
      stdin += lineOf(options.become.password.reveal(), 'become password');
    } else {
      line = `sudo -n -u ${user} -- ${line}`;
    }
  }
  stdin += secrets.map((s) => lineOf(s, 'secret')).join('');
  if (command.stdin) stdin += command.stdin.map((p) => ('text' in p ? p.text : p.secret.reveal())).join('');
  return { line, stdin };
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
