/**
 * Bad inventories are refused with a BadInputError (exit code 2) that names file:line:col and
 * what is wrong — where Ansible would warn and go on with half an inventory.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BadInputError, ExitCode } from '../../../src/errors.js';
import { loadInventory } from '../../../src/inventory/index.js';
import { FIXTURES } from './ansible-oracle.js';

const BAD = join(FIXTURES, 'bad');

// [-i path, file the error is in, line, col, what the message must say]
const CASES: Array<[string, string, number, number, RegExp]> = [
  ['malformed.yml', 'malformed.yml', 3, 3, /invalid YAML: Flow sequence/],
  ['tab.yml', 'tab.yml', 3, 1, /a tab in indentation/],
  ['duplicate.yml', 'duplicate.yml', 5, 7, /duplicate key "ansible_user"/],
  ['list.yml', 'list.yml', 1, 1, /must be a mapping of group names/],
  ['unknown-key.yml', 'unknown-key.yml', 2, 3, /unexpected key "host" in group "web"/],
  ['range-reversed.yml', 'range-reversed.yml', 3, 5, /invalid host range \[03:01\].*03 is greater than 01/],
  ['range-mixed.ini', 'range-mixed.ini', 3, 1, /invalid host range \[a:1\].*numbers or both be single letters/],
  ['port-word.yml', 'port-word.yml', 4, 21, /ansible_port must be an integer port number in 1-65535, got "eighty"/],
  ['port-range.ini', 'port-range.ini', 2, 26, /ansible_port must be an integer port number in 1-65535, got 70000/],
  ['become.yml', 'become.yml', 3, 21, /ansible_become must be a boolean.*"maybe"/],
  ['priority.yml', 'priority.yml', 7, 29, /ansible_group_priority must be an integer, got "high"/],
  ['proxycommand.yml', 'proxycommand.yml', 4, 32, /ProxyCommand, which runbook does not take from ansible_ssh_common_args/],
  ['cycle.yml', 'cycle.yml', 3, 5, /group "a" would be its own ancestor: a → b → a/],
  ['cycle.ini', 'cycle.ini', 5, 1, /group "b" would be its own ancestor: b → a → b/],
  ['section-space.ini', 'section-space.ini', 3, 1, /invalid section header "\[web servers\]"/],
  ['section-type.ini', 'section-type.ini', 1, 1, /unknown type "hostz"/],
  ['undefined-child.ini', 'undefined-child.ini', 3, 1, /\[prod:children\] names group "db", which is declared nowhere/],
  ['unclosed-quote.ini', 'unclosed-quote.ini', 2, 1, /No closing quotation/],
  ['no-equals.ini', 'no-equals.ini', 2, 6, /expected key=value after the host name, got "ansible_user"/],
  ['empty-key.ini', 'empty-key.ini', 6, 2, /a variable name is missing before "=" in \[web:vars\]/],
  ['vault.yml', 'vault.yml', 4, 25, /a !vault value must be an Ansible Vault envelope/],
  ['gv/hosts.yml', 'gv/group_vars/web.yml', 3, 3, /ansible_port must be an integer port number/],
  ['gvdup/hosts.yml', 'gvdup/group_vars/all.yml', 3, 1, /duplicate key "a"/],
];

async function loadError(source: string): Promise<BadInputError> {
  const error = await loadInventory([join(BAD, source)]).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BadInputError);
  return error as BadInputError;
}

describe('bad inventories', () => {
  it.each(CASES)('%s', async (source, file, line, col, what) => {
    const error = await loadError(source);
    expect(error.exitCode).toBe(ExitCode.badInput);
    expect(error.position).toEqual({ file: join(BAD, file), line, col });
    expect(error.message.startsWith(`${join(BAD, file)}:${line}:${col}: `)).toBe(true);
    expect(error.message).toMatch(what);
  });

  it('refuses a missing inventory path', async () => {
    const error = await loadError('does-not-exist.yml');
    expect(error.message).toMatch(/does not exist/);
  });

  it('refuses an empty list of sources', async () => {
    await expect(loadInventory([])).rejects.toThrow(/no inventory given/);
  });
});

describe('runbook inventory (compiled CLI)', () => {
  const root = resolve(FIXTURES, '../../..');
  const cli = (...args: string[]) => {
    // npm test builds first (pretest); a missing build is a setup problem, said plainly.
    expect(existsSync(join(root, 'dist/src/cli/main.js')), 'run `npm run build` first').toBe(true);
    return spawnSync(process.execPath, [join(root, 'bin/runbook.js'), 'inventory', ...args], { encoding: 'utf8', timeout: 30_000 });
  };

  it('exits 2 with file:line:col for a bad inventory', () => {
    const result = cli('--list', '-i', join(BAD, 'port-word.yml'));
    expect(result.status).toBe(ExitCode.badInput);
    expect(result.stderr).toContain(`${join(BAD, 'port-word.yml')}:4:21: ansible_port must be an integer`);
    expect(result.stdout).toBe('');
  });

  it('exits 2 for a tab in a YAML inventory', () => {
    const result = cli('--list', '-i', join(BAD, 'tab.yml'));
    expect(result.status).toBe(ExitCode.badInput);
    expect(result.stderr).toContain('tab.yml:3:1: a tab in indentation');
  });

  it('prints --list JSON from several -i, with --limit', () => {
    const result = cli('--list', '-i', join(FIXTURES, '11-multi-source/one/hosts.yml'), '-i', join(FIXTURES, '11-multi-source/two/hosts.ini'), '--limit', 'web:!web3');
    expect(result.status).toBe(0);
    const json = JSON.parse(result.stdout) as { web: { hosts: string[] }; _meta: { hostvars: Record<string, { all_from: string }> } };
    expect(json.web.hosts).toEqual(['web1', 'web2']);
    expect(Object.keys(json._meta.hostvars)).toEqual(['web1', 'web2']);
    expect(json._meta.hostvars.web1.all_from).toBe('two');
  });

  it('prints one host with --host, secrets masked', () => {
    const result = cli('--host', 's1', '-i', join(FIXTURES, '14-secrets/hosts.yml'));
    expect(result.status).toBe(0);
    const vars = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(vars.ansible_become_password).toBe('***');
    expect(vars.passthrough).toBe('visible');
    expect(result.stdout).not.toMatch(/s3cret-become|pw[1-4]|hush|nested/);
  });

  it('exits 2 for an unknown --host and for a pattern matching nothing', () => {
    const inv = join(FIXTURES, '22-limit/hosts.yml');
    const unknown = cli('--host', 'nope', '-i', inv);
    expect(unknown.status).toBe(ExitCode.badInput);
    expect(unknown.stderr).toMatch(/no host "nope"/);
    const nothing = cli('--list', '-i', inv, '--limit', 'nosuch*');
    expect(nothing.status).toBe(ExitCode.badInput);
    expect(nothing.stderr).toMatch(/"nosuch\*" matches no group or host/);
  });

  it('needs -i and exactly one of --list / --host', () => {
    expect(cli('--list').status).toBe(ExitCode.badInput);
    expect(cli('-i', join(FIXTURES, '22-limit/hosts.yml')).status).toBe(ExitCode.badInput);
  });
});
