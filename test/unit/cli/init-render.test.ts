/**
 * The inventory `runbook init` writes: runbook and ansible-inventory read the same hosts, groups
 * and vars from it; host lists parse as NAME=ADDRESS[:PORT] with clear errors.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadInventory, toAnsibleListJson } from '../../../src/inventory/index.js';
import { parseHostList, renderInit } from '../../../src/inventory/init-render.js';
import { runAnsible } from '../inventory/ansible-oracle.js';

const answers = {
  db: parseHostList('pg1=10.0.0.11, pg2=10.0.0.12:2222', '--hosts').map((h) => ({ ...h, found: `PostgreSQL 15 on ${h.name}` })),
  nfs: parseHostList('nfs1=10.0.0.20', '--nfs')[0]!,
  user: 'ops',
  keyFile: '/home/ops/.ssh/id_ed25519',
  become: true,
  primary: 'pg1',
  vip: '10.0.0.100',
  knownHostsFile: '/srv/project/known_hosts',
};

describe('runbook init inventory', () => {
  it('parses host lists and refuses bad items', () => {
    expect(parseHostList('pg1=10.0.0.1, pg2=[2001:db8::2]:2200 db3.example.org', 'x')).toEqual([
      { name: 'pg1', address: '10.0.0.1', port: 22 },
      { name: 'pg2', address: '2001:db8::2', port: 2200 },
      { name: 'db3.example.org', address: 'db3.example.org', port: 22 },
    ]);
    expect(() => parseHostList('pg1=10.0.0.1,pg1=10.0.0.2', '--hosts')).toThrow(/pg1 is given twice/);
    expect(() => parseHostList('pg1=10.0.0.1:99999', '--hosts')).toThrow(/port 99999 of pg1 is out of range/);
    expect(() => parseHostList(' ', '--hosts')).toThrow(/at least one/);
    expect(() => parseHostList('pg1=10.0.0.1:ssh', '--hosts')).toThrow(/"pg1=10.0.0.1:ssh" is not NAME=ADDRESS/);
  });

  it('is commented and read the same by runbook and ansible-inventory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rb-init-render-'));
    const files = renderInit(answers, new Date('2026-12-01T00:00:00Z'));
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), text);
    }
    expect(files['inventory.yml']).toMatch(/^# Written by `runbook init` on 2026-12-01/);
    expect(files['inventory.yml']).toMatch(/#   pg2: PostgreSQL 15 on pg2/);
    expect(files['group_vars/postgres.yml']).toMatch(/^pg_primary: pg1$/m);
    const ours = toAnsibleListJson(await loadInventory([join(dir, 'inventory.yml')]));
    const theirs = JSON.parse(await runAnsible('ansible-inventory', ['-i', join(dir, 'inventory.yml'), '--list'])) as Record<string, unknown>;
    expect(ours).toEqual(theirs);
    const inv = await loadInventory([join(dir, 'inventory.yml')]);
    expect(inv.hosts.get('pg2')!.vars).toMatchObject({ ansible_host: '10.0.0.12', ansible_port: 2222, ansible_user: 'ops', pg_primary: 'pg1', vip: '10.0.0.100' });
    expect(inv.hosts.get('nfs1')!.groups).toContain('nfs_servers');
  }, 60_000);

  it('refuses a primary that is not a database host', () => {
    expect(() => renderInit({ ...answers, primary: 'nfs1' })).toThrow(/the primary nfs1 is not one of the database hosts/);
  });
});
