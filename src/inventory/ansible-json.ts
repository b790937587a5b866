/**
 * The JSON of `ansible-inventory --list` (and `--host`), with secrets masked: runbook never prints
 * a password, so any variable named like one shows as "***".
 */
import { MASK, maskSecrets } from '../shell/secret.js';
import { UnsafeText } from './template.js';
import { VaultValue } from './vault.js';
import type { Inventory, InventoryGroup, InventoryHost } from './types.js';

/** Passwords and secrets by name: ansible_password, ansible_ssh_pass, ansible_become_pass, *_password, *_secret. */
const SECRET_NAME = /(?:^|_)(?:password|passwd|pass|passphrase|secret)$/i;

export function isSecretVarName(name: string): boolean {
  return SECRET_NAME.test(name);
}

/** A deep copy with secret-named keys masked, at any depth, and keys sorted as Ansible prints them. */
export function maskSecretVars<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => maskSecretVars(v)) as T;
  if (value instanceof VaultValue || value instanceof UnsafeText) return value.toJSON() as T; // as ansible-inventory shows it
  if (typeof value === 'string') return maskSecrets(value) as T; // decrypted vault file values
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[key];
    out[key] = isSecretVarName(key) ? MASK : maskSecretVars(v);
  }
  return out as T;
}

/**
 * The `--list` shape: every group reachable from `all` with its direct hosts and children (empty
 * ones left out, `all` without hosts), and `_meta.hostvars` for hosts that have vars. With `only`,
 * just those hosts (a --limit), as ansible-inventory does.
 */
export function toAnsibleListJson(inventory: Inventory, only?: Iterable<InventoryHost>): Record<string, unknown> {
  const selected = new Set([...(only ?? inventory.hosts.values())].map((h) => h.name));
  const out: Record<string, unknown> = {};
  const seen = new Set<string>();
  const visit = (group: InventoryGroup) => {
    const entry: { hosts?: string[]; children?: string[] } = {};
    const hosts = group.hosts.filter((h) => selected.has(h));
    if (group.name !== 'all' && hosts.length > 0) entry.hosts = hosts;
    if (group.children.length > 0) entry.children = [...group.children];
    for (const child of group.children) {
      if (seen.has(child)) continue;
      seen.add(child);
      visit(inventory.groups.get(child)!);
    }
    if (entry.hosts || entry.children) out[group.name] = entry;
  };
  visit(inventory.groups.get('all')!);
  const hostvars: Record<string, unknown> = {};
  for (const host of [...inventory.hosts.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (selected.has(host.name) && Object.keys(host.vars).length > 0) hostvars[host.name] = maskSecretVars(host.raw ?? host.vars);
  }
  return sortKeys({ _meta: { hostvars }, ...out });
}

/** What `--host NAME` prints. */
export function hostVarsJson(host: InventoryHost): Record<string, unknown> {
  return maskSecretVars(host.raw ?? host.vars);
}

function sortKeys(obj: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.keys(obj).sort().map((k) => [k, obj[k]]));
}
