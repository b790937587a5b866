/**
 * The inventory, Ansible-compatible: load YAML/INI sources with their group_vars/host_vars, merge
 * variables with Ansible's precedence, select hosts with Ansible patterns, and describe how to
 * connect to each. Bad input throws a BadInputError naming file:line:col.
 */
import { BadInputError, type SourcePosition } from '../errors.js';
import { InventoryBuilder } from './builder.js';
import { recordOrigins } from './connection.js';
import { loadIniInventory } from './load-ini.js';
import { loadScriptInventory } from './load-script.js';
import { loadYamlInventory } from './load-yaml.js';
import { groupVars, mergeHostVars } from './merge.js';
import { resolveSource } from './sources.js';
import { lazyVars } from './template.js';
import type { Inventory, InventoryGroup, InventoryHost } from './types.js';
import { registerSecret, VaultKeyring } from './vault.js';
import { VarsDirs } from './vars-dirs.js';

export type { ConnectionSpec, Inventory, InventoryGroup, InventoryHost } from './types.js';
export { connectionSpec, type ConnectionOverrides } from './connection.js';
export { selectHosts } from './patterns.js';
export { VaultKeyring } from './vault.js';
export { toAnsibleListJson, hostVarsJson, maskSecretVars, isSecretVarName } from './ansible-json.js';

/** Vars that name a host (every message prints them anyway): not masked even from a vaulted inventory. */
const HOST_IDENTITY = new Set(['ansible_host', 'ansible_ssh_host', 'ansible_port', 'ansible_ssh_port', 'ansible_user', 'ansible_ssh_user', 'ansible_connection']);

export interface LoadOptions {
  /** Passwords for Ansible Vault values and files. */
  vault?: VaultKeyring;
  /** Environment for lookup('env', …) (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export async function loadInventory(paths: string[], options: LoadOptions = {}): Promise<Inventory> {
  if (paths.length === 0) throw new BadInputError('no inventory given: pass -i PATH');
  const sources = paths.map((p) => resolveSource(p, options.vault));
  const builder = new InventoryBuilder();
  for (const source of sources) {
    for (const file of source.files) {
      if (file.format === 'yaml') loadYamlInventory(builder, file.path, file.text, options.vault);
      else if (file.format === 'script') loadScriptInventory(builder, file.path, file.text);
      else loadIniInventory(builder, file.path, file.text);
    }
  }
  builder.reconcile();

  const varsDirs = new VarsDirs(sources.map((s) => s.basedir), options.vault);
  const encrypted = new Set(sources.flatMap((s) => s.files.filter((f) => f.encrypted).map((f) => f.path)));
  const hosts = new Map<string, InventoryHost>();
  const groupHosts: Record<string, string[]> = {};
  for (const g of builder.groups.values()) groupHosts[g.name] = [];
  for (const data of builder.hosts.values()) {
    for (const g of builder.groupsOf(data)) groupHosts[g]!.push(data.name);
  }
  const hostvars: Record<string, Record<string, unknown>> = {};
  for (const data of builder.hosts.values()) {
    const merged = mergeHostVars(builder, varsDirs, data);
    const raw = Object.fromEntries([...merged].map(([k, v]) => [k, v.value]));
    for (const [k, v] of merged) if (encrypted.has(v.pos.file) && !HOST_IDENTITY.has(k)) registerSecret(v.value);
    const groups = [...builder.groupsOf(data)];
    const vars = lazyVars({
      host: data.name,
      raw,
      origin: (name) => merged.get(name)?.pos,
      magic: {
        inventory_hostname: data.name,
        inventory_hostname_short: data.name.split('.')[0],
        group_names: groups.filter((g) => g !== 'all' && g !== 'ungrouped').sort(),
        groups: groupHosts,
        hostvars,
      },
      ...(options.env ? { env: options.env } : {}),
    });
    hostvars[data.name] = vars;
    const host: InventoryHost = { name: data.name, vars, raw, groups };
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
