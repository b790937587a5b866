/**
 * `runbook init`: guided set-up for an admin with no inventory. Asks for the database hosts, the
 * SSH user and key, the primary, an optional VIP and NFS host; shows each host key on first
 * contact for confirmation (recorded in the project's known_hosts); detects PostgreSQL on each
 * host; writes a commented inventory (inventory.yml + group_vars) and ends with the plan of
 * setup-warm-standby. Without a terminal every answer must come from a flag.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Command as Program } from 'commander';
import { BadInputError, BlockedError, ConfirmationError } from '../../errors.js';
import { parseHostList, renderInit, type InitAnswers, type InitHost } from '../../inventory/init-render.js';
import { layoutFact } from '../../modules/postgres/layout-facts.js';
import { raw } from '../../shell/command.js';
import { scanHostKey } from '../../transport/host-key-scan.js';
import { SshTransport } from '../../transport/index.js';
import { appendKnownHost, checkHostKey, hostKeyName, readKnownHosts } from '../../transport/known-hosts.js';
import { collect } from '../options.js';

interface InitFlags {
  dir: string;
  hosts?: string;
  user?: string;
  key?: string;
  primary?: string;
  become: boolean;
  vip?: string;
  nfs?: string;
  acceptNewHostKeys?: boolean;
  secret: string[];
  force?: boolean;
  plan: boolean;
}

const NON_INTERACTIVE =
  'runbook init --hosts pg1=ADDRESS,pg2=ADDRESS --user USER --key KEYFILE --primary pg1 [--vip ADDRESS] [--nfs nfs1=ADDRESS] [--no-become] --accept-new-host-keys [--dir DIR]';

export function registerInit(program: Program): void {
  program
    .command('init')
    .description('Guided set-up: ask for the hosts, confirm their host keys, detect PostgreSQL, write an inventory, show the plan')
    .option('--dir <dir>', 'project directory to write inventory.yml, group_vars/ and known_hosts into', '.')
    .option('--hosts <list>', 'database hosts: NAME=ADDRESS[:PORT],…')
    .option('--user <user>', 'SSH user')
    .option('--key <file>', 'SSH private key file')
    .option('--primary <name>', 'the node meant to be the primary')
    .option('--no-become', 'do not use sudo on the hosts (the SSH user is root)')
    .option('--vip <address>', 'virtual IP for setup-vip (optional)')
    .option('--nfs <NAME=ADDRESS>', 'NFS host for enable-nfs-sharing (optional)')
    .option('--accept-new-host-keys', 'without a terminal: trust and record each host key on first contact')
    .option('--secret <NAME=env:VAR|NAME=file:PATH>', 'a secret for the plan shown at the end (repeatable)', collect, [])
    .option('--no-plan', 'do not show the plan at the end')
    .option('--force', 'overwrite an existing inventory.yml')
    .action(async (flags: InitFlags) => {
      process.exitCode = await runInit(flags);
    });
}

type Prompts = typeof import('@inquirer/prompts');

async function runInit(f: InitFlags): Promise<number> {
  const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  if (!interactive) {
    const missing = (['hosts', 'user', 'key', 'primary'] as const).filter((k) => !f[k]);
    if (missing.length) {
      throw new BadInputError(`init: no terminal to ask in, and ${missing.map((m) => `--${m}`).join(', ')} not given. Without a terminal: ${NON_INTERACTIVE}`);
    }
  }
  const dir = resolve(f.dir);
  const inventoryFile = join(dir, 'inventory.yml');
  if (existsSync(inventoryFile) && !f.force) throw new BadInputError(`init: ${inventoryFile} exists; give --force to overwrite it, or another --dir`);
  const prompts: Prompts | undefined = interactive ? await import('@inquirer/prompts') : undefined;
  try {
    const answers = await ask(f, dir, prompts);
    const transport = new SshTransport();
    try {
      for (const h of [...answers.db, ...(answers.nfs ? [answers.nfs] : [])]) {
        await trustHostKey(h, answers.knownHostsFile, f, prompts);
        h.found = await probe(transport, h, answers, answers.db.includes(h));
        say(`${h.name}: ${h.found}`);
      }
    } finally {
      await transport.closeAll();
    }
    const files = renderInit(answers);
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), text);
    }
    say(`Wrote ${Object.keys(files).map((n) => join(dir, n)).join(', ')}`);
    if (!f.plan) return 0;
    say(`The plan of setup-warm-standby with this inventory (runbook plan setup-warm-standby -i ${inventoryFile}):`);
    const { main } = await import('../main.js');
    return await main(['plan', 'setup-warm-standby', '-i', inventoryFile, ...f.secret.flatMap((s) => ['--secret', s])]);
  } catch (error) {
    if ((error as Error).name === 'ExitPromptError') throw new ConfirmationError('init: cancelled; nothing written');
    throw error;
  }
}

const say = (line: string): void => void process.stdout.write(`${line}\n`);

async function ask(f: InitFlags, dir: string, p: Prompts | undefined): Promise<InitAnswers> {
  const listed = (text: string, what: string) => {
    try {
      return parseHostList(text, what);
    } catch (error) {
      throw new BadInputError((error as Error).message);
    }
  };
  const validHosts = (what: string) => (v: string) => {
    try {
      parseHostList(v, what);
      return true;
    } catch (error) {
      return (error as Error).message;
    }
  };
  const db = listed(
    f.hosts ?? (await p!.input({ message: 'Database hosts (NAME=ADDRESS[:PORT], comma-separated):', validate: validHosts('hosts') })),
    '--hosts',
  );
  const user = f.user ?? (await p!.input({ message: 'SSH user:', default: process.env.USER ?? 'root', validate: (v) => v.trim() !== '' || 'a user name' }));
  const defaultKey = ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((k) => join(homedir(), '.ssh', k)).find((k) => existsSync(k));
  const key = resolve(
    f.key ??
      (await p!.input({ message: 'SSH private key file:', ...(defaultKey ? { default: defaultKey } : {}), validate: (v) => existsSync(resolve(v)) || `no file ${resolve(v)}` })),
  );
  if (!existsSync(key)) throw new BadInputError(`init: no key file ${key}`);
  const primary =
    f.primary ?? (db.length === 1 ? db[0]!.name : await p!.select({ message: 'Which node is the primary?', choices: db.map((h) => ({ name: `${h.name} (${h.address})`, value: h.name })) }));
  if (!db.some((h) => h.name === primary)) throw new BadInputError(`init: --primary ${primary} is not one of --hosts (${db.map((h) => h.name).join(', ')})`);
  const become = p && f.become ? await p.confirm({ message: 'Use sudo (become) for commands that need root?', default: true }) : f.become;
  const vip = f.vip ?? (p ? (await p.input({ message: 'Virtual IP for the primary (optional, Enter to skip):' })).trim() || undefined : undefined);
  const nfsText = f.nfs ?? (p ? (await p.input({ message: 'NFS host NAME=ADDRESS (optional, Enter to skip):', validate: (v) => v.trim() === '' || validHosts('NFS host')(v) })).trim() : '');
  const nfs = nfsText ? listed(nfsText, '--nfs')[0] : undefined;
  return { db, ...(nfs ? { nfs } : {}), user, keyFile: key, become, primary, ...(vip ? { vip } : {}), knownHostsFile: join(dir, 'known_hosts') };
}

/** As ssh on first contact: show the key's fingerprint, record it once confirmed; a changed key is refused. */
async function trustHostKey(h: InitHost, file: string, f: InitFlags, p: Prompts | undefined): Promise<void> {
  const key = await scanHostKey(h.name, h.address, h.port);
  const name = hostKeyName(h.address, h.port);
  const verdict = checkHostKey(existsSync(file) ? readKnownHosts(file) : [], name, key.blob);
  if (verdict.status === 'known') return;
  if (verdict.status !== 'unknown') throw new BlockedError(`${h.name}: the host key of ${name} (${key.display}) differs from ${file}:${verdict.line}; refusing`);
  say(`${h.name} (${name}) presents the host key ${key.display}`);
  const yes = p
    ? await p.confirm({ message: `Is that the key of ${h.name}? (compare: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the host)`, default: false })
    : Boolean(f.acceptNewHostKeys);
  if (!yes) {
    throw new ConfirmationError(
      p ? `init: the host key of ${h.name} was not confirmed; nothing written` : `init: the host key of ${h.name} (${key.display}) is not known: check it, then give --accept-new-host-keys`,
    );
  }
  mkdirSync(dirname(file), { recursive: true });
  appendKnownHost(file, name, key.blob);
}

/** Log in as the inventory will, and say what is there: PostgreSQL's layout and version on a database host. */
async function probe(transport: SshTransport, h: InitHost, a: InitAnswers, isDb: boolean): Promise<string> {
  const conn = await transport.connect({
    name: h.name,
    address: h.address,
    port: h.port,
    user: a.user,
    privateKeyFile: a.keyFile,
    knownHostsFile: a.knownHostsFile,
    hostKeyChecking: 'yes',
    become: a.become,
  });
  const who = await conn.exec(raw('id -un'), { check: true });
  if (!isDb) return `reachable as ${who.stdout.trim()}`;
  const fact = layoutFact({});
  const layout = fact.parse(await conn.exec(fact.command, { become: a.become }));
  if (typeof layout === 'string') return `no PostgreSQL layout found (${layout}): setup-warm-standby will say what is missing`;
  return `PostgreSQL ${layout.version} (${layout.family} layout, data ${layout.dataDir})`;
}
