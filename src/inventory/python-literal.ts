/**
 * Ansible types INI values with Python's `ast.literal_eval`, keeping the raw text when that fails:
 * `1` → 1, `True` → true, `[1, 2]` → [1, 2], `"x"` → "x", `yes` → "yes", `01` → "01". This is a
 * small parser for exactly those literals (numbers, strings, True/False/None, lists, tuples, dicts).
 */

class NotALiteral extends Error {}

/** The value Ansible would store for an INI value text. */
export function typeIniValue(text: string): unknown {
  try {
    return new LiteralParser(text).parseAll();
  } catch (error) {
    if (error instanceof NotALiteral) return text;
    throw error;
  }
}

type Token =
  | { kind: 'value'; value: unknown }
  | { kind: 'string'; value: string }
  | { kind: 'punct'; value: string }
  | { kind: 'end' };

const NUMBER =
  /^(?:0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|(?:\d(?:_?\d)*\.(?:\d(?:_?\d)*)?|\.\d(?:_?\d)*|\d(?:_?\d)*)(?:[eE][-+]?\d(?:_?\d)*)?)/;
const SIMPLE_ESCAPES: Record<string, string> = {
  '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\n': '',
};

class LiteralParser {
  private i = 0;
  private peeked?: Token;
  constructor(private readonly text: string) {}

  parseAll(): unknown {
    // literal_eval strips leading blanks; a top-level `1, 2` is a tuple.
    const first = this.parseValue();
    if (this.peek().kind === 'end') return first;
    const items = [first];
    while (this.eatPunct(',')) {
      if (this.peek().kind === 'end') break;
      items.push(this.parseValue());
    }
    if (this.peek().kind !== 'end') throw new NotALiteral();
    return items;
  }

  private parseValue(): unknown {
    const t = this.next();
    if (t.kind === 'value') return t.value;
    if (t.kind === 'string') {
      let s = t.value;
      while (this.peek().kind === 'string') s += (this.next() as { value: string }).value; // 'a' 'b' → 'ab'
      return s;
    }
    if (t.kind !== 'punct') throw new NotALiteral();
    if (t.value === '-' || t.value === '+') {
      const operand = this.next();
      if (operand.kind !== 'value' || typeof operand.value !== 'number') throw new NotALiteral();
      return t.value === '-' ? -operand.value : operand.value;
    }
    if (t.value === '[') return this.parseSequence(']');
    if (t.value === '(') {
      // (x) is x; (x,) and () are tuples.
      if (this.eatPunct(')')) return [];
      const first = this.parseValue();
      if (this.eatPunct(')')) return first;
      if (!this.eatPunct(',')) throw new NotALiteral();
      return [first, ...this.parseSequence(')')];
    }
    if (t.value === '{') return this.parseDict();
    throw new NotALiteral();
  }

  private parseSequence(close: string): unknown[] {
    const items: unknown[] = [];
    while (!this.eatPunct(close)) {
      items.push(this.parseValue());
      if (!this.eatPunct(',')) {
        if (!this.eatPunct(close)) throw new NotALiteral();
        break;
      }
    }
    return items;
  }

  private parseDict(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    while (!this.eatPunct('}')) {
      const key = this.parseValue();
      // A set ({1, 2}) cannot be printed as JSON by Ansible either: keep the text.
      if (!this.eatPunct(':')) throw new NotALiteral();
      if (typeof key === 'object' && key !== null) throw new NotALiteral(); // unhashable, or a tuple
      out[key === true ? 'true' : key === false ? 'false' : key === null ? 'null' : String(key)] = this.parseValue();
      if (!this.eatPunct(',')) {
        if (!this.eatPunct('}')) throw new NotALiteral();
        break;
      }
    }
    return out;
  }

  private eatPunct(p: string): boolean {
    const t = this.peek();
    if (t.kind === 'punct' && t.value === p) {
      this.peeked = undefined;
      return true;
    }
    return false;
  }

  private peek(): Token {
    this.peeked ??= this.lex();
    return this.peeked;
  }

  private next(): Token {
    const t = this.peek();
    this.peeked = undefined;
    return t;
  }

  private lex(): Token {
    const s = this.text;
    while (this.i < s.length && (s[this.i] === ' ' || s[this.i] === '\t')) this.i++;
    if (this.i >= s.length || s[this.i] === '#') return { kind: 'end' };
    const rest = s.slice(this.i);
    const c = s[this.i];
    if ('[](){},:+-'.includes(c)) {
      this.i++;
      return { kind: 'punct', value: c };
    }
    const str = /^([rRuUbB]|[bB][rR]|[rR][bB])?(['"])/.exec(rest);
    if (str) {
      this.i += str[0].length;
      return { kind: 'string', value: this.lexString(str[2], /r/i.test(str[1] ?? '')) };
    }
    const word = /^[A-Za-z_]\w*/.exec(rest);
    if (word) {
      this.i += word[0].length;
      const constants: Record<string, unknown> = { True: true, False: false, None: null };
      if (word[0] in constants) return { kind: 'value', value: constants[word[0]] };
      throw new NotALiteral();
    }
    const num = NUMBER.exec(rest);
    if (num) {
      this.i += num[0].length;
      // "01" is a syntax error in Python 3; "1abc" and "1j" are not plain numbers either.
      if (/^0\d*[1-9]/.test(num[0]) && !/[.eExXoObB]/.test(num[0])) throw new NotALiteral();
      if (this.i < s.length && /[\w.]/.test(s[this.i])) throw new NotALiteral();
      return { kind: 'value', value: toNumber(num[0]) };
    }
    throw new NotALiteral();
  }

  private lexString(quote: string, raw: boolean): string {
    const s = this.text;
    const triple = s.startsWith(quote.repeat(2), this.i);
    const close = triple ? quote.repeat(3) : quote;
    if (triple) this.i += 2;
    let out = '';
    for (;;) {
      if (this.i >= s.length) throw new NotALiteral();
      if (s.startsWith(close, this.i)) {
        this.i += close.length;
        return out;
      }
      const c = s[this.i++];
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = s[this.i++];
      if (e === undefined) throw new NotALiteral();
      if (raw) out += c + e;
      else if (e in SIMPLE_ESCAPES) out += SIMPLE_ESCAPES[e];
      else if (e === 'x' || e === 'u' || e === 'U') {
        const len = { x: 2, u: 4, U: 8 }[e];
        const hex = s.slice(this.i, this.i + len);
        if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(hex)) throw new NotALiteral();
        out += String.fromCodePoint(parseInt(hex, 16));
        this.i += len;
      } else if (/[0-7]/.test(e)) {
        const oct = /^[0-7]{1,3}/.exec(s.slice(this.i - 1))![0];
        out += String.fromCodePoint(parseInt(oct, 8));
        this.i += oct.length - 1;
      } else if (e === 'N') throw new NotALiteral(); // \N{NAME}: not worth a Unicode name table
      else out += c + e; // Python keeps unknown escapes as written
    }
  }
}

function toNumber(text: string): number {
  const t = text.replace(/_/g, '');
  if (/^0[xXoObB]/.test(t)) return Number(t.toLowerCase());
  return Number(t);
}
