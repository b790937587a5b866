import { describe, expect, it } from 'vitest';
import { BECOME_STARTED, PREAMBLE_FAILED, SUDO_PROMPT, secret, sh, stdinText, toWire } from '../../../src/shell/index.js';

describe('toWire', () => {
  it('wraps a command in sh -c with no stdin when it has no secrets', () => {
    expect(toWire(sh`echo ${'a b'}`)).toEqual({ line: `sh -c 'echo '\\''a b'\\'''`, stdin: '' });
  });

  it('reads secrets from stdin in a preamble: never in the line', () => {
    const w = toWire(sh`pg --pw ${secret('wire-secret-1')} --other ${secret('wire-secret-2')}`);
    expect(w.line).not.toContain('wire-secret');
    expect(w.line).toContain(`IFS= read -r __rb_s0 || exit ${PREAMBLE_FAILED}`);
    expect(w.line).toContain('"$__rb_s1"');
    expect(w.stdin).toBe('wire-secret-1\nwire-secret-2\n');
  });

  it('appends the command stdin after the secrets', () => {
    const w = toWire(sh`psql -f - ${secret('wire-secret-3')}`.withStdin(stdinText`SELECT ${secret('wire-secret-4')};`));
    expect(w.stdin).toBe('wire-secret-3\nSELECT wire-secret-4;');
  });

  it('enforces the timeout remotely with TERM, then KILL', () => {
    expect(toWire(sh`sleep 9`, { timeoutSec: 2.2 }).line).toMatch(/^timeout -k 5 3 sh -c /);
  });

  it('uses sudo -n without a password', () => {
    const w = toWire(sh`id`, { become: { user: 'postgres' }, timeoutSec: 5 });
    expect(w.line).toBe(`sudo -n -u postgres -- timeout -k 5 5 sh -c id`);
    expect(w.becomePassword).toBeUndefined();
  });

  it('with a become password: sudo -S with a marker prompt, the password kept apart for the prompt', () => {
    const w = toWire(sh`id ${secret('wire-secret-5')}`, { become: { password: secret('wire-become-pw') } });
    expect(w.line).toMatch(new RegExp(`^sudo -k -S -p '${SUDO_PROMPT.replace(/[[\]]/g, '\\$&')}' -u root -- sh -c `));
    expect(w.line).not.toContain('wire-become-pw');
    expect(w.line).toContain(BECOME_STARTED);
    expect(w.becomePassword).toBe('wire-become-pw\n');
    // The command's own stdin does not start with the password: it is written only if sudo asks.
    expect(w.stdin).toBe('wire-secret-5\n');
  });

  it('refuses line breaks in secrets and passwords', () => {
    expect(() => toWire(sh`x ${secret('a\nb')}`)).toThrow(/line break/);
    expect(() => toWire(sh`x`, { become: { password: secret('a\nb') } })).toThrow(/line break/);
  });
});
