/**
 * Options several commands share, declared once so they read and behave the same everywhere:
 * run, plan, exec and drill all take the Ansible flags for choosing and reaching hosts.
 */
import { readFileSync } from 'node:fs';
import type { Command as Program } from 'commander';
import { BadInputError } from '../errors.js';
import { ansibleConfig } from '../config/ansible-cfg.js';
import type { ConnectionOverrides, Inventory, InventoryHost } from '../inventory/index.js';

/** commander reducer for a repeatable option: every occurrence is kept, in order. */
export const collect = (value: string, previous: string[]): string[] => [...previous, value];

/**
 * Fill what the flags left unset from ansible.cfg / ANSIBLE_* (flags win): Ansible's default
 * (/etc/ansible/hosts, forks 5) is not taken, runbook's own defaults stay.
 */
function fromAnsibleConfig(command: Program, fill: (o: Record<string, unknown>, set: (key: string, value: unknown) => void) => void): Program {
  return command.hook('preAction', (self) => fill(self.opts(), (key, value) => self.setOptionValueWithSource(key, value, 'config')));
}

/** `-i, --inventory PATH`, repeatable, as in Ansible: a file or a directory; else ansible.cfg's `inventory`. */
export function inventoryOption(command: Program): Program {
  return fromAnsibleConfig(command.option('-i, --inventory <path>', 'inventory file or directory (repeatable; default: ansible.cfg inventory / ANSIBLE_INVENTORY)', collect, []), (o, set) => {
    const configured = ansibleConfig().inventory;
    if ((o.inventory as string[]).length === 0 && configured.value) set('inventory', configured.value);
  });
}

/** Vault passwords, as ansible-playbook takes them. */
export interface VaultFlags {
  vaultPasswordFile: string[];
  vaultId: string[];
  askVaultPass?: boolean;
}

export function vaultOptions(command: Program): Program {
  const declared = command
    .option('--vault-password-file <file>', 'Ansible Vault password file (an executable one is run) (repeatable; default: ansible.cfg vault_password_file)', collect, [])
    .option('--vault-id <[id@]file|prompt>', 'an Ansible Vault id and its password source (repeatable)', collect, [])
    .option('--ask-vault-pass', 'ask for the Ansible Vault password (in a terminal)');
  return fromAnsibleConfig(declared, (o, set) => {
    const configured = ansibleConfig().vaultPasswordFile.value;
    const given = (o.vaultPasswordFile as string[]).length + (o.vaultId as string[]).length > 0 || o.askVaultPass;
    if (!given && configured) set('vaultPasswordFile', [configured]);
  });
}

/** Choosing and reaching hosts: the flags an Ansible user types, on every command that connects. */
export interface HostsFlags extends VaultFlags {
  inventory: string[];
  limit?: string;
  user?: string;
  become?: boolean;
  becomeUser?: string;
  privateKey?: string;
  forks?: number;
  knownHosts?: string;
  acceptNewHostKeys?: boolean;
  listHosts?: boolean;
  verbose: number;
}

function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new BadInputError(`${name} must be a whole number ≥ 1, got "${value}"`);
    return n;
  };
}

export function hostsOptions(command: Program, forksHelp = 'hosts in parallel (default: all selected hosts)'): Program {
  return vaultOptions(inventoryOption(command))
    .option('-l, --limit <pattern|@file>', 'only hosts matching an Ansible pattern (web:&prod, pg*, all:!db1), or the patterns in a file (a .retry file)')
    .option('-u, --user <name>', 'connect as this user (over ansible_user)')
    .option('-b, --become', 'run through sudo (sudo -n, or sudo -S with ansible_become_password)')
    .option('--become-user <user>', 'sudo to this user (default: ansible_become_user, or root)')
    .option('--private-key <file>', 'SSH private key file (over ansible_ssh_private_key_file)')
    .option('-f, --forks <n>', forksHelp, positiveInt('--forks'))
    .option('--known-hosts <file>', 'known_hosts file to verify host keys against')
    .option('--accept-new-host-keys', 'record the key of a host not yet known (a changed key is still refused)')
    .option('--list-hosts', 'print the hosts that would be used, and stop')
    .option('-v, --verbose', 'more output: -v commands, -vv their output, -vvv SSH events', (_v: string, n: number) => n + 1, 0)
    .hook('preAction', (self) => {
      const forks = ansibleConfig().forks.value;
      if (self.opts().forks === undefined && forks !== undefined) self.setOptionValueWithSource('forks', forks, 'config');
    });
}

