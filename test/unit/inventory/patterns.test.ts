/**
 * --limit patterns: selectHosts must pick the same hosts as `ansible PATTERN --list-hosts` on the
 * same inventory, and refuse patterns that match nothing (Ansible only warns).
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BadInputError, ExitCode } from '../../../src/errors.js';
import { loadInventory, selectHosts, type Inventory } from '../../../src/inventory/index.js';
import { FIXTURES, pool, runAnsible } from './ansible-oracle.js';

const SOURCE = '22-limit/hosts.yml';
const PATTERNS = [
  'all',
  '*',
  'web',
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
  const outputs = await pool(PATTERNS, 6, (p) => runAnsible('ansible', ['-i', SOURCE, p, '--list-hosts']));
  PATTERNS.forEach((p, i) => {
    // "  hosts (2):\n    web1\n    web2\n"
    expected.set(p, outputs[i].split('\n').slice(1).map((l) => l.trim()).filter(Boolean).sort());
  });
}, 120_000);

describe('selectHosts matches ansible --list-hosts', () => {
  it.each(PATTERNS)('%s', (pattern) => {
    const theirs = expected.get(pattern)!;
    expect(theirs.length).toBeGreaterThan(0);
    expect(selectHosts(inventory, pattern).map((h) => h.name).sort()).toEqual(theirs);
  });
});

describe('selectHosts', () => {
  it('defaults to all hosts, in inventory order', () => {
    expect(selectHosts(inventory).map((h) => h.name)).toEqual(['web1', 'web2', 'db1', 'db2', 'web3', 'db3']);
  });

  it.each([
    ['nosuch', /"nosuch" matches no group or host/],
    ['web:nosuch', /"nosuch" matches no group or host/],
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
