/**
 * Real inventories from public projects (test/fixtures/inventories-public, origins.json): runbook
 * must read each as `ansible-inventory --list` did (expected/NAME.json, written by
 * scripts/regen-inventory-corpus.mjs), vaulted and templated values included, or refuse it with
 * file:line:col and exit 2 where the case says so.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { BadInputError } from '../../../src/errors.js';
import { loadInventory, maskSecretVars, toAnsibleListJson } from '../../../src/inventory/index.js';
import { vaultKeyring } from '../../../src/inventory/vault-passwords.js';
// @ts-expect-error a plain .mjs script, no types
import { CORPUS, caseInputs } from '../../../scripts/regen-inventory-corpus.mjs';

interface Case {
  name: string;
  sources: string[];
  vault?: string[];
  refused?: { error: string; why: string };
}
interface Expected {
  inputs: Record<string, string>;
  exitCode: number;
  list?: ListJson;
  error?: string;
}
type ListJson = Record<string, { hosts?: string[]; children?: string[]; hostvars?: Record<string, unknown> }>;
interface Origin {
  file: string;
  repo: string;
  path: string;
  commit: string;
}

const corpus = CORPUS as string;
const inputsOf = caseInputs as (name: string) => Record<string, string>;
const { cases } = JSON.parse(readFileSync(join(corpus, 'corpus.json'), 'utf8')) as { cases: Case[] };
const { files: origins } = JSON.parse(readFileSync(join(corpus, 'origins.json'), 'utf8')) as { files: Origin[] };
const expectedOf = (name: string): Expected => JSON.parse(readFileSync(join(corpus, 'expected', `${name}.json`), 'utf8')) as Expected;

/** Order of hosts and children is not part of the contract; secret-named vars are masked on both sides. */
function normalize(list: ListJson): ListJson {
  const out: ListJson = {};
  for (const [group, entry] of Object.entries(list)) {
    if (group === '_meta') out._meta = { hostvars: maskSecretVars(entry.hostvars ?? {}) };
    else out[group] = { ...(entry.hosts ? { hosts: [...entry.hosts].sort() } : {}), ...(entry.children ? { children: [...entry.children].sort() } : {}) };
  }
  return out;
}

/** Loaded in the case's directory, where ansible-inventory ran (an inventory script reads files relative to it). */
async function load(c: Case) {
  const cwd = process.cwd();
  process.chdir(join(corpus, c.name));
  try {
    const vault = await vaultKeyring({ vaultId: (c.vault ?? []).map((v) => join(corpus, v)) });
    return await loadInventory(c.sources.map((s) => join(corpus, s)), { vault });
  } finally {
    process.chdir(cwd);
  }
}

describe('public inventory corpus', () => {
  it('has 30+ cases from 7 projects, every file with its origin (repository, path, commit)', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
    expect(new Set(origins.map((o) => o.repo)).size).toBeGreaterThanOrEqual(7);
    const files = cases.flatMap((c) => Object.keys(inputsOf(c.name))).sort();
    expect(origins.map((o) => o.file).sort()).toEqual(files);
    for (const o of origins) {
      expect(o.repo).toMatch(/^[\w.-]+\/[\w.-]+$/);
      expect(o.commit).toMatch(/^[0-9a-f]{40}$/);
      expect(o.path).not.toBe('');
    }
  });

  it('includes whole-file and inline vault, templates, an inventory script and a localhost ansible_connection=local', () => {
    const text = (file: string) => readFileSync(join(corpus, file), 'utf8');
    const all = origins.map((o) => text(o.file));
    expect(all.some((t) => t.startsWith('$ANSIBLE_VAULT;1.1;AES256'))).toBe(true);
    expect(all.some((t) => /: !vault \|/.test(t))).toBe(true);
    expect(all.filter((t) => /\{\{.*\}\}/.test(t)).length).toBeGreaterThan(10);
    expect(all.some((t) => t.startsWith('#!/bin/sh'))).toBe(true);
    expect(all.some((t) => /^localhost\s+ansible_connection=local/m.test(t))).toBe(true);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const expected = expectedOf(c.name);
    // A fixture changed without `node scripts/regen-inventory-corpus.mjs` would compare against stale output.
    expect(expected.inputs).toEqual(inputsOf(c.name));
    if (c.refused) {
      const error = await load(c).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(BadInputError);
      expect((error as Error).message).toMatch(new RegExp(`${c.refused.error}`));
      expect((error as Error).message).toMatch(/^\/\S+:\d+:\d+: /);
      if (/Ansible refuses it too/.test(c.refused.why)) expect(expected.exitCode).not.toBe(0);
      return;
    }
    expect(expected.exitCode).toBe(0);
    const theirs = normalize(expected.list!);
    // A case Ansible reads as nothing compares trivially equal: only the one meant to be empty may.
    if (c.name !== 'ansible-inventory-empty') expect(Object.keys(theirs._meta.hostvars ?? {}).length + Object.keys(theirs).length).toBeGreaterThan(2);
    expect(normalize(toAnsibleListJson(await load(c)) as ListJson)).toEqual(theirs);
  });

  // One CLI start costs seconds on a loaded machine: two cases (runbook's own refusal, Ansible's too), side by side.
  it('the compiled CLI exits 2 with file:line:col for a refused case', async () => {
    const bin = join(import.meta.dirname, '../../../bin/runbook.js');
    const picked = ['ansible-inventory-toml', 'ansible-vault-invalid-format'].map((n) => cases.find((c) => c.name === n)!);
    await Promise.all(
      picked.map(async (c) => {
        const args = [bin, 'inventory', '--list', ...c.sources.flatMap((s) => ['-i', join(corpus, s)]), ...(c.vault ?? []).flatMap((v) => ['--vault-id', join(corpus, v)])];
        const result = await promisify(execFile)(process.execPath, args, { cwd: join(corpus, c.name) }).then(
          () => ({ code: 0, stderr: '' }),
          (e: { code: number; stderr: string }) => e,
        );
        expect(result.code, c.name).toBe(2);
        expect(result.stderr, c.name).toMatch(new RegExp(`^runbook: ${corpus}/\\S+:\\d+:\\d+: .*${c.refused!.error.replace(/^.*?: /, '')}`));
      }),
    );
  }, 180_000);
});
