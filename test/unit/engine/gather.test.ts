import { describe, expect, it } from 'vitest';
import { gatherFacts, batchScript, parseBatch } from '../../../src/engine/gather.js';
import { fact, perHost } from '../../../src/engine/define.js';
import { sh } from '../../../src/shell/command.js';
import { secret } from '../../../src/shell/secret.js';
import { localConnection } from './local.js';

describe('batched facts', () => {
  it('reads many facts in one round trip, each with its own stdout, stderr and exit code', async () => {
    const log: string[] = [];
    const conn = localConnection('h1', log);
    const exec = { exec: (_h: string, c: Parameters<typeof conn.exec>[0], o?: Parameters<typeof conn.exec>[1]) => conn.exec(c, o) };
    const facts = await gatherFacts(exec, 'h1', undefined, {
      a: fact({ name: 'a', command: sh`echo hello`, parse: (r) => r.stdout }),
      b: fact({ name: 'b', command: sh`echo oops >&2; exit 3`, parse: (r) => [r.exitCode, r.stderr] as const }),
      c: fact({ name: 'c', command: sh`printf 'no newline'`, parse: (r) => r.stdout }),
      d: fact({ name: 'd', command: sh`cat`.withStdin('from stdin\n'), parse: (r) => r.stdout }),
      e: fact({ name: 'e', command: sh`printf '%s\n' '@@RB-fake@@ 1 0'`, parse: (r) => r.stdout }),
    });
    expect(log).toHaveLength(1);
    expect(facts.a).toBe('hello\n');
    expect(facts.b).toEqual([3, 'oops\n']);
    expect(facts.c).toBe('no newline');
    expect(facts.d).toBe('from stdin\n');
    expect(facts.e).toBe('@@RB-fake@@ 1 0\n');
  });

  it('a fact group is a record by key, and an empty group an empty record (no peer, no sync), not undefined', async () => {
    const conn = localConnection('h1');
    const exec = { exec: (_h: string, c: Parameters<typeof conn.exec>[0], o?: Parameters<typeof conn.exec>[1]) => conn.exec(c, o) };
    const echo = (v: string) => fact({ name: `echo ${v}`, command: sh`echo ${v}`, parse: (r) => r.stdout.trim() });
    const facts = await gatherFacts(exec, 'h1', undefined, {
      some: perHost(['x', 'y'], (k) => k, (k) => echo(k)),
      none: perHost([] as string[], (k) => k, (k) => echo(k)),
    });
    expect(facts.some).toEqual({ x: 'x', y: 'y' });
    expect(facts.none).toEqual({});
  });

  it('keeps secrets out of the script text and masks them in output', async () => {
    const s = secret('hunter2-secret-value', 'pw');
    const cmd = batchScript([fact({ name: 'x', command: sh`echo ${s}`, parse: (r) => r.stdout })], 'n0nce');
    expect(cmd.toString()).not.toContain('hunter2');
    const conn = localConnection('h1');
    const out = await gatherFacts({ exec: (_h, c, o) => conn.exec(c, o) }, 'h1', undefined, { x: fact({ name: 'x', command: sh`echo ${s}`, parse: (r) => r.stdout }) });
    expect(out.x).toBe('***\n');
  });

  it('refuses truncated output', () => {
    const facts = [fact({ name: 'a', command: sh`true`, parse: () => 1 })];
    expect(() => parseBatch('h', facts, '@@RB-n@@ 0\nabc', '@@RB-n@@ 0\n\n@@RB-n@@ end 0\n', 'n', 1)).toThrow(/incomplete/);
    expect(() => parseBatch('h', facts, '@@RB-n@@ 0\nabc\n@@RB-n@@ end 0 0\n', '@@RB-n@@ 0\nerr', 'n', 1)).toThrow(/incomplete/);
  });

  it('splits stdout and stderr by markers: no trailing newline, stderr, non-zero exits, stdin, empty output', async () => {
    const log: string[] = [];
    const conn = localConnection('h1', log);
    const facts = await gatherFacts({ exec: (_h, c, o) => conn.exec(c, o) }, 'h1', undefined, {
      nonl: fact({ name: 'nonl', command: sh`printf 'a\nb'; printf 'e1\ne2' >&2`, parse: (r) => r }),
      err: fact({ name: 'err', command: sh`echo to-err >&2`, parse: (r) => r }),
      fail: fact({ name: 'fail', command: sh`echo partial; exit 42`, parse: (r) => r }),
      empty: fact({ name: 'empty', command: sh`true`, parse: (r) => r }),
      blank: fact({ name: 'blank', command: sh`printf '\n\n'; printf '\n' >&2`, parse: (r) => r }),
      stdin: fact({ name: 'stdin', command: sh`tr a-z A-Z; echo "rc-ok"`.withStdin('select 1;\nno newline'), parse: (r) => r }),
      noStdin: fact({ name: 'noStdin', command: sh`cat; echo done`, parse: (r) => r }),
      secretIn: fact({ name: 'secretIn', command: sh`wc -c`.withStdin(secret('s3cr3t-stdin-value', 'pw')), parse: (r) => r }),
    });
    expect(log).toHaveLength(1);
    expect(log[0]).not.toContain('s3cr3t');
    expect([facts.nonl.stdout, facts.nonl.stderr, facts.nonl.exitCode]).toEqual(['a\nb', 'e1\ne2', 0]);
    expect([facts.err.stdout, facts.err.stderr, facts.err.exitCode]).toEqual(['', 'to-err\n', 0]);
    expect([facts.fail.stdout, facts.fail.stderr, facts.fail.exitCode]).toEqual(['partial\n', '', 42]);
    expect([facts.empty.stdout, facts.empty.stderr, facts.empty.exitCode]).toEqual(['', '', 0]);
    expect([facts.blank.stdout, facts.blank.stderr]).toEqual(['\n\n', '\n']);
    expect([facts.stdin.stdout, facts.stdin.exitCode]).toEqual(['SELECT 1;\nNO NEWLINErc-ok\n', 0]);
    expect(facts.noStdin.stdout).toBe('done\n');
    expect(facts.secretIn.stdout.trim()).toBe('18');
  });
});

