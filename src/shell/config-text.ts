/**
 * Text that another program parses later, some of it run through /bin/sh by a server
 * (archive_command, restore_command, keepalived scripts, fstab, exports). One builder per target
 * format: values are first shell-quoted (a ShellLine, only made from sh``), then quoted the way
 * the format itself quotes. A value a format cannot carry is refused with the name it came from
 * (ConfigValueError): runbooks call the `*Problem` checkers in validate, so the refusal is bad
 * input (exit 2) before any host is touched; the renderers throw the same error as a backstop.
 */
import { type Command, sh, type ShellValue } from './command.js';
import { quoteWord } from './quote.js';

/** A value that the target format cannot carry; `source` is the param or var it came from. */
export class ConfigValueError extends Error {
  constructor(
    readonly source: string,
    readonly problem: string,
  ) {
    super(`${source}: ${problem}`);
    this.name = 'ConfigValueError';
  }
}

const NUL = /\0/;
const LINE_BREAK = /[\n\r]/;

// ---------------------------------------------------------------- shell lines

/**
 * A shell command line in which every value is one quoted word. The constructor is private: only
 * ShellLine.of (from an sh`` Command) and pgShellLine make one, so a runbook cannot hand a
 * concatenated string to a format that expects a shell line.
 */
export class ShellLine {
  private constructor(readonly text: string) {}

  /** From a Command built with sh`` (secrets cannot go into a config file: refused). */
  static of(command: Command): ShellLine {
    if (command.hasSecrets || command.stdin) throw new TypeError('ShellLine: a command with secrets or stdin cannot be written into a config file');
    return new ShellLine(command.toString());
  }

  /** @internal pgShellLine's constructor door (it quotes its values itself). */
  static fromQuoted(text: string): ShellLine {
    return new ShellLine(text);
  }

  toString(): string {
    return this.text;
  }
}

export function isShellLine(v: unknown): v is ShellLine {
  return v instanceof ShellLine;
}

/** A shell line from a template: sh`` quoting, then frozen as a ShellLine. */
export function shellLine(strings: TemplateStringsArray, ...values: ShellValue[]): ShellLine {
  return ShellLine.of(sh(strings, ...values));
}

/**
 * A PostgreSQL command setting (archive_command, restore_command, archive_cleanup_command):
 * PostgreSQL replaces %p, %f, %r and %% in the whole line before /bin/sh sees it, so each value
 * is shell-quoted and then its `%` doubled; the template's own text keeps its placeholders.
 * Strings only: numbers and nested commands have no `%` to escape and no need for this path.
 */
export function pgShellLine(strings: TemplateStringsArray, ...values: string[]): ShellLine {
  let out = '';
  strings.forEach((literal, i) => {
    out += literal;
    if (i < values.length) {
      const v = values[i]!;
      if (typeof v !== 'string') throw new TypeError(`pgShellLine: value #${i} is not a string`);
      out += quoteWord(v).replace(/%/g, '%%');
    }
  });
  return ShellLine.fromQuoted(out);
}

// ---------------------------------------------------------------- postgresql.conf (GUC) strings

/** Why a value cannot be a postgresql.conf string, or undefined. */
export function gucProblem(value: string): string | undefined {
  if (NUL.test(value)) return 'holds a NUL byte, which postgresql.conf cannot carry';
  if (LINE_BREAK.test(value)) return 'holds a line break, which postgresql.conf cannot carry';
  return undefined;
}

/** A postgresql.conf string literal: backslashes doubled (the lexer reads C escapes), single quotes doubled. */
export function gucString(source: string, value: string | ShellLine): string {
  const text = String(value);
  const problem = gucProblem(text);
  if (problem) throw new ConfigValueError(source, problem);
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/**
 * A synchronous_standby_names member: a double-quoted name ("" for a quote), so any
 * application_name is one member whatever its commas, spaces or parentheses.
 */
export function syncStandbyName(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

// ---------------------------------------------------------------- libpq conninfo

/** A conninfo value: single-quoted with \\ and \' (libpq's own quoting), so a space cannot add a key. */
export function conninfoValue(source: string, value: string): string {
  if (NUL.test(value)) throw new ConfigValueError(source, 'holds a NUL byte, which a conninfo string cannot carry');
  if (/^[A-Za-z0-9_.:/@-]+$/.test(value)) return value;
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** `key=value ...` with every value quoted for libpq. */
export function conninfoString(source: string, pairs: Array<[string, string | number]>): string {
  return pairs.map(([k, v]) => `${k}=${conninfoValue(`${source} ${k}`, String(v))}`).join(' ');
}

// ---------------------------------------------------------------- keepalived.conf

/**
 * keepalived splits its config into words itself and has no escape for a space, a quote, a brace
 * or a comment sign inside a word: such a value cannot be carried, so it is refused.
 */
export function keepalivedWordProblem(value: string): string | undefined {
  if (value === '') return 'is empty';
  if (!/^[\x21-\x7e]+$/.test(value)) return 'holds a space, a control or a non-ASCII character, which keepalived.conf cannot carry in a word';
  if (/["'{}#!\\]/.test(value)) return `holds one of " ' { } # ! \\, which keepalived.conf reads as syntax`;
  return undefined;
}

export function keepalivedWord(source: string, value: string): string {
  const problem = keepalivedWordProblem(value);
  if (problem) throw new ConfigValueError(source, problem);
  return value;
}

/**
 * A `script` / `notify` value: keepalived execs it after splitting on spaces (no shell), so each
 * word must be a plain shell word that needs no quoting; the line is then double-quoted.
 */
export function keepalivedScript(source: string, argv: readonly string[]): string {
  for (const w of argv) {
    if (quoteWord(w) !== w || w === '') throw new ConfigValueError(source, `${JSON.stringify(w)} is not a plain word; keepalived splits script lines without a shell`);
  }
  return `"${argv.join(' ')}"`;
}

// ---------------------------------------------------------------- fstab(5), exports(5), ganesha.conf

/** fstab fields: octal escapes for what would split the field (fstab(5) \040 \011 \012 \134). */
export function fstabField(source: string, value: string): string {
  if (NUL.test(value) || value === '') throw new ConfigValueError(source, value === '' ? 'is empty' : 'holds a NUL byte');
  return value.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/** One mount option: commas separate options, so a value holding one (or a space, a quote) cannot be carried. */
export function mountOptionProblem(option: string): string | undefined {
  return /^[A-Za-z0-9_.=:+/-]+$/.test(option) ? undefined : 'holds characters a mount option cannot carry (only letters, digits and _ . = : + / -)';
}

/** An exports(5) / ganesha path: refused when it holds what the format would read as syntax. */
export function exportPathProblem(path: string): string | undefined {
  if (!/^[\x21-\x7e]+$/.test(path)) return 'holds a space, a control or a non-ASCII character, which an exports line cannot carry';
  if (/[,()"'#;{}\\=*?[\]]/.test(path)) return 'holds one of , ( ) " \' # ; { } \\ = * ? [ ], which exports(5) or ganesha.conf read as syntax';
  return undefined;
}

export function exportPath(source: string, path: string): string {
  const problem = exportPathProblem(path);
  if (problem) throw new ConfigValueError(source, problem);
  return path;
}
