/** The Inventory that loadInventory returns: what the oracle's JSON does not show. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadInventory } from '../../../src/inventory/index.js';
import { FIXTURES } from './ansible-oracle.js';

describe('loadInventory', () => {
  it('gives each host its groups with ancestors, all and ungrouped as Ansible has them', async () => {
    const inv = await loadInventory([join(FIXTURES, '01-yaml-basic/hosts.yml')]);
    expect([...inv.hosts.keys()]).toEqual(['bastion', 'web1', 'web2', 'pg1', 'pg2', 'stage1']);
    expect(new Set(inv.hosts.get('pg1')!.groups)).toEqual(new Set(['all', 'prod', 'db', 'pg']));
    expect(new Set(inv.hosts.get('bastion')!.groups)).toEqual(new Set(['all', 'ungrouped']));
    expect(inv.groups.get('prod')).toMatchObject({ hosts: [], children: ['web', 'db'], vars: { env: 'prod' } });
    expect(inv.groups.get('web')!.hosts).toEqual(['web1', 'web2']);
  });

  it('lists every file it read, vars files included', async () => {
    const inv = await loadInventory([join(FIXTURES, '12-directory/inv')]);
    const names = inv.sources.map((s) => s.slice(join(FIXTURES, '12-directory/inv').length + 1));
    expect(names).toEqual(expect.arrayContaining(['01-base.yml', '02-hosts', '05-extra.json', 'more/sub.yaml', 'group_vars/web.yml', 'host_vars/db1.yml']));
    expect(names).not.toContain('03-ignored.ini');
  });

  it('keeps group_vars files in the group vars (inline first, files over them)', async () => {
    const inv = await loadInventory([join(FIXTURES, '04-group-vars-files/hosts.yml')]);
    expect(inv.groups.get('web')!.vars).toMatchObject({ inline_only: true, overridden: 'web_file', from_web: 'web.yaml' });
  });

  it('reads !unsafe as the plain string', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runbook-inv-'));
    writeFileSync(join(dir, 'hosts.yml'), 'web:\n  hosts:\n    w1:\n      motd: !unsafe "{{ not a template }}"\n');
    const inv = await loadInventory([join(dir, 'hosts.yml')]);
    expect(inv.hosts.get('w1')!.vars.motd).toBe('{{ not a template }}');
  });
});
