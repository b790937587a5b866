/**
 * SQL built like sh``: values become literals ('it''s'), sql.ident() makes identifiers ("x"),
 * secrets stay secrets. The result goes to psql on stdin, never on its command line.
 */
import type { CommandPart, StdinText } from './command.js';
import { templateParts } from './command.js';
import { MASK, Secret } from './secret.js';

export type SqlValue = string | number | bigint | boolean | null | Secret | SqlFragment | readonly SqlValue[];

export class SqlFragment implements StdinText {
  constructor(readonly parts: readonly CommandPart[]) {}
  /** Display form, secrets masked. */
  toString(): string {
    return this.parts.map((p) => ('text' in p ? p.text : MASK)).join('');
  }
}

export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new TypeError('sql: a string literal cannot contain a NUL byte');
  return `'${value.replace(/'/g, "''")}'`;
}

export function quoteIdent(name: string): string {
  if (name.length === 0) throw new TypeError('sql: an identifier cannot be empty');
  if (name.includes('\0')) throw new TypeError('sql: an identifier cannot contain a NUL byte');
  return `"${name.replace(/"/g, '""')}"`;
}

function appendSql(out: CommandPart[], value: unknown, index: number): void {
  if (value instanceof SqlFragment) out.push(...value.parts);
  else if (value instanceof Secret) {
    const v = value.reveal();
    if (v.includes('\0')) throw new TypeError(`sql: secret ${value.name} contains a NUL byte`);
    // The doubled form is itself a secret, so it is masked like the original.
    const escaped = v.includes("'") ? new Secret(v.replace(/'/g, "''"), value.name) : value;
    out.push({ text: "'" }, { secret: escaped }, { text: "'" });
  }
  else if (Array.isArray(value)) {
    value.forEach((v, i) => {
      if (i > 0) out.push({ text: ', ' });
      appendSql(out, v, index);
    });
  } else if (value === null) out.push({ text: 'NULL' });
  else if (typeof value === 'boolean') out.push({ text: value ? 'true' : 'false' });
  else if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`sql: value #${index} is ${value}`);
    out.push({ text: String(value) });
  } else if (typeof value === 'bigint') out.push({ text: String(value) });
  else if (typeof value === 'string') out.push({ text: quoteLiteral(value) });
  else throw new TypeError(`sql: value #${index} is ${typeof value}; it cannot be interpolated`);
}

/** Build SQL; every `${value}` becomes a literal (use sql.ident for names). */
export function sql(strings: TemplateStringsArray, ...values: SqlValue[]): SqlFragment {
  return new SqlFragment(templateParts(strings, values, appendSql));
}

sql.ident = (name: string): SqlFragment => new SqlFragment([{ text: quoteIdent(name) }]);
sql.raw = (text: string): SqlFragment => new SqlFragment([{ text }]);
