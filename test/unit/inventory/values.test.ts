/**
 * Values as Ansible has them: vault files and inline !vault values made by the real ansible-vault
 * (test/fixtures/inventories/26-vault), decrypted only when read and masked from then on; Jinja2
 * templates (27-templates) rendered when read, with errors naming file, var and construct.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BadInputError } from '../../../src/errors.js';
import { connectionSpec, loadInventory, toAnsibleListJson } from '../../../src/inventory/index.js';
import { vaultKeyring } from '../../../src/inventory/vault-passwords.js';
import { maskSecrets } from '../../../src/shell/secret.js';
import { FIXTURES } from './ansible-oracle.js';

const VAULT = join(FIXTURES, '26-vault');
const TEMPLATES = join(FIXTURES, '27-templates');

async function fails(p: Promise<unknown> | (() => unknown)): Promise<BadInputError> {
  const error = await (typeof p === 'function' ? Promise.resolve().then(p) : p).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BadInputError);
  return error as BadInputError;
}

describe('Ansible Vault', () => {
  const keyring = () => vaultKeyring({ vaultPasswordFile: [join(VAULT, 'vault-pass.txt')], vaultId: [`prod@${join(VAULT, 'prod-pass.txt')}`] });

  it('decrypts a whole-file INI, a 1.2 group_vars file and inline values, and masks what it decrypted', async () => {
    const inv = await loadInventory([join(VAULT, 'hosts.ini')], { vault: await keyring() });
    const db1 = inv.hosts.get('db1')!;
    expect(db1.vars.ansible_host).toBe('10.1.0.11');
    expect(db1.vars.replication_password).toBe('inline-db1-secret');
    expect(db1.vars.api_token).toBe('inline-prod-token');
    expect(db1.vars.pg_port).toBe(5433);
    // Every decrypted value is a secret from now on, wherever it appears in output.
    expect(maskSecrets('pw inline-db1-secret tok-db2-secret gv-become-secret')).toBe('pw *** *** ***');
    const spec = connectionSpec(db1);
    expect(spec.becomePassword?.reveal()).toBe('gv-become-secret');
    expect(String(spec.becomePassword)).toBe('***');
  });

  it('lists an inline vault value as ansible-inventory does, without decrypting it', async () => {
    const onlyDefault = await vaultKeyring({ vaultPasswordFile: [join(VAULT, 'vault-pass.txt')] });
    // group_vars/db.yml needs the prod password: without it, loading still fails there (whole files are read at load).
    const e = await fails(loadInventory([join(VAULT, 'hosts.ini')], { vault: onlyDefault }));
    expect(e.message).toContain(join(VAULT, 'group_vars/db.yml'));
    expect(e.message).toMatch(/no given vault password fits \(tried default/);
    const inv = await loadInventory([join(VAULT, 'hosts.ini')], { vault: await keyring() });
    const listed = toAnsibleListJson(inv) as { _meta: { hostvars: Record<string, Record<string, unknown>> } };
    expect(listed._meta.hostvars.db1!.api_token).toEqual({ __ansible_vault: expect.stringMatching(/^\$ANSIBLE_VAULT;1\.2;AES256;prod\n/) });
  });

  it('refuses a whole-file vault without a password, naming the file and the flags', async () => {
    const e = await fails(loadInventory([join(VAULT, 'hosts.ini')]));
    expect(e.message).toContain(`${join(VAULT, 'hosts.ini')}: `);
    expect(e.message).toMatch(/--vault-password-file FILE, --vault-id \[ID@\]FILE or --ask-vault-pass/);
  });

  it('a wrong password for an inline value fails when it is read, at its line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runbook-vault-'));
    writeFileSync(join(dir, 'wrong.txt'), 'not-the-password\n');
    const inlineOnly = join(dir, 'hosts.yml');
    // The inline value of the fixture, in an inventory of its own.
    const { readFileSync } = await import('node:fs');
    const inline = readFileSync(join(VAULT, 'host_vars/db1.yml'), 'utf8').split('\napi_token')[0]!;
    writeFileSync(inlineOnly, `all:\n  hosts:\n    h1:\n${inline.split('\n').map((l) => `      ${l}`).join('\n')}\n`);
    const inv = await loadInventory([inlineOnly], { vault: await vaultKeyring({ vaultPasswordFile: [join(dir, 'wrong.txt')] }) });
    const h1 = inv.hosts.get('h1')!;
    expect(h1.vars.pg_slot_name).toBe('db1_slot'); // other vars read fine
    const e = await fails(() => h1.vars.replication_password);
    expect(e.message).toMatch(new RegExp(`^${inlineOnly}:5:\\d+: cannot decrypt`));
  });

  it('--vault-id prompt without a terminal says which flag to use instead', async () => {
    const e = await fails(vaultKeyring({ vaultId: ['prod@prompt'] }));
    expect(e.message).toMatch(/needs a terminal: give --vault-password-file FILE or --vault-id ID@FILE/);
  });
});

describe('Jinja2 templates in inventory values', () => {
  const load = (env: NodeJS.ProcessEnv = {}) => loadInventory([join(TEMPLATES, 'hosts.ini')], { env });

  it('renders variable references, default, lookup env and file, and magic vars when read', async () => {
    const inv = await load({ RUNBOOK_TEST_USER: 'deploy' });
    const pg1 = inv.hosts.get('pg1')!;
    const pg2 = inv.hosts.get('pg2')!;
    expect(pg1.vars.ansible_host).toBe('10.2.0.11');
    expect(pg2.vars.ansible_host).toBe('10.2.0.12');
    expect(pg1.vars.ansible_user).toBe('deploy');
    expect(pg1.vars.motd).toBe('welcome to db');
    expect(pg1.vars.cluster_hosts).toBe('pg1,pg2');
    const spec = connectionSpec(pg2);
    expect(spec).toMatchObject({ address: '10.2.0.12', port: 22, user: 'deploy' });
    // default(…, true) also replaces an empty value, as in Jinja2.
    expect((await load({ RUNBOOK_TEST_USER: '' })).hosts.get('pg1')!.vars.ansible_user).toBe('postgres');
  });

  it('never renders a var nobody reads; the one that is read names file, var and construct', async () => {
    const inv = await load();
    const pg1 = inv.hosts.get('pg1')!;
    expect(Object.keys(pg1.vars)).toContain('unused_broken');
    expect(pg1.raw!.unused_broken).toBe('{{ nobody | reads_this_filter }}');
    const e = await fails(() => pg1.vars.unused_broken);
    expect(e.message).toBe(
      `${join(TEMPLATES, 'group_vars/db.yml')}:5:16: unused_broken: the Jinja2 filter "reads_this_filter" is not supported by runbook ` +
        `(it renders variables, default, lookup('env'|'file') and plain filters); give the value itself (in "{{ nobody | reads_this_filter }}")`,
    );
  });

  it('refuses an unsupported lookup, an undefined variable and a loop, naming each', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runbook-tpl-'));
    const file = join(dir, 'hosts.yml');
    writeFileSync(
      file,
      [
        'all:',
        '  hosts:',
        '    h1:',
        `      a: "{{ lookup('hashi_vault', 'secret/x') }}"`,
        '      b: "{{ nowhere }}"',
        '      c: "{{ d }}"',
        '      d: "{{ c }}"',
        '      e: "{{ undefined_thing | default(omit_me | default(\'fallback\')) }}"',
        '',
      ].join('\n'),
    );
    const h1 = (await loadInventory([file])).hosts.get('h1')!;
    expect((await fails(() => h1.vars.a)).message).toMatch(new RegExp(`^${file}:4:10: a: lookup\\('hashi_vault'\\) is not supported by runbook`));
    expect((await fails(() => h1.vars.b)).message).toMatch(/:5:10: b: undefined variable "nowhere"/);
    expect((await fails(() => h1.vars.c)).message).toMatch(/c: template loop: c → d → c/);
    expect(h1.vars.e).toBe('fallback');
  });

  it('a templated connection var is checked once rendered', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runbook-tpl-'));
    const file = join(dir, 'hosts.yml');
    writeFileSync(file, 'all:\n  hosts:\n    h1:\n      p: eighty\n      ansible_port: "{{ p }}"\n');
    const h1 = (await loadInventory([file])).hosts.get('h1')!;
    expect((await fails(() => connectionSpec(h1))).message).toMatch(/:5:21: ansible_port must be an integer port number in 1-65535, got "eighty"/);
  });
});
