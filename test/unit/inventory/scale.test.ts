/**
 * Loading grows linearly with the input: an inventory of 30k hosts and an `-e @file` of 100k keys
 * load completely, and ten times the input costs about ten times the CPU, not a hundred (a set
 * lookup where a list scan was made 30k hosts take 38 s). bench/loading.mjs prints the figures.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseExtraVars } from '../../../src/engine/params.js';
import { loadInventory } from '../../../src/inventory/index.js';

const dir = mkdtempSync(join(tmpdir(), 'rb-scale-'));

function yamlInventory(n: number): string {
  const file = join(dir, `hosts-${n}.yml`);
  const lines = ['all:', '  children:', '    db:', '      hosts:'];
  for (let i = 0; i < n; i++) lines.push(`        h${i}:`, `          ansible_host: 10.231.200.${(i % 250) + 1}`, `          rank: ${i}`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

function iniInventory(n: number): string {
  const file = join(dir, `hosts-${n}.ini`);
  const lines = ['[web]'];
  for (let i = 0; i < n; i++) lines.push(`w${i} ansible_host=10.231.201.${(i % 250) + 1} rank=${i}`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

function varsFile(n: number): string {
  const file = join(dir, `vars-${n}.yml`);
  writeFileSync(file, Array.from({ length: n }, (_, i) => `key${i}: value${i}\n`).join(''));
  return file;
}

/** CPU seconds (not wall: other processes on a loaded machine do not count) of f. */
async function cpu<T>(f: () => Promise<T> | T): Promise<{ value: T; s: number }> {
  const t = process.cpuUsage();
  const value = await f();
  const u = process.cpuUsage(t);
  return { value, s: (u.user + u.system) / 1e6 };
}

describe('loading at scale', () => {
  it('30k hosts (YAML and INI) load completely, in time linear in their number', async () => {
    const small = await cpu(() => loadInventory([yamlInventory(3000), iniInventory(3000)]));
    const big = await cpu(() => loadInventory([yamlInventory(30_000), iniInventory(30_000)]));
    expect(small.value.hosts.size).toBe(6000);
    expect(big.value.hosts.size).toBe(60_000);
    expect(big.value.groups.get('db')!.hosts).toHaveLength(30_000);
    expect(big.value.hosts.get('h29999')!.vars.rank).toBe(29_999);
    expect(big.value.hosts.get('w29999')!.vars.ansible_host).toBe('10.231.201.250');
    // Linear: ~10×; quadratic: ~100×. The bound leaves room for fixed costs and GC.
    expect(big.s / Math.max(small.s, 0.05), `3k: ${small.s.toFixed(2)} s, 30k: ${big.s.toFixed(2)} s`).toBeLessThan(25);
  }, 120_000);

  it('-e @file with 100k keys parses completely, in time linear in its size', async () => {
    const errors: string[] = [];
    const small = await cpu(() => parseExtraVars([`@${varsFile(10_000)}`], errors));
    const big = await cpu(() => parseExtraVars([`@${varsFile(100_000)}`], errors));
    expect(errors).toEqual([]);
    expect(Object.keys(small.value)).toHaveLength(10_000);
    expect(Object.keys(big.value)).toHaveLength(100_000);
    expect(big.value.key99999).toBe('value99999');
    expect(big.s / Math.max(small.s, 0.05), `10k: ${small.s.toFixed(2)} s, 100k: ${big.s.toFixed(2)} s`).toBeLessThan(25);
  }, 120_000);
});
