/**
 * ansible.cfg as Ansible reads it: the INI dialect (configparser), which file is found, the
 * precedence flags > ANSIBLE_* > file > default, and where each value came from.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command as Program } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findAnsibleCfg, loadAnsibleConfig } from '../../../src/config/ansible-cfg.js';
import { parseIni } from '../../../src/config/ini.js';
import { formatConfig } from '../../../src/cli/commands/config.js';
import { connectionSpec } from '../../../src/inventory/connection.js';
import { hostsOptions, type HostsFlags } from '../../../src/cli/options.js';
import { BadInputError } from '../../../src/errors.js';

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'rb-cfg-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

/** A directory of its own per case: cwd, home and /etc stand-ins inside it. */
function place(files: Record<string, string>): { dir: string; cwd: string; home: string; systemFile: string } {
  const dir = mkdtempSync(join(root, 'case-'));
  const cwd = join(dir, 'project');
  const home = join(dir, 'home');
  mkdirSync(cwd);
  mkdirSync(home);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  chmodSync(cwd, 0o755);
  return { dir, cwd, home, systemFile: join(dir, 'etc/ansible.cfg') };
}

describe('parseIni (configparser as Ansible uses it)', () => {
  it('reads sections, = and : delimiters, lower-cased keys, comments, inline ; comments, continuation lines', () => {
    const ini = parseIni(
      ['# comment', '; comment', '[defaults]', 'Inventory = a.yml,', '   b.yml', 'remote_user: admin ; inline', 'key_with_hash = x#y', '', '[ssh_connection]', 'pipelining = True'].join('\n'),
      'f.cfg',
    );
    const d = ini.get('defaults')!;
    expect(d.get('inventory')).toEqual({ value: 'a.yml,\nb.yml', line: 4 });
    expect(d.get('remote_user')).toEqual({ value: 'admin', line: 6 });
    expect(d.get('key_with_hash')!.value).toBe('x#y');
    expect(ini.get('ssh_connection')!.get('pipelining')!.value).toBe('True');
  });

  it.each([
    ['forks = 5\n[defaults]\n', 1, /"forks = 5" comes before any \[section\] header/],
    ['[defaults]\nforks = 5\njust words\n', 3, /"just words" is not "key = value"/],
    ['[defaults]\nforks = 5\nFORKS = 6\n', 3, /option "forks" in section \[defaults\] already set at line 2/],
    ['[defaults]\n[x]\n[defaults]\n', 3, /section \[defaults\] already appeared/],
  ])('bad input %j is refused at file:line', (text, line, message) => {
    expect(() => parseIni(text, '/p/ansible.cfg')).toThrow(BadInputError);
    expect(() => parseIni(text, '/p/ansible.cfg')).toThrow(new RegExp(`^/p/ansible\\.cfg:${line}:1: ${message.source}`));
  });
});

describe('which ansible.cfg', () => {
  it('ANSIBLE_CONFIG first (a file, or a directory holding ansible.cfg), then ./ansible.cfg, ~/.ansible.cfg, /etc/ansible/ansible.cfg', () => {
    const p = place({ 'env.cfg': '', 'envdir/ansible.cfg': '', 'project/ansible.cfg': '', 'home/.ansible.cfg': '', 'etc/ansible.cfg': '' });
    const o = { cwd: p.cwd, home: p.home, systemFile: p.systemFile };
    expect(findAnsibleCfg({ ...o, env: { ANSIBLE_CONFIG: join(p.dir, 'env.cfg') } }).file).toBe(join(p.dir, 'env.cfg'));
    expect(findAnsibleCfg({ ...o, env: { ANSIBLE_CONFIG: join(p.dir, 'envdir') } }).file).toBe(join(p.dir, 'envdir/ansible.cfg'));
    expect(findAnsibleCfg({ ...o, env: {} }).file).toBe(join(p.cwd, 'ansible.cfg'));
    rmSync(join(p.cwd, 'ansible.cfg'));
    expect(findAnsibleCfg({ ...o, env: {} }).file).toBe(join(p.home, '.ansible.cfg'));
    rmSync(join(p.home, '.ansible.cfg'));
    expect(findAnsibleCfg({ ...o, env: {} }).file).toBe(p.systemFile);
    rmSync(p.systemFile);
    expect(findAnsibleCfg({ ...o, env: {} }).file).toBeUndefined();
  });

  it('./ansible.cfg in a world-writable directory is ignored, with Ansible\'s warning', () => {
    const p = place({ 'project/ansible.cfg': '[defaults]\nremote_user = mallory\n', 'home/.ansible.cfg': '[defaults]\nremote_user = me\n' });
    chmodSync(p.cwd, 0o777);
    const found = findAnsibleCfg({ cwd: p.cwd, home: p.home, systemFile: p.systemFile, env: {} });
    expect(found.file).toBe(join(p.home, '.ansible.cfg'));
    expect(found.warnings).toEqual([`Ansible is being run in a world writable directory (${p.cwd}), ignoring it as an ansible.cfg source.`]);
    expect(loadAnsibleConfig({ cwd: p.cwd, home: p.home, systemFile: p.systemFile, env: {} }).remoteUser.value).toBe('me');
  });
});

