/** The inventory as runbook uses it, after loading and merging (Ansible semantics). */
import type { Secret } from '../shell/secret.js';

export interface InventoryHost {
  name: string;
  /**
   * Fully merged variables as runbook reads them: templates rendered and vault values decrypted
   * when a var is read (lazily, as Ansible does).
   */
  vars: Record<string, unknown>;
  /** The same variables as written, exactly as `ansible-inventory --list` shows them in _meta.hostvars. */
  raw?: Record<string, unknown>;
  /** Every group the host is in, ancestors included, 'all' and 'ungrouped' as Ansible has them. */
  groups: string[];
}

export interface InventoryGroup {
  name: string;
  /** Hosts listed directly in this group. */
  hosts: string[];
  children: string[];
  vars: Record<string, unknown>;
}

export interface Inventory {
  /** In the order Ansible lists them. */
  hosts: Map<string, InventoryHost>;
  groups: Map<string, InventoryGroup>;
  /** Files read, for messages. */
  sources: string[];
}

/** How to reach and act on a host, from its connection vars (validated at load time). */
export interface ConnectionSpec {
  /** Inventory name, used in every message. */
  name: string;
  /** ansible_connection=local: commands run on the controller (transport/local.ts); else SSH. */
  connection?: 'local';
  /** ansible_host, or the name. */
  address: string;
  port: number;
  user: string;
  privateKeyFile?: string;
  /** Password auth, only when asked for (ansible_password / ansible_ssh_pass). */
  password?: Secret;
  /**
   * known_hosts file to verify against (--known-hosts, runbook_known_hosts, or -o UserKnownHostsFile
   * in ansible_ssh_common_args); unset: the ssh config's UserKnownHostsFile, else ~/.ssh/known_hosts.
   */
  knownHostsFile?: string;
  /** Accept and record an unknown host key (never a changed one). */
  acceptNewHostKey?: boolean;
  /**
   * StrictHostKeyChecking from the inventory (-o in ansible_ssh_common_args, ansible_host_key_checking,
   * ANSIBLE_HOST_KEY_CHECKING): `no` accepts an unknown key with a warning. A changed key is always refused.
   */
  hostKeyChecking?: 'yes' | 'accept-new' | 'no' | 'ask';
  /** ProxyJump chain, "user@host:port,user@host2". */
  proxyJump?: string;
  become: boolean;
  becomeUser?: string;
  becomePassword?: Secret;
}
