/**
 * Commands that cannot be mis-quoted. The transport accepts only Command values, and only the
 * `sh` tagged template (or the greppable `raw()`) makes one: every interpolated value is quoted
 * as one POSIX word, arrays become several words, nested Commands compose unquoted.
 */
import { quoteWord } from './quote.js';
import { MASK, Secret } from './secret.js';

/** A piece of a command: literal shell text, or a secret to be passed without entering argv. */
export type CommandPart = { text: string } | { secret: Secret };

/** What may stand in `${…}` inside sh``. */
export type ShellValue = string | number | bigint | Secret | Command | readonly ShellValue[];

export class Command {
  /** @internal use sh`` or raw() */
  constructor(
    readonly parts: readonly CommandPart[],
    /** Bytes for the command's stdin; secrets in it are real on the wire, masked in display. */
    readonly stdin?: readonly CommandPart[],
  ) {}

  /** The same command with this text (which may hold secrets) on its stdin. */
  withStdin(input: string | Secret | StdinText): Command {
    const parts: CommandPart[] =
      typeof input === 'string' ? [{ text: input }] : input instanceof Secret ? [{ secret: input }] : [...input.parts];
    return new Command(this.parts, parts);
  }

  get hasSecrets(): boolean {
    return [...this.parts, ...(this.stdin ?? [])].some((p) => 'secret' in p);
  }

  /** Display form: secrets masked. Safe to log, report, journal. */
  toString(): string {
    const line = display(this.parts);
    if (!this.stdin) return line;
    return `${line} <<'STDIN'\n${display(this.stdin)}\nSTDIN`;
  }

  toJSON(): string {
    return this.toString();
  }
}

/** Text for a command's stdin, possibly holding secrets (built by sql`` or stdinText()). */
export interface StdinText {
  readonly parts: readonly CommandPart[];
}

function display(parts: readonly CommandPart[]): string {
  return parts.map((p) => ('text' in p ? p.text : MASK)).join('');
}

function appendValue(out: CommandPart[], value: unknown, index: number): void {
  if (value instanceof Command) {
    if (value.stdin) throw new TypeError(`sh: value #${index} is a Command with stdin; it cannot be nested`);
    out.push(...value.parts);
    return;
  }
  if (value instanceof Secret) {
    out.push({ secret: value });
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      if (i > 0) out.push({ text: ' ' });
      appendValue(out, item, index);
    });
    return;
  }
  if (typeof value === 'string') {
    out.push({ text: quoteWord(value) });
    return;
  }
  if (typeof value === 'number' || typeof value === 'bigint') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError(`sh: value #${index} is ${value}`);
    out.push({ text: String(value) });
    return;
  }
  const what = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  throw new TypeError(`sh: value #${index} is ${what}; only strings, numbers, arrays, secrets and Commands can be interpolated`);
}

/** Build a shell command; every `${value}` is quoted as one word (arrays: one word each). */
export function sh(strings: TemplateStringsArray, ...values: ShellValue[]): Command {
  return new Command(templateParts(strings, values, appendValue));
}

/** Walk a tagged template: literal text as is, each value through `append` (which quotes it). */
export function templateParts<V>(
  strings: TemplateStringsArray,
  values: readonly V[],
  append: (out: CommandPart[], value: V, index: number) => void,
): CommandPart[] {
  const parts: CommandPart[] = [];
  strings.forEach((literal, i) => {
    if (literal) parts.push({ text: literal });
    if (i < values.length) append(parts, values[i]!, i);
  });
  return mergeText(parts);
}

/** The one escape hatch: shell text taken as is. Grep for `raw(` when auditing. */
export function raw(text: string): Command {
  if (typeof text !== 'string') throw new TypeError('raw: text must be a string');
  return new Command([{ text }]);
}

/**
 * A file path as one shell word. A leading `~user/` (or `~/`) stays unquoted so the remote shell
 * expands it to that user's home (`~postgres/.pgpass`); everything after it is quoted as usual.
 */
export function pathWord(path: string): Command {
  const m = /^~([a-z_][a-z0-9_-]*)?\/(.*)$/s.exec(path);
  if (!m) return new Command([{ text: quoteWord(path) }]);
  const rest = m[2] ? quoteWord(m[2]) : '';
  return new Command([{ text: `~${m[1] ?? ''}/${rest}` }]);
}

/** Join commands with a separator (e.g. ' && ', '; ', ' | '). */
export function joinCommands(commands: readonly Command[], separator: string): Command {
  const parts: CommandPart[] = [];
  commands.forEach((c, i) => {
    if (i > 0) parts.push({ text: separator });
    parts.push(...c.parts);
  });
  return new Command(mergeText(parts));
}

/** Stdin text that may hold secrets, for Command.withStdin. */
export function stdinText(strings: TemplateStringsArray, ...values: Array<string | number | Secret>): StdinText {
  return { parts: templateParts(strings, values, (out, v) => out.push(v instanceof Secret ? { secret: v } : { text: String(v) })) };
}

export function mergeText(parts: readonly CommandPart[]): CommandPart[] {
  const out: CommandPart[] = [];
  for (const p of parts) {
    const last = out[out.length - 1];
    if ('text' in p && last && 'text' in last) out[out.length - 1] = { text: last.text + p.text };
    else out.push(p);
  }
  return out;
}
