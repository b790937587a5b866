/**
 * runOnChannel against a stand-in channel: the order of what is written to stdin (password only when
 * sudo prompts, the command's stdin only once it started) and how sudo's answers are reported.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { BECOME_STARTED, SUDO_PROMPT, secret, sh, toWire } from '../../../src/shell/index.js';
import { runOnChannel, type ChannelRun } from '../../../src/transport/channel.js';
import { CommandFailedError } from '../../../src/transport/types.js';

class FakeChannel extends EventEmitter {
  stderr = new EventEmitter();
  written: string[] = [];
  ended = false;
  writable = true;
  write(data: string): boolean {
    this.written.push(data);
    return true;
  }
  end(): this {
    this.ended = true;
    return this;
  }
  err(text: string): void {
    this.stderr.emit('data', Buffer.from(text));
  }
  finish(code: number): void {
    this.emit('exit', code);
    this.emit('close');
  }
}

function start(command = sh`cat ${secret('chan-secret-1')}`, become: ChannelRun['options']['become'] = true) {
  const channel = new FakeChannel();
  const wire = toWire(command, { become: { password: secret('chan-become-pw') } });
  const run: ChannelRun = { host: 'db1', command: command.toString(), wire, options: { become }, startedAt: Date.now() };
  const result = runOnChannel(channel as never, run, () => undefined);
  return { channel, result };
}

describe('become with a password', () => {
  it('writes nothing until sudo prompts, then the password, then stdin once the command started', async () => {
    const { channel, result } = start();
    expect(channel.written).toEqual([]);
    channel.err(SUDO_PROMPT);
    expect(channel.written).toEqual(['chan-become-pw\n']);
    expect(channel.ended).toBe(false);
    channel.err(`${BECOME_STARTED}\nreal stderr\n`);
    expect(channel.written).toEqual(['chan-become-pw\n', 'chan-secret-1\n']);
    // stdin stays open: the remote watchdog reads heartbeats on it and kills the command at its EOF
    expect(channel.ended).toBe(false);
    channel.emit('data', Buffer.from('out chan-secret-1\n'));
    channel.finish(0);
    const r = await result;
    expect(r.stderr).toBe('real stderr\n');
    expect(r.stdout).toBe('out ***\n');
  });

  it('never writes the password when sudo does not ask (root, NOPASSWD)', async () => {
    const { channel, result } = start();
    channel.err(`${BECOME_STARTED.slice(0, 5)}`); // a marker split across chunks
    channel.err(`${BECOME_STARTED.slice(5)}\n`);
    channel.finish(0);
    await result;
    expect(channel.written).toEqual(['chan-secret-1\n']);
  });

  it('reports a second prompt as a wrong password, without sending it twice', async () => {
    const { channel, result } = start();
    channel.err(SUDO_PROMPT);
    channel.err(`Sorry, try again.\n${SUDO_PROMPT}`);
    expect(channel.written).toEqual(['chan-become-pw\n']);
    expect(channel.ended).toBe(true);
    channel.err('sudo: 1 incorrect password attempt\n');
    channel.finish(1);
    await expect(result).rejects.toThrow(/db1.*rejected the become password/);
  });
});

describe('results', () => {
  it('strips the SIG prefix from a signal and keeps exitCode null', async () => {
    const channel = new FakeChannel();
    const run: ChannelRun = { host: 'h', command: 'x', wire: { line: 'x', stdin: '' }, options: {}, startedAt: Date.now() };
    const result = runOnChannel(channel as never, run, () => undefined);
    channel.emit('exit', null, 'SIGTERM');
    channel.emit('close');
    expect(await result).toMatchObject({ exitCode: null, signal: 'TERM', timedOut: false });
  });

  it('marks exit 124 under a timeout as timed out and throws with check', async () => {
    const channel = new FakeChannel();
    const run: ChannelRun = { host: 'h', command: 'x', wire: { line: 'x', stdin: '' }, options: { timeoutSec: 1, check: true }, startedAt: Date.now() };
    const result = runOnChannel(channel as never, run, () => undefined);
    channel.finish(124);
    await expect(result).rejects.toThrow(/timed out/);
  });

  it('rejects with the connection error when the channel closed without an exit status', async () => {
    const channel = new FakeChannel();
    const run: ChannelRun = { host: 'h', command: 'x', wire: { line: 'x', stdin: '' }, options: {}, startedAt: Date.now() };
    const lost = new Error('h: unreachable: keepalive');
    const result = runOnChannel(channel as never, run, () => lost);
    channel.emit('close');
    await expect(result).rejects.toBe(lost);
  });

  it('turns sudo -n asking for a password into a clear error', async () => {
    const channel = new FakeChannel();
    const run: ChannelRun = { host: 'db9', command: 'id', wire: { line: 'sudo -n id', stdin: '' }, options: { become: true }, startedAt: Date.now() };
    const result = runOnChannel(channel as never, run, () => undefined);
    channel.err('sudo: a password is required\n');
    channel.finish(1);
    const error = await result.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommandFailedError);
    expect((error as Error).message).toMatch(/db9.*wants a password.*ansible_become_password.*NOPASSWD/);
  });
});
