import { mkdtempSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ConnectionSpec } from '../../../src/inventory/types.js';
import { parseProxyJump, resolveHop, resolveTarget } from '../../../src/transport/ssh-config.js';

const dir = mkdtempSync(join(tmpdir(), 'rb-sshcfg-'));
const config = join(dir, 'config');
const marker = join(dir, 'match-exec-ran');
writeFileSync(
  config,
  [
    'Host pg1',
    '  HostName 10.231.0.11',
    '  Port 2222',
    '  User admin',
    '  IdentityFile ~/.ssh/pg_key',
    '  ProxyJump bastion',
    'Host bastion',
    '  HostName 10.231.0.2',
    '  User jump',
    'Host *',
    '  IdentityFile %d/.ssh/all_%h', // %h is the HostName, as in OpenSSH
    '',
  ].join('\n'),
);

const spec = (over: Partial<ConnectionSpec> = {}): ConnectionSpec => ({
  name: 'pg1',
  address: 'pg1',
  port: 22,
  user: userInfo().username,
  become: false,
  ...over,
});

describe('resolveTarget', () => {
  it('fills what the inventory left at its defaults from the ssh config', () => {
    const t = resolveTarget(spec(), config);
    expect(t).toMatchObject({ address: '10.231.0.11', port: 2222, user: 'admin' });
    expect(t.identityFiles).toEqual([join(homedir(), '.ssh/pg_key'), join(homedir(), '.ssh/all_10.231.0.11')]);
    expect(t.jumps).toEqual([{ host: 'bastion', user: undefined, port: undefined }]);
  });

  it('lets inventory values win', () => {
    const t = resolveTarget(spec({ port: 2200, user: 'ops', privateKeyFile: '/keys/k', proxyJump: 'none' }), config);
    expect(t).toMatchObject({ port: 2200, user: 'ops', identityFiles: ['/keys/k'], jumps: [] });
  });

  it('refuses Match exec, naming the file and line, and never runs it', async () => {
    const withExec = join(dir, 'config-exec');
    writeFileSync(withExec, `Host *\n  Port 2\nMatch exec "touch ${marker}"\n  User from-match-exec\n`);
    expect(() => resolveTarget(spec(), withExec)).toThrow(`${withExec}:3: ssh config: "Match exec" is not supported by runbook`);
    const { existsSync } = await import('node:fs');
    expect(existsSync(marker)).toBe(false);
  });

  it('resolves a jump hop under its own alias with its own user and keys, never the target\'s', () => {
    const target = resolveTarget(spec({ privateKeyFile: '/keys/k' }), config);
    const hop = resolveHop(target.jumps[0]!, target, config);
    expect(hop).toMatchObject({ name: 'bastion', address: '10.231.0.2', port: 22, user: 'jump' });
    expect(hop.identityFiles).toEqual([join(homedir(), '.ssh/all_10.231.0.2')]);
  });

  it('treats a missing config file as empty', () => {
    expect(resolveTarget(spec({ address: '10.0.0.9' }), join(dir, 'none'))).toMatchObject({ address: '10.0.0.9', port: 22 });
  });
});

describe('parseProxyJump', () => {
  it('reads user@host:port lists, IPv6 in brackets, and none', () => {
    expect(parseProxyJump('ops@b1:2222,b2,[::1]:22')).toEqual([
      { user: 'ops', host: 'b1', port: 2222 },
      { user: undefined, host: 'b2', port: undefined },
      { user: undefined, host: '::1', port: 22 },
    ]);
    expect(parseProxyJump('none')).toEqual([]);
    expect(() => parseProxyJump('a:b:c')).toThrow(/invalid ProxyJump/);
  });
});
