/**
 * What `-i PATH` means: a file, or a directory whose inventory files are all loaded (sorted,
 * recursively) the way Ansible walks one. Each file is YAML or INI by its name, or by its first line.
 */
import { readdirSync, statSync } from 'node:fs';
import { readTextFile } from '../core/text-file.js';
import { dirname, extname, join, resolve } from 'node:path';
import { BadInputError } from '../errors.js';
import { isScript, runInventoryScript } from './load-script.js';
import { isVaultText, VaultKeyring } from './vault.js';

export type InventoryFormat = 'yaml' | 'ini' | 'script';

export interface InventoryFile {
  path: string;
  format: InventoryFormat;
  /** The file's text (decrypted when it was a vault); for a script, its `--list` JSON. */
  text: string;
  /** A whole-file vault: its values are secrets. */
  encrypted?: boolean;
}

export interface InventorySource {
  /** The -i argument, absolute. */
  path: string;
  /** Where its group_vars/ and host_vars/ are: the directory itself, or the file's directory. */
  basedir: string;
  files: InventoryFile[];
}

// Ansible's IGNORED_ALWAYS and default INVENTORY_IGNORE_EXTS: in a directory, *.ini is skipped too.
const IGNORED_NAMES = /^(?:\..*|host_vars|group_vars|vars_plugins)$/;
const IGNORED_EXTS = ['.pyc', '.pyo', '.swp', '.bak', '~', '.rpm', '.md', '.txt', '.rst', '.orig', '.ini', '.cfg', '.retry'];
const YAML_EXTS = ['.yml', '.yaml', '.json'];

export function resolveSource(arg: string, vault?: VaultKeyring): InventorySource {
  const path = resolve(arg);
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    throw new BadInputError(`inventory ${arg} does not exist`);
  }
  if (!isDir) return { path, basedir: dirname(path), files: [readInventoryFile(path, false, vault)] };
  const files: InventoryFile[] = [];
  walk(path, files, vault);
  if (files.length === 0) throw new BadInputError(`inventory directory ${arg} holds no inventory file`);
  return { path, basedir: path, files };
}

function walk(dir: string, out: InventoryFile[], vault?: VaultKeyring): void {
  for (const name of readdirSync(dir).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (IGNORED_NAMES.test(name) || IGNORED_EXTS.some((e) => name.endsWith(e))) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out, vault);
    else out.push(readInventoryFile(path, true, vault));
  }
}

function readInventoryFile(path: string, inDirectory: boolean, vault?: VaultKeyring): InventoryFile {
  const ext = extname(path).toLowerCase();
  if (ext === '.toml') throw new BadInputError('TOML inventories are not supported: use YAML or INI', { file: path, line: 1, col: 1 });
  // Ansible's script plugin comes before yaml and ini: an executable file with a #! line is run.
  if (isScript(path)) return { path, format: 'script', text: runInventoryScript(path) };
  const { text, encrypted } = readMaybeVaulted(path, vault);
  const format: InventoryFormat = YAML_EXTS.includes(ext) ? 'yaml' : ext === '.ini' && !inDirectory ? 'ini' : looksLikeYaml(text) ? 'yaml' : 'ini';
  return { path, format, text, ...(encrypted ? { encrypted } : {}) };
}

/** Ansible tries YAML, then INI. We decide from the first meaningful line, so errors speak the right language. */
export function looksLikeYaml(text: string): boolean {
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    if (line.startsWith('---') || line.startsWith('{')) return true;
    if (line.startsWith('[')) return false;
    // A YAML inventory starts with `group:`; an INI host line is `name`, `name:port` or `name k=v`.
    return /^[^\s=]+:(?:\s|$)/.test(line) || /^["'][^"']*["']\s*:/.test(line);
  }
  return false;
}

/** A file's text; a whole-file Ansible Vault is decrypted (every value in it then counts as secret). */
export function readMaybeVaulted(path: string, vault?: VaultKeyring): { text: string; encrypted: boolean } {
  const text = readTextFile(path);
  if (!isVaultText(text)) return { text, encrypted: false };
  return { text: (vault ?? new VaultKeyring()).decrypt(text, { file: path }), encrypted: true };
}
