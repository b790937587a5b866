/**
 * The flags an Ansible user types, the same on run, plan, exec and drill: -e as Ansible parses it,
 * --limit @file, --list-hosts, -u/-b/--private-key, vault flags; one colour policy everywhere.
 * The CLI runs in a child process (built bin), as a user runs it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { colorLevel } from '../../../src/cli/color.js';
import { connectionOverrides, hostsArgs, limitPattern } from '../../../src/cli/options.js';
import { parseExtraVars } from '../../../src/engine/params.js';

const BIN = join(import.meta.dirname, '../../../bin/runbook.js');
const FIXTURES = join(import.meta.dirname, '../../fixtures/inventories');

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: undefined, FORCE_COLOR: undefined, ...env }, timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('-e as ansible-playbook parses it', () => {
  it('splits key=value pairs like a shell, reads JSON and @file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rb-e-'));
    writeFileSync(join(dir, 'vars.yml'), 'c: 3\n');
    const errors: string[] = [];
    expect(parseExtraVars(['a=1 b="two words"', '{"json": 1, "list": [1, 2]}', `@${join(dir, 'vars.yml')}`], errors)).toEqual({
      a: '1',
      b: 'two words',
      json: 1,
      list: [1, 2],
      c: 3,
    });
    expect(errors).toEqual([]);
    parseExtraVars(['a=1 oops', '{"bad": '], errors);
    expect(errors[0]).toMatch(/expected key=value pairs, JSON or @file.yml, got "oops"/);
    expect(errors[1]).toMatch(/not valid JSON\/YAML/);
  });
});

describe('host flags', () => {
  it('--limit @file joins the patterns of a retry file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rb-l-'));
    writeFileSync(join(dir, 'site.retry'), 'db1\n\ndb2\n');
    expect(limitPattern(`@${join(dir, 'site.retry')}`)).toBe('db1,db2');
    expect(limitPattern('web:&prod')).toBe('web:&prod');
    expect(() => limitPattern('@/nonexistent/x.retry')).toThrow(/cannot read \/nonexistent\/x.retry: ENOENT/);
  });

  it('-u -b --become-user --private-key --accept-new-host-keys override the inventory, and reach child runs', () => {
    const f = { user: 'deploy', become: true, becomeUser: 'postgres', privateKey: '/k', acceptNewHostKeys: true, vaultPasswordFile: ['/p'], vaultId: [], verbose: 2, forks: 3 };
    // ansible.cfg's values ride along as defaults, below the inventory (test/unit/config/ansible-cfg.test.ts).
    const { defaults: _fromAnsibleCfg, ...flags } = connectionOverrides(f);
    expect(flags).toEqual({ user: 'deploy', become: true, becomeUser: 'postgres', privateKeyFile: '/k', acceptNewHostKey: true });
    expect(hostsArgs(f)).toEqual(['-u', 'deploy', '-b', '--become-user', 'postgres', '--private-key', '/k', '-f', '3', '--accept-new-host-keys', '--vault-password-file', '/p', '-vv']);
  });

  it.each([
    ['run', ['run', 'check-keepalives']],
    ['plan', ['plan', 'check-keepalives']],
    ['exec', ['exec']],
    ['drill', ['drill', '--group', 'all']],
  ])('--list-hosts on %s prints the hosts, warns about a pattern that matches nothing, connects to none', (_name, head) => {
    const inv = join(FIXTURES, '29-gaps/hosts.ini');
    const tail = head[0] === 'exec' ? ['--', 'true'] : [];
    const r = cli([...head, '-i', inv, '--limit', 'mons:nonexistent', '--list-hosts', '-u', 'x', '-b', ...tail]);
    expect(r.err).toContain('[WARNING]: Could not match supplied host pattern, ignoring: nonexistent');
    expect(r.out).toBe('  pattern: mons:nonexistent\n  hosts (3):\n    2001:db8::10\n    2001:db8::11\n    mon3\n');
    expect(r.code).toBe(0);
  }, 60_000);

  it('inventory --list takes the vault flags', () => {
    const v = join(FIXTURES, '26-vault');
    const r = cli(['inventory', '--list', '-i', join(v, 'hosts.ini'), '--vault-password-file', join(v, 'vault-pass.txt'), '--vault-id', `prod@${join(v, 'prod-pass.txt')}`]);
    expect(r.code).toBe(0);
    const listed = JSON.parse(r.out) as { _meta: { hostvars: Record<string, Record<string, unknown>> } };
    expect(listed._meta.hostvars.db2).toMatchObject({ ansible_host: '10.1.0.12', replication_token: '***', pg_port: 5433 });
    expect(r.out).not.toContain('tok-db2-secret');
    const none = cli(['inventory', '--list', '-i', join(v, 'hosts.ini')]);
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/hosts\.ini: this value is encrypted with Ansible Vault and no vault password was given/);
  }, 60_000);
});

describe('colour: FORCE_COLOR, then NO_COLOR, then the terminal', () => {
  it('decides the level', () => {
    expect(colorLevel({}, true)).toBe(1);
    expect(colorLevel({}, false)).toBe(0);
    expect(colorLevel({ NO_COLOR: '1' }, true)).toBe(0);
    expect(colorLevel({ FORCE_COLOR: '1' }, false)).toBe(1);
    expect(colorLevel({ FORCE_COLOR: '0' }, true)).toBe(0);
    expect(colorLevel({ FORCE_COLOR: '2', NO_COLOR: '1' }, false)).toBe(2);
  });

  it('exec honours both (an unreachable host is printed red only when colour is on)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rb-c-'));
    const inv = join(dir, 'hosts.ini');
    writeFileSync(inv, 'dead ansible_host=127.0.0.1 ansible_port=1\n');
    const forced = cli(['exec', '-i', inv, '--', 'true'], { FORCE_COLOR: '1' });
    expect(forced.code).toBe(5);
    expect(forced.out).toContain('\x1b[31mdead | UNREACHABLE!');
    const off = cli(['exec', '-i', inv, '--', 'true'], { FORCE_COLOR: undefined, NO_COLOR: '1' });
    expect(off.code).toBe(5);
    expect(off.out).toContain('dead | UNREACHABLE!');
    expect(off.out).not.toContain('\x1b[');
  }, 90_000);
});