describe('coalesced fact reads', () => {
  const counting = (host: string) => {
    const log: string[] = [];
    const conn = localConnection(host, log);
    const exec = { exec: (_h: string, c: Parameters<typeof conn.exec>[0], o?: Parameters<typeof conn.exec>[1]) => conn.exec(c, o) };
    return { log, exec };
  };
  const echo = (name: string, out: string, code = 0) => fact({ name, command: sh`printf '%s' ${out}; exit ${code}`, parse: (r) => `${r.stdout}:${r.exitCode}` });

  it('reads asked for in the same turn for one host and user go out as one script, each getting its own values', async () => {
    const { log, exec } = counting('h1');
    const [a, b, c] = await Promise.all([
      gatherFacts(exec, 'h1', true, { x: echo('x', 'one'), y: echo('y', 'two', 3) }),
      gatherFacts(exec, 'h1', true, { x: echo('x2', 'three') }),
      gatherFacts(exec, 'h1', 'postgres', { z: echo('z', 'four') }), // another user: its own script
    ]);
    expect(a).toEqual({ x: 'one:0', y: 'two:3' });
    expect(b).toEqual({ x: 'three:0' });
    expect(c).toEqual({ z: 'four:0' });
    expect(log).toHaveLength(2);
  });

  it('reads one after another stay separate (a later read sees the host as it is then)', async () => {
    const { log, exec } = counting('h1');
    await gatherFacts(exec, 'h1', undefined, { x: echo('x', 'one') });
    await gatherFacts(exec, 'h1', undefined, { x: echo('x', 'one') });
    expect(log).toHaveLength(2);
  });

  it('a script that fails as a whole fails every request with its own facts named', async () => {
    const exec = { exec: async (host: string, command: { toString(): string }) => ({ host, command: command.toString(), exitCode: 255, stdout: '', stderr: 'connection reset', durationMs: 1, timedOut: false }) };
    const results = await Promise.allSettled([gatherFacts(exec, 'h1', undefined, { x: echo('fact-x', '1') }), gatherFacts(exec, 'h1', undefined, { y: echo('fact-y', '2') })]);
    const messages = results.map((r) => (r.status === 'rejected' ? String((r.reason as Error).message) : 'resolved'));
    expect(messages[0]).toMatch(/reading facts fact-x failed \(exit code 255\): connection reset/);
    expect(messages[1]).toMatch(/reading facts fact-y failed/);
    expect(messages[1]).not.toMatch(/fact-x/);
  });
});
