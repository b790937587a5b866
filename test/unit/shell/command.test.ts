import { describe, expect, it } from 'vitest';
import { joinCommands, quoteWord, raw, secret, sh, stdinText } from '../../../src/shell/index.js';

describe('quoteWord', () => {
  it.each([
    ['plain', 'plain'],
    ['/etc/hosts', '/etc/hosts'],
    ['', "''"],
    ['a b', "'a b'"],
    ["it's", "'it'\\''s'"],
    ['$(id)', "'$(id)'"],
    ['-n', '-n'],
    ['*', "'*'"],
    ['a\nb', "'a\nb'"],
  ])('%j → %s', (value, quoted) => {
    expect(quoteWord(value)).toBe(quoted);
  });
});

describe('sh``', () => {
  it('quotes every interpolated value as one word', () => {
    expect(sh`rm -- ${'a b'} ${"c'd"}`.toString()).toBe(`rm -- 'a b' 'c'\\''d'`);
  });

  it('makes arrays several words and numbers bare', () => {
    expect(sh`ls ${['x y', 'z']} ${3} ${10n}`.toString()).toBe("ls 'x y' z 3 10");
  });

  it('composes nested Commands unquoted', () => {
    expect(sh`sudo ${sh`echo ${'a b'}`}`.toString()).toBe("sudo echo 'a b'");
  });

  it.each([
    ['undefined', undefined],
    ['null', null],
    ['a plain object', { a: 1 }],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
  ])('throws on %s', (_name, value) => {
    expect(() => sh`echo ${value as never}`).toThrow(TypeError);
  });

  it('refuses to nest a Command that has stdin', () => {
    expect(() => sh`x ${sh`cat`.withStdin('data')}`).toThrow(/stdin/);
  });

  it('masks secrets in the display form and in JSON', () => {
    const c = sh`psql -c ${secret('hunter2-pw')}`;
    expect(c.toString()).toBe('psql -c ***');
    expect(JSON.stringify({ c })).toBe('{"c":"psql -c ***"}');
    expect(c.hasSecrets).toBe(true);
  });
});

describe('raw() and joinCommands', () => {
  it('raw takes text as is', () => {
    expect(raw('echo $HOME | wc -c').toString()).toBe('echo $HOME | wc -c');
    expect(() => raw(42 as never)).toThrow(TypeError);
  });

  it('joins commands with a separator', () => {
    expect(joinCommands([sh`a ${'1 2'}`, raw('b')], ' && ').toString()).toBe("a '1 2' && b");
  });

  it('shows stdin in the display form, secrets masked', () => {
    const c = sh`cat`.withStdin(stdinText`user=${'me'} pw=${secret('stdin-secret-77')}`);
    expect(c.toString()).toBe("cat <<'STDIN'\nuser=me pw=***\nSTDIN");
  });
});
