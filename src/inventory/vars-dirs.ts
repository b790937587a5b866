/**
 * `group_vars/` and `host_vars/` beside each inventory source (Ansible's host_group_vars plugin):
 * for a name, the first of `name`, `name.yml`, `name.yaml`, `name.json` that exists; when it is a
 * directory, every file in it (sorted, recursively, skipping hidden and `~` files and other extensions).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { isMap, isScalar, type Node } from 'yaml';
import { BadInputError } from '../errors.js';
import type { VarMap } from './builder.js';
import { checkConnectionVar } from './connection.js';
import { readMaybeVaulted } from './sources.js';
import { registerSecret, type VaultKeyring } from './vault.js';
import { keyName, mapEntries, parseYamlFile } from './yaml-file.js';

const EXTENSIONS = ['.yml', '.yaml', '.json'];

export type VarsKind = 'group_vars' | 'host_vars';

export class VarsDirs {
  private readonly fileCache = new Map<string, VarMap>();
  /** Each vars directory's entries, read once: one stat per host of a 30k-host inventory was most of its load time. */
  private readonly listings = new Map<string, Set<string> | null>();

  /** @param basedirs one per inventory source, in -i order (a directory source is its own basedir). */
  constructor(
    private readonly basedirs: string[],
    private readonly vault?: VaultKeyring,
  ) {}

  /** The vars of one entity from every source, later sources winning (Ansible combines per source). */
  varsFor(kind: VarsKind, names: string[]): VarMap {
    const out: VarMap = new Map();
    for (const dir of this.basedirs) {
      for (const name of names) {
        for (const file of findVarsFiles(join(dir, kind), name, (d) => this.listing(d))) {
          for (const [k, v] of this.load(file)) out.set(k, v);
        }
      }
    }
    return out;
  }

  /** Every vars file read so far, for Inventory.sources. */
  get files(): string[] {
    return [...this.fileCache.keys()];
  }

  private listing(dir: string): Set<string> | null {
    let entries = this.listings.get(dir);
    if (entries === undefined) {
      entries = isDir(dir) ? new Set(readdirSync(dir)) : null;
      this.listings.set(dir, entries);
    }
    return entries;
  }

  private load(file: string): VarMap {
    let vars = this.fileCache.get(file);
    if (!vars) {
      vars = loadVarsFile(file, this.vault);
      this.fileCache.set(file, vars);
    }
    return vars;
  }
}

function isDir(path: string): boolean | undefined {
  try {
    return statSync(path).isDirectory();
  } catch {
    return undefined; // does not exist
  }
}

/** `listing`: the directory's entries (null: no such directory); read from disk when not given. */
export function findVarsFiles(dir: string, name: string, listing: (dir: string) => Set<string> | null = (d) => (isDir(d) ? new Set(readdirSync(d)) : null)): string[] {
  const entries = listing(dir);
  if (!entries) return [];
  for (const ext of ['', ...EXTENSIONS]) {
    if (!entries.has(name + ext)) continue;
    const path = join(dir, name + ext);
    const d = isDir(path);
    if (d === undefined) continue;
    return d ? filesIn(path) : [path];
  }
  return [];
}

function filesIn(dir: string): string[] {
  const found: string[] = [];
  // Python sorts by code point; so does a plain comparison.
  for (const entry of readdirSync(dir).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (entry.startsWith('.') || entry.endsWith('~')) continue;
    const path = join(dir, entry);
    const ext = extname(entry);
    if (isDir(path)) {
      if (!ext) found.push(...filesIn(path));
    } else if (!ext || EXTENSIONS.includes(ext)) {
      found.push(path);
    }
  }
  return found;
}

/** A vars file: a mapping of variables, or empty; a whole-file vault is decrypted, its values all secret. */
export function loadVarsFile(file: string, vault?: VaultKeyring): VarMap {
  const { text, encrypted } = readMaybeVaulted(file, vault);
  const y = parseYamlFile(file, text, vault);
  const root = y.doc.contents;
  const vars: VarMap = new Map();
  if (root === null || (isScalar(root) && root.value === null)) return vars;
  if (!isMap(root)) throw new BadInputError('a vars file must be a mapping of variable names to values', y.pos(root));
  for (const pair of mapEntries(y, root)) {
    const key = keyName(pair.key);
    const pos = y.pos((pair.value as Node) ?? (pair.key as Node));
    const value = y.value(pair.value as Node);
    if (encrypted) registerSecret(value);
    checkConnectionVar(key, value, pos);
    vars.set(key, { value, pos });
  }
  return vars;
}
