/** connectionSpec: inventory connection vars → the transport's ConnectionSpec. */
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { BadInputError } from '../../../src/errors.js';
import { connectionSpec, loadInventory, type Inventory, type InventoryHost } from '../../../src/inventory/index.js';
import { proxyJumpFromSshArgs } from '../../../src/inventory/connection.js';
import { secret } from '../../../src/shell/secret.js';
import { FIXTURES } from './ansible-oracle.js';

let inventory: Inventory;
const host = (name: string) => inventory.hosts.get(name)!;

beforeAll(async () => {
  inventory = await loadInventory([join(FIXTURES, '15-connection-vars/hosts.yml')]);
});

describe('connectionSpec', () => {
  it('reads address, port, user, key, become and the jump host from the vars', () => {
    const spec = connectionSpec(host('pg1'));
    expect(spec).toMatchObject({
      name: 'pg1',
      address: '192.0.2.11',
      port: 2222,
      user: 'deploy',
      privateKeyFile: join(homedir(), '.ssh/pg_ed25519'),
      become: true,
      becomeUser: 'postgres',
      proxyJump: 'jump@bastion.example.com:2222',
      acceptNewHostKey: false,
    });
  });

  it('resolves runbook_known_hosts against the inventory file that set it', () => {
    expect(connectionSpec(host('pg1')).knownHostsFile).toBe(join(FIXTURES, '15-connection-vars/known_hosts'));
  });

  it('prefers runbook_proxy_jump, and a host-level ansible_become: false', () => {
    const spec = connectionSpec(host('pg2'));
    expect(spec.proxyJump).toBe('admin@jump1,jump2:2200');
    expect(spec.become).toBe(false);
    expect(spec.port).toBe(22);
  });

  it('defaults to the local user, port 22, the name as address, and leaves known_hosts to the ssh config', () => {
    const bare: InventoryHost = { name: 'bare', vars: {}, groups: ['all', 'ungrouped'] };
    expect(connectionSpec(bare)).toMatchObject({
      address: 'bare',
      port: 22,
      user: userInfo().username,
      become: false,
    });
    expect(connectionSpec(bare).knownHostsFile).toBeUndefined();
  });

  it('lets overrides (command-line flags) win', () => {
    const pw = secret('override-pw');
    const spec = connectionSpec(host('pg2'), { user: 'root', become: true, becomePassword: pw, knownHostsFile: '/tmp/kh', acceptNewHostKey: true });
    expect(spec).toMatchObject({ user: 'root', become: true, knownHostsFile: '/tmp/kh', acceptNewHostKey: true });
    expect(spec.becomePassword).toBe(pw);
  });

  it('turns passwords into Secrets that never print', async () => {
    const inv = await loadInventory([join(FIXTURES, '14-secrets/hosts.yml')]);
    const spec = connectionSpec(inv.hosts.get('s1')!);
    expect(spec.becomePassword?.reveal()).toBe('s3cret-become');
    expect(spec.password?.reveal()).toBe('pw1');
    const printed = `${JSON.stringify(spec)} ${inspect(spec)} ${String(spec.becomePassword)}`;
    expect(printed).not.toMatch(/s3cret-become|pw1/);
  });

  it('checks a hand-built host, naming it, and refuses connections other than ssh and local, naming host and value', () => {
    expect(() => connectionSpec({ name: 'x', vars: { ansible_port: 'eighty' }, groups: [] })).toThrow(/host x.*ansible_port must be an integer/);
    expect(() => connectionSpec({ name: 'x', vars: { ansible_connection: 'winrm' }, groups: [] })).toThrow(BadInputError);
    expect(() => connectionSpec({ name: 'x', vars: { ansible_connection: 'docker' }, groups: [] })).toThrow(/host x: ansible_connection=docker is not supported/);
  });

  it('ansible_connection=local picks the local transport; ssh (and its aliases) the SSH one', () => {
    expect(connectionSpec({ name: 'localhost', vars: { ansible_connection: 'local' }, groups: [] }).connection).toBe('local');
    for (const c of ['ssh', 'smart', 'paramiko']) expect(connectionSpec({ name: 'h', vars: { ansible_connection: c }, groups: [] }).connection).toBeUndefined();
    expect(connectionSpec({ name: 'h', vars: {}, groups: [] }).connection).toBeUndefined();
  });
});

describe('proxyJumpFromSshArgs', () => {
  it.each([
    ['-o ProxyJump=j1', 'j1'],
    ["-o 'ProxyJump u@j1:2200'", 'u@j1:2200'],
    ['-oProxyJump=j1,j2', 'j1,j2'],
    ['-J u@j1', 'u@j1'],
    ['-o ServerAliveInterval=30', undefined],
    ['-o ProxyJump=none', undefined],
  ])('%s → %s', (args, jump) => {
    expect(proxyJumpFromSshArgs(args)).toBe(jump);
  });

  it('refuses ProxyCommand and a malformed jump host', () => {
    expect(() => proxyJumpFromSshArgs('-o ProxyCommand="ssh -W %h:%p j"')).toThrow(/ProxyCommand/);
    expect(() => proxyJumpFromSshArgs('-o ProxyJump=u@j1:99999')).toThrow(/invalid port/);
  });
});
