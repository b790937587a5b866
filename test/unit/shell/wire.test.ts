import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { BECOME_STARTED, PREAMBLE_FAILED, SUDO_PROMPT, secret, sh, stdinText, toWire } from '../../../src/shell/index.js';
import { HEARTBEAT, HEARTBEAT_MS, WATCHDOG_SEC, WireError } from '../../../src/shell/wire.js';

describe('toWire', () => {
  it('wraps a command in sh -c with no stdin when it has no secrets', () => {
    const w = toWire(sh`echo ${'a b'}`);
    expect(w.stdin).toBe('');
    expect(w.line).toMatch(/^sh -c /);
    expect(w.line).toContain(`setsid sh -c`);
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
    expect(toWire(sh`sleep 9`, { timeoutSec: 2.2 }).line).toContain('setsid timeout -k 5 3 sh -c ');
  });

  it('uses sudo -n without a password', () => {
    const w = toWire(sh`id`, { become: { user: 'postgres' }, timeoutSec: 5 });
    expect(w.line).toMatch(/^sudo -n -u postgres -- sh -c .*setsid timeout -k 5 5 sh -c id/s);
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

/** The wrapper run by the local sh, as sshd would run it: real processes, no mock. */
function runLocal(line: string, input: string, o: { heartbeat?: boolean; endAfterMs?: number } = {}) {
  return new Promise<{ code: number | null; out: string; ms: number; pgid?: number }>((resolve) => {
    const started = Date.now();
    const child = spawn('sh', ['-c', line], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.stdin.on('error', () => {}); // EPIPE once the wrapper is gone
    child.stdin.write(input);
    const beat = o.heartbeat ? setInterval(() => child.stdin.writable && child.stdin.write(HEARTBEAT), HEARTBEAT_MS) : undefined;
    if (o.endAfterMs !== undefined) setTimeout(() => child.stdin.end(), o.endAfterMs);
    child.on('close', (code) => {
      if (beat) clearInterval(beat);
      resolve({ code, out, ms: Date.now() - started });
    });
  });
}

/** Running (a zombie waiting for a reaper is dead). */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

describe('toWire: the remote wrapper (run by the local sh)', () => {
  it('passes stdin and secrets (trailing newlines kept) and the exit code', async () => {
    const w = toWire(sh`printf '%s|' ${secret('wire-secret-9')}; cat; exit 5`.withStdin('a\nb\n\n'));
    const r = await runLocal(w.line, w.stdin, { heartbeat: true });
    expect(r.out).toBe('wire-secret-9|a\nb\n\n');
    expect(r.code).toBe(5);
  });

  it('kills the command and its children at once when stdin ends (channel closed, runbook killed)', async () => {
    const w = toWire(sh`sleep 30 & echo $!; sleep 31`);
    const r = await runLocal(w.line, w.stdin, { endAfterMs: 300 });
    expect(r.ms).toBeLessThan(4000);
    const child = Number(r.out.trim().split('\n')[0]);
    expect(child).toBeGreaterThan(1);
    await new Promise((res) => setTimeout(res, 300));
    expect(alive(child)).toBe(false);
  });

  it(`kills it when the heartbeat stops for ${WATCHDOG_SEC} s (a dead link), not while it beats`, async () => {
    const w = toWire(sh`sleep 30`);
    const silent = await runLocal(w.line, w.stdin);
    expect(silent.ms).toBeGreaterThanOrEqual(WATCHDOG_SEC * 1000 - 500);
    expect(silent.ms).toBeLessThan(WATCHDOG_SEC * 1000 + 4000);
    const beating = toWire(sh`sleep 7; echo done`);
    const r = await runLocal(beating.line, beating.stdin, { heartbeat: true });
    expect(r.out).toContain('done');
    expect(r.code).toBe(0);
  });

  it('refuses NUL bytes and lines too long for one command as bad input (exit 2)', () => {
    expect(() => toWire(sh`echo ${'a\0b'}`)).toThrow(WireError);
    expect(() => toWire(sh`cat`.withStdin('x\0'))).toThrow(/NUL byte/);
    const e = (() => {
      try {
        toWire(sh`echo ${'x'.repeat(5 << 20)}`);
      } catch (error) {
        return error as WireError;
      }
    })();
    expect(e).toBeInstanceOf(WireError);
    expect(e!.exitCode).toBe(2);
    expect(e!.message).toMatch(/command line is 5\.0 MB; at most 117 KB/);
  });
});
