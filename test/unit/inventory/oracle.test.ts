/**
 * The corpus (test/fixtures/inventories/cases.json) loaded by runbook and by `ansible-inventory
 * --list` must give the same groups, children, hosts and merged hostvars. Secret-named variables
 * are masked on Ansible's side the same way runbook masks them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadInventory, maskSecretVars, toAnsibleListJson } from '../../../src/inventory/index.js';
import { FIXTURES, pool, runAnsible } from './ansible-oracle.js';

interface Case {
  name: string;
  sources: string[];
}
const { cases } = JSON.parse(readFileSync(join(FIXTURES, 'cases.json'), 'utf8')) as { cases: Case[] };

type ListJson = Record<string, { hosts?: string[]; children?: string[]; hostvars?: Record<string, unknown> }>;

/** Order of hosts and children lists is not part of the contract; everything else is. */
function normalize(list: ListJson): ListJson {
  const out: ListJson = {};
  for (const [group, entry] of Object.entries(list)) {
    if (group === '_meta') {
      out._meta = { hostvars: maskSecretVars(entry.hostvars ?? {}) };
      continue;
    }
    out[group] = {
      ...(entry.hosts ? { hosts: [...entry.hosts].sort() } : {}),
      ...(entry.children ? { children: [...entry.children].sort() } : {}),
    };
  }
  return out;
}

const expected = new Map<string, ListJson>();

beforeAll(async () => {
  const outputs = await pool(cases, 6, (c) => runAnsible('ansible-inventory', [...c.sources.flatMap((s) => ['-i', s]), '--list']));
  cases.forEach((c, i) => expected.set(c.name, normalize(JSON.parse(outputs[i]) as ListJson)));
}, 120_000);

describe('inventory corpus matches ansible-inventory --list', () => {
  it('has at least 20 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(20);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const inventory = await loadInventory(c.sources.map((s) => join(FIXTURES, s)));
    const ours = normalize(toAnsibleListJson(inventory) as ListJson);
    const theirs = expected.get(c.name)!;
    // A corpus case that Ansible reads as nothing would compare trivially equal.
    expect(Object.keys(theirs._meta.hostvars ?? {}).length + Object.keys(theirs).length).toBeGreaterThan(2);
    expect(ours).toEqual(theirs);
  });
});
