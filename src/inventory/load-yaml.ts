/**
 * A YAML inventory (Ansible's `yaml` plugin): top-level keys are groups; a group holds `hosts`,
 * `children` and `vars`, nested to any depth. Where Ansible warns and skips, this throws.
 */
import { isMap, isScalar, type Node, type Pair } from 'yaml';
import { BadInputError } from '../errors.js';
import type { InventoryBuilder } from './builder.js';
import { parseHostPattern } from './ranges.js';
import type { VaultKeyring } from './vault.js';
import { deref, keyName, mapEntries, parseYamlFile, type YamlFile } from './yaml-file.js';

const SECTIONS = new Set(['hosts', 'children', 'vars']);

export function loadYamlInventory(builder: InventoryBuilder, file: string, text: string, vault?: VaultKeyring): void {
  const y = parseYamlFile(file, text, vault);
  const root = y.doc.contents;
  // Ansible reads an empty file as an empty inventory (its INI plugin takes what YAML refused).
  if (root === null || (isScalar(root) && root.value === null)) return;
  if (!isMap(root)) throw new BadInputError('a YAML inventory must be a mapping of group names', y.pos(root));
  for (const pair of root.items) {
    if (keyName(pair.key) === 'plugin') {
      throw new BadInputError('inventory plugin configurations are not supported: give a static inventory', y.pos(pair.key as Node));
    }
  }
  for (const pair of root.items) parseGroup(builder, y, pair);
}

/** Loads one `name: {hosts, children, vars}` entry; returns the group name. */
function parseGroup(builder: InventoryBuilder, y: YamlFile, pair: Pair): string {
  const name = keyName(pair.key);
  const node = deref(y, pair.value as Node | null);
  builder.addGroup(name);
  if (node === null || (isScalar(node) && node.value === null)) return name;
  if (!isMap(node)) {
    throw new BadInputError(`group "${name}" must be a mapping with hosts, children or vars (or empty)`, y.pos(node));
  }
  for (const section of mapEntries(y, node)) {
    const key = keyName(section.key);
    const sectionAt = y.pos(section.key as Node);
    if (!SECTIONS.has(key)) {
      throw new BadInputError(`unexpected key "${key}" in group "${name}": only hosts, children and vars are allowed`, sectionAt);
    }
    const entries = sectionEntries(y, section, `${key} of group "${name}"`);
    for (const entry of entries) {
      const entryName = keyName(entry.key);
      const entryAt = y.pos(entry.key as Node);
      if (key === 'vars') {
        builder.setGroupVar(name, entryName, y.value(entry.value as Node), y.pos((entry.value as Node) ?? entry.key));
      } else if (key === 'children') {
        builder.addChild(name, parseGroup(builder, y, entry), entryAt);
      } else {
        // Ansible refuses a host name YAML reads as a number or boolean (`1234:`), it does not stringify it.
        const keyValue = isScalar(entry.key) ? entry.key.value : undefined;
        if (typeof keyValue === 'number' || typeof keyValue === 'boolean') {
          throw new BadInputError(`host name ${entryName} in group "${name}" must be a string: enclose integers, floats and booleans in quotation marks`, entryAt);
        }
        // `pg03: *standby_host` reuses another host's mapping.
        const vars = deref(y, entry.value as Node | null);
        if (vars !== null && !(isScalar(vars) && vars.value === null) && !isMap(vars)) {
          throw new BadInputError(`host "${entryName}" in group "${name}" must have a mapping of variables (or nothing)`, y.pos(vars));
        }
        const { hosts, port } = parseHostPattern(entryName, entryAt);
        for (const host of hosts) {
          builder.addHost(host, name, port, entryAt);
          if (!isMap(vars)) continue;
          for (const v of mapEntries(y, vars)) {
            builder.setHostVar(host, keyName(v.key), y.value(v.value as Node), y.pos((v.value as Node) ?? (v.key as Node)));
          }
        }
      }
    }
  }
  return name;
}

/** The entries of a hosts/children/vars section: a mapping, nothing, or (as Ansible allows) one bare name. */
function sectionEntries(y: YamlFile, section: Pair, what: string): Pair[] {
  const node = deref(y, section.value as Node | null);
  if (node === null || (isScalar(node) && node.value === null)) return [];
  if (isMap(node)) return mapEntries(y, node);
  if (isScalar(node) && typeof node.value === 'string') {
    return [{ key: node, value: null } as unknown as Pair];
  }
  throw new BadInputError(`${what} must be a mapping`, y.pos(node));
}
