#!/usr/bin/env node
// Inventory and -e @file loading at growing sizes: CPU seconds and the growth ratio per 10× input
// (≈10 linear, ≈100 quadratic). Local only: no lab, no network. Needs `npm run build` first.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseExtraVars } from '../dist/src/engine/params.js';
import { loadInventory } from '../dist/src/inventory/index.js';

const dir = mkdtempSync(join(tmpdir(), 'rb-bench-load-'));
const cpu = async (f) => {
  const t = process.cpuUsage();
  await f();
  const u = process.cpuUsage(t);
  return (u.user + u.system) / 1e6;
};
const write = (name, lines) => {
  const file = join(dir, name);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
};
const yamlHosts = (n) => write(`h${n}.yml`, ['all:', '  hosts:', ...Array.from({ length: n }, (_, i) => `    h${i}: {ansible_host: 10.231.200.${(i % 250) + 1}, rank: ${i}}`)]);
const iniHosts = (n) => write(`h${n}.ini`, ['[web]', ...Array.from({ length: n }, (_, i) => `w${i} ansible_host=10.231.201.${(i % 250) + 1}`)]);
const varsKeys = (n) => write(`v${n}.yml`, Array.from({ length: n }, (_, i) => `key${i}: value${i}`));

const cases = [
  ['YAML inventory, hosts', [3000, 30_000], (n) => loadInventory([yamlHosts(n)])],
  ['INI inventory, hosts', [3000, 30_000], (n) => loadInventory([iniHosts(n)])],
  ['-e @file, keys', [10_000, 100_000], (n) => parseExtraVars([`@${varsKeys(n)}`], [])],
];
try {
  for (const [what, sizes, f] of cases) {
    const s = [];
    for (const n of sizes) s.push(await cpu(() => f(n)));
    console.log(`${what.padEnd(24)} ${sizes.map((n, i) => `${n}: ${s[i].toFixed(2)} s`).join('   ')}   ratio ${(s[1] / s[0]).toFixed(1)}× for 10× input`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