/** The pattern of `--limit`: as given, or `@file`'s lines joined (Ansible's retry files). */
export function limitPattern(limit: string | undefined): string | undefined {
  if (limit === undefined || !limit.startsWith('@')) return limit;
  const file = limit.slice(1);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new BadInputError(`--limit ${limit}: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const patterns = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  if (patterns.length === 0) throw new BadInputError(`--limit ${limit}: the file names no host`);
  return patterns.join(',');
}

/** The command-line overrides of connection vars (flags win over the inventory), and ansible.cfg's defaults below it. */
export function connectionOverrides(f: Partial<HostsFlags>): ConnectionOverrides {
  return {
    defaults: connectionDefaults(),
    ...(f.user !== undefined ? { user: f.user } : {}),
    ...(f.become ? { become: true } : {}),
    ...(f.becomeUser !== undefined ? { becomeUser: f.becomeUser } : {}),
    ...(f.privateKey !== undefined ? { privateKeyFile: f.privateKey } : {}),
    ...(f.knownHosts !== undefined ? { knownHostsFile: f.knownHosts } : {}),
    ...(f.acceptNewHostKeys ? { acceptNewHostKey: true } : {}),
  };
}

/** remote_user, private_key_file and host_key_checking from ansible.cfg / ANSIBLE_*. */
export function connectionDefaults(): NonNullable<ConnectionOverrides['defaults']> {
  const c = ansibleConfig();
  return {
    ...(c.remoteUser.value !== undefined ? { user: c.remoteUser.value } : {}),
    ...(c.privateKeyFile.value !== undefined ? { privateKeyFile: c.privateKeyFile.value } : {}),
    hostKeyChecking: c.hostKeyChecking.value,
  };
}

/** Load the inventory with the vault passwords the flags give. */
export async function loadInventoryFrom(f: Pick<HostsFlags, 'inventory'> & Partial<VaultFlags>): Promise<Inventory> {
  const [{ loadInventory }, { vaultKeyring }] = await Promise.all([import('../inventory/index.js'), import('../inventory/vault-passwords.js')]);
  const vault = await vaultKeyring(f);
  return loadInventory(f.inventory, { vault });
}

/** The same flags for a child `runbook run` (the drill runs failover and failback that way). */
export function hostsArgs(f: Partial<HostsFlags>): string[] {
  return [
    ...(f.user !== undefined ? ['-u', f.user] : []),
    ...(f.become ? ['-b'] : []),
    ...(f.becomeUser !== undefined ? ['--become-user', f.becomeUser] : []),
    ...(f.privateKey !== undefined ? ['--private-key', f.privateKey] : []),
    ...(f.forks !== undefined ? ['-f', String(f.forks)] : []),
    ...(f.acceptNewHostKeys ? ['--accept-new-host-keys'] : []),
    ...(f.vaultPasswordFile ?? []).flatMap((v) => ['--vault-password-file', v]),
    ...(f.vaultId ?? []).flatMap((v) => ['--vault-id', v]),
    ...(f.verbose ? [`-${'v'.repeat(f.verbose)}`] : []),
  ];
}

/** What --list-hosts prints, in Ansible's layout. */
export function formatHostList(hosts: InventoryHost[], pattern: string): string {
  return `  pattern: ${pattern}\n  hosts (${hosts.length}):\n${hosts.map((h) => `    ${h.name}\n`).join('')}`;
}
