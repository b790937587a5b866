/**
 * --limit patterns: selectHosts must pick the same hosts as Ansible's InventoryManager (what
 * `ansible PATTERN --list-hosts` runs) on the same inventory, and refuse patterns that match
 * nothing (Ansible only warns).
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BadInputError, ExitCode } from '../../../src/errors.js';
import { loadInventory, selectHosts, type Inventory } from '../../../src/inventory/index.js';
import { ansibleListHosts, FIXTURES } from './ansible-oracle.js';

const SOURCE = '22-limit/hosts.yml';
const PATTERNS = [
  'all',
  '*',
  'web',
  'web:nosuch',
  'prod',
  'web1',
  'web*',
  'web?',
  '*3',
  'db[0]',
  'prod[1:2]',
  '~^(web|db)1$',
  'web:db',
  'web,db',
  'web3:staging',
  'web:&prod',
  'prod:&web*',
  'all:!prod',
  'web*:!web3',
  'prod:!db2:!web1',
  '!staging',
  'staging:web:&prod',
  'web_extra:&staging',
];

let inventory: Inventory;
const expected = new Map<string, string[]>();

beforeAll(async () => {
  inventory = await loadInventory([join(FIXTURES, SOURCE)]);
  const matched = await ansibleListHosts([SOURCE], PATTERNS);
  for (const p of PATTERNS) expected.set(p, [...matched[p]].sort());
}, 120_000);

describe('selectHosts matches Ansible', () => {
  it.each(PATTERNS)('%s', (pattern) => {
    const theirs = expected.get(pattern)!;
    expect(theirs.length).toBeGreaterThan(0);
    expect(selectHosts(inventory, pattern).map((h) => h.name).sort()).toEqual(theirs);
  });
});

describe('selectHosts', () => {
  it('ignores a term that matches nothing, with a warning, as Ansible does (mons:nonexistent)', () => {
    const warnings: string[] = [];
    const hosts = selectHosts(inventory, 'web:nosuch', (w) => warnings.push(w));
    expect(hosts.map((h) => h.name)).toEqual(selectHosts(inventory, 'web').map((h) => h.name));
    expect(warnings).toEqual(['Could not match supplied host pattern, ignoring: nosuch']);
  });

  it('defaults to all hosts, in inventory order', () => {
    expect(selectHosts(inventory).map((h) => h.name)).toEqual(['web1', 'web2', 'db1', 'db2', 'web3', 'db3']);
  });

  it.each([
    ['nosuch', /"nosuch" matches no group or host/],
    ['pg*', /"pg\*" matches no group or host/],
    ['web:&staging:&db', /no hosts match "web:&staging:&db"/],
    ['web:!web', /no hosts match "web:!web"/],
    ['', /empty host pattern/],
  ])('refuses %j', (pattern, message) => {
    let error: unknown;
    try {
      selectHosts(inventory, pattern);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(BadInputError);
    expect((error as BadInputError).exitCode).toBe(ExitCode.badInput);
    expect((error as Error).message).toMatch(message);
  });
});
