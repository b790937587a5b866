/**
 * The files `runbook init` writes: a commented YAML inventory and its group_vars, from the
 * answers (pure; the CLI asks, probes and writes). Ansible reads them as they are.
 */
import { stringify } from 'yaml';

export interface InitHost {
  name: string;
  address: string;
  port: number;
  /** What init found on the host, for the comment ("PostgreSQL 15, debian layout, /var/lib/…"). */
  found?: string;
}

export interface InitAnswers {
  db: InitHost[];
  nfs?: InitHost;
  user: string;
  keyFile: string;
  become: boolean;
  primary: string;
  vip?: string;
  /** Absolute path of the project's known_hosts, holding the keys confirmed during init. */
  knownHostsFile: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** `pg1=10.0.0.1[:port]` items, comma- or space-separated; a bare address names itself. */
export function parseHostList(text: string, what: string): InitHost[] {
  const hosts: InitHost[] = [];
  for (const item of text.split(/[,\s]+/).filter(Boolean)) {
    const eq = item.indexOf('=');
    const name = eq < 0 ? item : item.slice(0, eq);
    const rest = eq < 0 ? item : item.slice(eq + 1);
    const m = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d+))?$/.exec(rest);
    if (!NAME.test(name) || !m) throw new Error(`${what}: "${item}" is not NAME=ADDRESS[:PORT]`);
    const port = m[3] ? Number(m[3]) : 22;
    if (port < 1 || port > 65535) throw new Error(`${what}: port ${port} of ${name} is out of range`);
    if (hosts.some((h) => h.name === name)) throw new Error(`${what}: ${name} is given twice`);
    hosts.push({ name, address: (m[1] ?? m[2])!, port });
  }
  if (hosts.length === 0) throw new Error(`${what}: give at least one NAME=ADDRESS`);
  return hosts;
}

function hostEntry(h: InitHost): Record<string, unknown> {
  return { ansible_host: h.address, ...(h.port !== 22 ? { ansible_port: h.port } : {}) };
}

/** File name (relative to the project directory) → content. */
export function renderInit(a: InitAnswers, now = new Date()): Record<string, string> {
  if (!a.db.some((h) => h.name === a.primary)) throw new Error(`the primary ${a.primary} is not one of the database hosts`);
  const found = [...a.db, ...(a.nfs ? [a.nfs] : [])].filter((h) => h.found).map((h) => `#   ${h.name}: ${h.found}`);
  const inventory = stringify(
    {
      all: {
        children: {
          postgres: { hosts: Object.fromEntries(a.db.map((h) => [h.name, hostEntry(h)])) },
          ...(a.nfs ? { nfs_servers: { hosts: { [a.nfs.name]: hostEntry(a.nfs) } } } : {}),
        },
      },
    },
    { lineWidth: 0 },
  );
  const all = stringify(
    {
      ansible_user: a.user,
      ansible_ssh_private_key_file: a.keyFile,
      ansible_become: a.become,
      ansible_ssh_common_args: `-o UserKnownHostsFile=${a.knownHostsFile} -o StrictHostKeyChecking=yes`,
    },
    { lineWidth: 0 },
  );
  const postgres = stringify({ pg_primary: a.primary, ...(a.vip ? { vip: a.vip } : {}) }, { lineWidth: 0 });
  return {
    'inventory.yml': [
      `# Written by \`runbook init\` on ${now.toISOString().slice(0, 10)}: an Ansible inventory (ansible-inventory -i reads it too).`,
      '# postgres: the database nodes; nfs_servers: the NFS host for enable-nfs-sharing, if any.',
      ...(found.length ? ['# Found on the hosts:', ...found] : []),
      inventory.trimEnd(),
      '',
    ].join('\n'),
    'group_vars/all.yml': [
      '# How runbook (and Ansible) reach every host.',
      '# ansible_become: commands that need root run through sudo (sudo -n: NOPASSWD, or give ansible_become_password).',
      `# The host keys confirmed during init are in ${a.knownHostsFile}; a changed key is refused.`,
      all.trimEnd(),
      '',
    ].join('\n'),
    'group_vars/postgres.yml': [
      '# pg_primary: the node meant to be the primary; setup-warm-standby clones the others from it.',
      '# The replication password is not written here: give it as --secret replication_password=env:VAR,',
      '# or as a var replication_password encrypted with ansible-vault.',
      ...(a.vip ? ['# vip: the address setup-vip moves to the primary.'] : ['# vip: 10.0.0.100   (the address setup-vip would move to the primary)']),
      postgres.trimEnd(),
      '',
    ].join('\n'),
  };
}