describe('values and their origins', () => {
  const cfg = ['[defaults]', 'inventory = inv/hosts.yml, ~/more.ini', 'remote_user = admin', 'private_key_file = keys/id_ed25519', 'host_key_checking = False', 'forks = 7', 'vault_password_file = .vault-pass', ''].join('\n');

  it('from the file: typed, paths relative to the file\'s directory, each with file:line', () => {
    const p = place({ 'project/ansible.cfg': cfg });
    const c = loadAnsibleConfig({ cwd: p.cwd, home: p.home, systemFile: p.systemFile, env: {} });
    const file = join(p.cwd, 'ansible.cfg');
    expect(c.inventory).toEqual({ name: 'DEFAULT_HOST_LIST', value: [join(p.cwd, 'inv/hosts.yml'), join(p.home, 'more.ini')], origin: { kind: 'file', file, line: 2 } });
    expect(c.remoteUser.value).toBe('admin');
    expect(c.privateKeyFile.value).toBe(join(p.cwd, 'keys/id_ed25519'));
    expect(c.hostKeyChecking).toMatchObject({ value: false, origin: { line: 5 } });
    expect(c.forks).toMatchObject({ value: 7, origin: { line: 6 } });
    expect(c.vaultPasswordFile.value).toBe(join(p.cwd, '.vault-pass'));
    expect(formatConfig(c, true)).toBe(
      [
        `config file = ${file}`,
        `DEFAULT_HOST_LIST(${file}:2) = ['${join(p.cwd, 'inv/hosts.yml')}', '${join(p.home, 'more.ini')}']`,
        `DEFAULT_REMOTE_USER(${file}:3) = admin`,
        `DEFAULT_PRIVATE_KEY_FILE(${file}:4) = ${join(p.cwd, 'keys/id_ed25519')}`,
        `HOST_KEY_CHECKING(${file}:5) = False`,
        `DEFAULT_FORKS(${file}:6) = 7`,
        `DEFAULT_VAULT_PASSWORD_FILE(${file}:7) = ${join(p.cwd, '.vault-pass')}`,
        '',
      ].join('\n'),
    );
  });

  it('ANSIBLE_* wins over the file (paths relative to the cwd); unset values are defaults', () => {
    const p = place({ 'project/ansible.cfg': '[defaults]\nremote_user = admin\nforks = 7\n' });
    const c = loadAnsibleConfig({ cwd: p.cwd, home: p.home, systemFile: p.systemFile, env: { ANSIBLE_REMOTE_USER: 'ops', ANSIBLE_HOST_KEY_CHECKING: 'no', ANSIBLE_INVENTORY: 'a.yml,b.yml' } });
    expect(c.remoteUser).toMatchObject({ value: 'ops', origin: { kind: 'env', name: 'ANSIBLE_REMOTE_USER' } });
    expect(c.hostKeyChecking).toMatchObject({ value: false, origin: { kind: 'env', name: 'ANSIBLE_HOST_KEY_CHECKING' } });
    expect(c.inventory.value).toEqual([join(p.cwd, 'a.yml'), join(p.cwd, 'b.yml')]);
    expect(c.forks).toMatchObject({ value: 7, origin: { kind: 'file' } });
    expect(c.privateKeyFile).toEqual({ name: 'DEFAULT_PRIVATE_KEY_FILE', value: undefined, origin: { kind: 'default' } });
    expect(formatConfig(c, false)).toMatch(/^HOST_KEY_CHECKING\(env: ANSIBLE_HOST_KEY_CHECKING\) = False$/m);
    expect(formatConfig(c, false)).toMatch(/^DEFAULT_PRIVATE_KEY_FILE\(default\) = \(/m);
  });

  it('a bad value is refused at file:line, or naming the variable', () => {
    const p = place({ 'project/ansible.cfg': '[defaults]\n\nhost_key_checking = maybe\n' });
    const o = { cwd: p.cwd, home: p.home, systemFile: p.systemFile };
    expect(() => loadAnsibleConfig({ ...o, env: {} })).toThrow(new RegExp(`^${join(p.cwd, 'ansible.cfg')}:3:1: host_key_checking must be a boolean`));
    expect(() => loadAnsibleConfig({ ...o, env: { ANSIBLE_HOST_KEY_CHECKING: 'yes', ANSIBLE_FORKS: '0' } })).toThrow(/ANSIBLE_FORKS must be a whole number ≥ 1, got "0"/);
  });
});

describe('precedence where the values are used', () => {
  it('connection: flags > inventory vars > ansible.cfg defaults > runbook defaults', () => {
    const defaults = { user: 'cfguser', privateKeyFile: '/cfg/key', hostKeyChecking: false };
    const bare = connectionSpec({ name: 'h', vars: {}, groups: [] }, { defaults });
    expect(bare).toMatchObject({ user: 'cfguser', privateKeyFile: '/cfg/key', hostKeyChecking: 'no' });
    const withVars = connectionSpec({ name: 'h', vars: { ansible_user: 'invuser', ansible_ssh_private_key_file: '/inv/key', ansible_host_key_checking: true }, groups: [] }, { defaults });
    expect(withVars).toMatchObject({ user: 'invuser', privateKeyFile: '/inv/key' });
    expect(withVars.hostKeyChecking).toBeUndefined();
    expect(connectionSpec({ name: 'h', vars: { ansible_user: 'invuser' }, groups: [] }, { defaults, user: 'flaguser' }).user).toBe('flaguser');
    expect(connectionSpec({ name: 'h', vars: {}, groups: [] }, { defaults: { hostKeyChecking: true } }).hostKeyChecking).toBeUndefined();
  });

  async function parsed(args: string[], env: Record<string, string>): Promise<HostsFlags> {
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      let got: HostsFlags | undefined;
      const program = new Program().exitOverride();
      hostsOptions(program.command('x')).action((o: HostsFlags) => {
        got = o;
      });
      await program.parseAsync(['x', ...args], { from: 'user' });
      return got!;
    } finally {
      for (const k of Object.keys(env)) if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }

  it('flags: -i, -f and --vault-password-file win over ANSIBLE_* and ansible.cfg, which fill them when absent', async () => {
    const p = place({ 'cfg/ansible.cfg': '[defaults]\ninventory = hosts.yml\nforks = 7\nvault_password_file = pw\n' });
    const env = { ANSIBLE_CONFIG: join(p.dir, 'cfg/ansible.cfg') };
    const filled = await parsed([], env);
    expect(filled).toMatchObject({ inventory: [join(p.dir, 'cfg/hosts.yml')], forks: 7, vaultPasswordFile: [join(p.dir, 'cfg/pw')] });
    expect((await parsed([], { ...env, ANSIBLE_FORKS: '3' })).forks).toBe(3);
    const flags = await parsed(['-i', 'mine.yml', '-f', '2', '--vault-password-file', 'mine.pw'], { ...env, ANSIBLE_FORKS: '3' });
    expect(flags).toMatchObject({ inventory: ['mine.yml'], forks: 2, vaultPasswordFile: ['mine.pw'] });
    // --vault-id is a vault password source too: the configured file is not added beside it.
    expect((await parsed(['--vault-id', 'prod@x'], env)).vaultPasswordFile).toEqual([]);
  });

  it('without ansible.cfg or ANSIBLE_*, nothing is filled in (Ansible\'s /etc/ansible/hosts and forks=5 are not taken)', async () => {
    const p = place({});
    const none = await parsed([], { ANSIBLE_CONFIG: join(p.dir, 'missing.cfg'), HOME: p.home });
    expect(none.forks).toBeUndefined();
    expect(none.vaultPasswordFile).toEqual([]);
  });
});
