import { describe, expect, it } from 'vitest';
import { gatherFacts, batchScript, parseBatch } from '../../../src/engine/gather.js';
import { fact } from '../../../src/engine/define.js';
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

  it('keeps secrets out of the script text and masks them in output', async () => {
    const s = secret('hunter2-secret-value', 'pw');
    const cmd = batchScript([fact({ name: 'x', command: sh`echo ${s}`, parse: (r) => r.stdout })], 'n0nce');
    expect(cmd.toString()).not.toContain('hunter2');
    const conn = localConnection('h1');
    const out = await gatherFacts({ exec: (_h, c, o) => conn.exec(c, o) }, 'h1', undefined, { x: fact({ name: 'x', command: sh`echo ${s}`, parse: (r) => r.stdout }) });
    expect(out.x).toBe('***\n');
  });

  it('refuses truncated output', () => {
    expect(() => parseBatch('h', [fact({ name: 'a', command: sh`true`, parse: () => 1 })], '@@RB-n@@ 0 0\nabc', 'n', 1)).toThrow(/incomplete/);
  });
});
