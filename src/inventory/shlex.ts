/**
 * Python's `shlex.split(line, comments=True)` in POSIX mode, which Ansible uses for INI host lines:
 * quotes are removed (`a="b c"` → `a=b c`), `#` starts a comment outside quotes, backslash escapes.
 */
export class ShlexError extends Error {}

export interface ShlexToken {
  value: string;
  /** 0-based offset in the line where the token starts. */
  start: number;
}

export function shlexSplit(line: string): ShlexToken[] {
  const tokens: ShlexToken[] = [];
  let current: ShlexToken | undefined;
  let i = 0;
  const word = () => (current ??= { value: '', start: i });
  while (i < line.length) {
    const c = line[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      if (current) tokens.push(current);
      current = undefined;
      i++;
    } else if (c === '#') {
      break;
    } else if (c === '\\') {
      if (i + 1 >= line.length) throw new ShlexError('No escaped character');
      word().value += line[i + 1];
      i += 2;
    } else if (c === "'" || c === '"') {
      const token = word();
      i++;
      for (;;) {
        if (i >= line.length) throw new ShlexError('No closing quotation');
        const q = line[i];
        if (q === c) break;
        // Inside double quotes a backslash escapes only `"` and `\`.
        if (c === '"' && q === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) {
          token.value += line[i + 1];
          i += 2;
          continue;
        }
        token.value += q;
        i++;
      }
      i++;
    } else {
      word().value += c;
      i++;
    }
  }
  if (current) tokens.push(current);
  return tokens;
}
