/**
 * POSIX single-quote quoting. Not bash's $'…': the remote sh may be dash. Inside single quotes
 * nothing is special, so the only character to handle is the single quote itself.
 */
const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

export function quoteWord(value: string): string {
  if (value.length > 0 && SAFE_WORD.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
