/**
 * The corpus (test/fixtures/inventories/cases.json) loaded by runbook and by `ansible-inventory
 * --list` must give the same groups, children, hosts and merged hostvars. Secret-named variables
 * are masked on Ansible's side the same way runbook masks them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadInventory, maskSecretVars, toAnsibleListJson } from '../../../src/inventory/index.js';
import { vaultKeyring } from '../../../src/inventory/vault-passwords.js';
import { FIXTURES, pool, runAnsible } from './ansible-oracle.js';

interface Case {
  name: string;
  sources: string[];
  /** Vault ids, [ID@]FILE relative to the fixtures. */
  vault?: string[];
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
  const outputs = await pool(cases, 6, (c) =>
    runAnsible('ansible-inventory', [...c.sources.flatMap((s) => ['-i', s]), ...(c.vault ?? []).flatMap((v) => ['--vault-id', v]), '--list']),
  );
  cases.forEach((c, i) => expected.set(c.name, JSON.parse(outputs[i]) as ListJson));
}, 600_000);

describe('inventory corpus matches ansible-inventory --list', () => {
  it('has at least 20 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(20);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const vault = await vaultKeyring({ vaultId: (c.vault ?? []).map((v) => v.replace(/^(?:(\w+)@)?/, (_m, id?: string) => `${id ? `${id}@` : ''}${FIXTURES}/`)) });
    const inventory = await loadInventory(c.sources.map((s) => join(FIXTURES, s)), { vault });
    const ours = normalize(toAnsibleListJson(inventory) as ListJson);
    // Normalized after our load: values runbook decrypted from a vault are masked on both sides.
    const theirs = normalize(expected.get(c.name)!);
    // A corpus case that Ansible reads as nothing would compare trivially equal.
    expect(Object.keys(theirs._meta.hostvars ?? {}).length + Object.keys(theirs).length).toBeGreaterThan(2);
    expect(ours).toEqual(theirs);
  });
});
