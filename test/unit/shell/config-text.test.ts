/**
 * One builder per format that a program parses later: every hostile value either comes back
 * intact through that format's own parser rules, or is refused with the name it came from.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  ConfigValueError,
  ShellLine,
  conninfoString,
  exportPathProblem,
  fstabField,
  gucString,
  keepalivedScript,
  keepalivedWordProblem,
  mountOptionProblem,
  pgShellLine,
  shellLine,
  syncStandbyName,
} from '../../../src/shell/config-text.js';
import { parseConninfo } from '../../../src/modules/postgres/cluster.js';
import { secret, sh } from '../../../src/shell/index.js';

const HOSTILE = [
  "it's", 'say "hi"', '$(touch /tmp/rb-unit-pwned)', '`touch /tmp/rb-unit-pwned`', 'a; touch /tmp/rb-unit-pwned', 'a b  c',
  '100% %p %f %%', 'a:b:c', 'back\\slash\\\\', 'héllo ✓ 日本語', '# hash', '-n', "'\"'\"'", '&& || | > <',
];

/** PostgreSQL's own placeholder pass (%p, %f, %r, %%), then /bin/sh: what the server would run. */
function runAsServer(line: ShellLine, p: string, f: string): string {
  const text = line.text.replace(/%([pfr%])/g, (_m, c: string) => (c === 'p' ? p : c === 'f' ? f : c === 'r' ? 'r' : '%'));
  return execFileSync('/bin/sh', ['-c', text], { encoding: 'utf8' });
}

describe('shell lines for PostgreSQL command settings', () => {
  it.each(HOSTILE)('%j reaches the command as one intact word; %%p and %%f still work', (v) => {
    const out = runAsServer(pgShellLine`printf '[%s]' ${v} %p %f`, 'pg_wal/0001', '0001');
    expect(out).toBe(`[${v}][pg_wal/0001][0001]`);
  });

  it('nothing in the table ran', () => {
    expect(() => execFileSync('test', ['-e', '/tmp/rb-unit-pwned'])).toThrow();
  });

  it('a ShellLine is only made from sh``: no secrets, no stdin', () => {
    expect(shellLine`echo ${'a b'}`.text).toBe("echo 'a b'");
    expect(() => ShellLine.of(sh`echo ${secret('pw-in-config')}`)).toThrow(/secrets/);
  });
});

describe('postgresql.conf strings', () => {
  it.each(HOSTILE)('%j: quotes and backslashes doubled', (v) => {
    const q = gucString('x', v);
    // Reading it back the way the GUC lexer does: '' → ', \\ → \.
    expect(q.slice(1, -1).replace(/''/g, "'").replace(/\\\\/g, '\\')).toBe(v);
  });

  it('a line break or a NUL cannot be carried: refused with the name', () => {
    expect(() => gucString('wal_archive_dir', 'a\nb')).toThrow(new ConfigValueError('wal_archive_dir', 'holds a line break, which postgresql.conf cannot carry'));
    expect(() => gucString('cluster_name', 'a\rb')).toThrow(/cluster_name: holds a line break/);
    expect(() => gucString('x', 'a\0b')).toThrow(/x: holds a NUL byte/);
  });

  it('synchronous_standby_names members are double-quoted names', () => {
    expect(syncStandbyName('pg 1, "x" (y)')).toBe('"pg 1, ""x"" (y)"');
  });
});

describe('libpq conninfo', () => {
  it.each(HOSTILE)('%j is one value: no key can be added', (v) => {
    const s = conninfoString('primary_conninfo', [['host', '10.0.0.1'], ['application_name', v], ['port', 5432]]);
    expect(parseConninfo(s)).toEqual({ host: '10.0.0.1', application_name: v, port: '5432' });
  });
});

describe('keepalived.conf', () => {
  it('words: a space, a quote, a brace or a comment sign cannot be carried', () => {
    expect(keepalivedWordProblem('pg1')).toBeUndefined();
    for (const v of ['pg 1', 'pg"1', 'a{', '#x', '!x', "it's", 'a\nb', 'ü', '']) expect(keepalivedWordProblem(v), v).toBeDefined();
  });

  it('script lines: plain words only, no shell runs them', () => {
    expect(keepalivedScript('vrrp_script', ['/etc/keepalived/check.sh', '5432'])).toBe('"/etc/keepalived/check.sh 5432"');
    expect(() => keepalivedScript('vrrp_script', ['/etc/x.sh', '$(id)'])).toThrow(/vrrp_script: "\$\(id\)" is not a plain word/);
  });
});

describe('fstab and exports', () => {
  it('fstab fields escape what would split them (\\040 \\011 \\012 \\134)', () => {
    expect(fstabField('mount_point', '/mnt/a b\\c\td')).toBe('/mnt/a\\040b\\134c\\011d');
    expect(() => fstabField('mount_point', 'a\0')).toThrow(/mount_point: holds a NUL byte/);
  });

  it('mount options and export paths: what the format reads as syntax is refused', () => {
    expect(mountOptionProblem('vers=4.1')).toBeUndefined();
    for (const o of ['a,b', 'a b', '$(x)', "x'"]) expect(mountOptionProblem(o), o).toBeDefined();
    expect(exportPathProblem('/srv/share')).toBeUndefined();
    for (const v of ['/srv/a b', '/srv/a,b', '/srv/(x)', '/srv/"x"', '/srv/ü', '/srv/a\nb', '/srv/*']) expect(exportPathProblem(v), v).toBeDefined();
  });
});
