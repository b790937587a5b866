/**
 * The inventory, Ansible-compatible: load YAML/INI sources with their group_vars/host_vars, merge
 * variables with Ansible's precedence, select hosts with Ansible patterns, and describe how to
 * connect to each. Bad input throws a BadInputError naming file:line:col.
 */
import { BadInputError, type SourcePosition } from '../errors.js';
import { InventoryBuilder } from './builder.js';
import { recordOrigins } from './connection.js';
import { loadIniInventory } from './load-ini.js';
import { loadYamlInventory } from './load-yaml.js';
import { groupVars, mergeHostVars } from './merge.js';
import { resolveSource } from './sources.js';
import type { Inventory, InventoryGroup, InventoryHost } from './types.js';
import { VarsDirs } from './vars-dirs.js';

export type { ConnectionSpec, Inventory, InventoryGroup, InventoryHost } from './types.js';
export { connectionSpec, type ConnectionOverrides } from './connection.js';
export { selectHosts } from './patterns.js';
export { toAnsibleListJson, hostVarsJson, maskSecretVars, isSecretVarName } from './ansible-json.js';

export async function loadInventory(paths: string[]): Promise<Inventory> {
  if (paths.length === 0) throw new BadInputError('no inventory given: pass -i PATH');
  const sources = paths.map(resolveSource);
  const builder = new InventoryBuilder();
  for (const source of sources) {
    for (const file of source.files) {
      if (file.format === 'yaml') loadYamlInventory(builder, file.path, file.text);
      else loadIniInventory(builder, file.path, file.text);
    }
  }
  builder.reconcile();

  const varsDirs = new VarsDirs(sources.map((s) => s.basedir));
  const hosts = new Map<string, InventoryHost>();
  for (const data of builder.hosts.values()) {
    const merged = mergeHostVars(builder, varsDirs, data);
    const host: InventoryHost = {
      name: data.name,
      vars: Object.fromEntries([...merged].map(([k, v]) => [k, v.value])),
      groups: [...builder.groupsOf(data)],
    };
    recordOrigins(host, new Map<string, SourcePosition>([...merged].map(([k, v]) => [k, v.pos])));
    hosts.set(host.name, host);
  }
  const groups = new Map<string, InventoryGroup>();
  for (const g of builder.groups.values()) {
    const vars = groupVars(g, varsDirs);
    groups.set(g.name, {
      name: g.name,
      hosts: [...g.hosts],
      children: [...g.children],
      vars: Object.fromEntries([...vars].map(([k, v]) => [k, v.value])),
    });
  }
  const files = sources.flatMap((s) => s.files.map((f) => f.path));
  return { hosts, groups, sources: [...files, ...varsDirs.files] };
}
