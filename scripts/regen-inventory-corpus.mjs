#!/usr/bin/env node
/**
 * Regenerate test/fixtures/inventories-public/expected/*.json: what `ansible-inventory --list` says
 * for each case of the public inventory corpus (corpus.json), run in the case's directory (an
 * inventory script may read files relative to it). Each expected file also records the sha256 of
 * the case's inputs, so the test sees when a fixture changed without being regenerated.
 *
 *   node scripts/regen-inventory-corpus.mjs [CASE…]
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const CORPUS = join(dirname(fileURLToPath(import.meta.url)), '../test/fixtures/inventories-public');

/** Every file of a case, relative to the corpus, with its sha256. */
export function caseInputs(name) {
  const out = {};
  const walk = (dir) => {
    for (const entry of readdirSync(dir).sort()) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else out[relative(CORPUS, path)] = createHash('sha256').update(readFileSync(path)).digest('hex');
    }
  };
  walk(join(CORPUS, name));
  return out;
}

const ENV = {
  ...process.env,
  ANSIBLE_LOCALHOST_WARNING: 'False',
  ANSIBLE_NOCOLOR: 'True',
  ANSIBLE_DEPRECATION_WARNINGS: 'False',
  // A source Ansible cannot parse is an error, not a warning with half an inventory.
  ANSIBLE_INVENTORY_UNPARSED_FAILED: 'True',
  ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED: 'True',
};

async function regenerate(c) {
  const args = [...c.sources.flatMap((s) => ['-i', join(CORPUS, s)]), ...(c.vault ?? []).flatMap((v) => ['--vault-id', join(CORPUS, v)]), '--list'];
  const expected = { command: ['ansible-inventory', ...args.map((a) => (a.startsWith(CORPUS) ? relative(CORPUS, a) : a))], inputs: caseInputs(c.name) };
  try {
    const { stdout } = await promisify(execFile)('ansible-inventory', args, { env: ENV, cwd: join(CORPUS, c.name), maxBuffer: 64 << 20 });
    Object.assign(expected, { exitCode: 0, list: JSON.parse(stdout) });
  } catch (error) {
    if (error.code === 'ENOENT') throw new Error('ansible-inventory is not installed: run scripts/ensure-deps.sh');
    const last = String(error.stderr).trim().split('\n').filter((l) => l.startsWith('ERROR!')).pop() ?? String(error.stderr).trim();
    Object.assign(expected, { exitCode: error.code, error: last.replaceAll(`${CORPUS}/`, '') });
  }
  mkdirSync(join(CORPUS, 'expected'), { recursive: true });
  writeFileSync(join(CORPUS, 'expected', `${c.name}.json`), `${JSON.stringify(expected, null, 2)}\n`);
  return `${c.name}: ${expected.exitCode === 0 ? 'listed' : `ansible-inventory exit ${expected.exitCode}`}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { cases } = JSON.parse(readFileSync(join(CORPUS, 'corpus.json'), 'utf8'));
  const only = process.argv.slice(2);
  for (const c of cases.filter((x) => only.length === 0 || only.includes(x.name))) console.log(await regenerate(c));
}
