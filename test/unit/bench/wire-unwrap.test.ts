/**
 * The bench's one-exec floor takes runbook's wire lines apart (bench/lib/wire-unwrap.mjs). Built
 * here from the real builders (toWire, batchScript), so a change of the wire form that the
 * unwrapper no longer follows fails here, not as a wrong floor in a bench run.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { batchScript } from '../../../src/engine/gather.js';
import type { Fact } from '../../../src/engine/types.js';
import { sh } from '../../../src/shell/command.js';
import { secret } from '../../../src/shell/secret.js';
import { toWire } from '../../../src/shell/wire.js';
// @ts-ignore: a plain ESM module of the bench
import { floorCodes, oneExec, unwrap } from '../../../bench/lib/wire-unwrap.mjs';

const fact = (name: string, command: ReturnType<typeof sh>): Fact<string> => ({ name, command, parse: (r) => r.stdout });
const pw = secret('s3cr3t pw', 'pw');

describe('bench wire-unwrap', () => {
  const facts = [fact('a', sh`echo ${"it's"}`), fact('b', sh`printf '%s\n' ${pw} | wc -c; exit 3`), fact('lock', sh`exec 9>/var/lib/runbook/.lock.mutex; true`)];
  const wire = toWire(batchScript(facts, 'abc123'), { become: { user: 'root' }, timeoutSec: 120 });

  it('finds the become user, the secrets and each fact of a batch', () => {
    const u = unwrap(wire.line);
    expect(u).toMatchObject({ user: 'root', secrets: 1, timeoutSec: 120, batch: true });
    expect(u.facts).toHaveLength(3);
    expect(u.facts[0]).toBe(`( echo 'it'\\''s'\n) </dev/null`);
    expect(u.facts[1]).toContain('"$__rb_s0"');
    expect(wire.line).not.toContain('s3cr3t');
  });

  it('joins a host\'s facts into one shell that runs them with the secret from stdin, lock left out', () => {
    const one = oneExec([{ line: wire.line, stdin: `${wire.stdin}hhh`, exitCode: 0, factCodes: [0, 3, 0] }]);
    expect(one.facts).toBe(2);
    expect(one.codes).toEqual([0, 3]);
    expect(one.stdin).toBe('s3cr3t pw\n');
    expect(one.line).toMatch(/^sudo -n -u root -- sh -c /);
    expect(one.line).not.toContain('s3cr3t');
    expect(one.line).not.toContain('.lock.mutex');
    // run it here without the sudo: the facts' output and their exit codes
    const out = execFileSync('sh', ['-c', one.line.replace(/^sudo -n -u root -- /, '')], { input: one.stdin, encoding: 'utf8' });
    expect(out).toBe("it's\n10\n\n@@FLOOR@@ 0 3\n");
    expect(floorCodes(out)).toEqual([0, 3]);
  });

  it('is not fooled by a line of another form', () => {
    expect(unwrap('ls -l')).toBeUndefined();
  });
});
