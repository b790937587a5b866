/**
 * Connection variables: checked where they are defined (so a bad value names its file:line:col),
 * and turned into the ConnectionSpec the transport uses.
 */
import { homedir, userInfo } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { BadInputError, type SourcePosition } from '../errors.js';
import { Secret } from '../shell/secret.js';
import type { ConnectionSpec, InventoryHost } from './types.js';
import { shlexSplit, ShlexError } from './shlex.js';
import { needsResolving } from './template.js';
import { toBool } from './ansible-bool.js';

export { toBool };

type Check = (value: unknown) => string | undefined;

const isText = (v: unknown): v is string | number => typeof v === 'string' || typeof v === 'number';
const nonEmptyString: Check = (v) => (typeof v === 'string' && v.trim() !== '' ? undefined : 'must be a non-empty string');
const secretText: Check = (v) => (isText(v) ? undefined : 'must be a string');
const port: Check = (v) => (toPort(v) === undefined ? 'must be an integer port number in 1-65535' : undefined);
const bool: Check = (v) => (toBool(v) === undefined ? 'must be a boolean (true/false, yes/no)' : undefined);
const jumpSpec: Check = (v) => (typeof v === 'string' ? checkJumpList(v) : 'must be a string');
const sshArgs: Check = (v) => {
  if (typeof v !== 'string') return 'must be a string';
  try {
    proxyJumpFromSshArgs(v);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
};

/** Variable → check. Aliases Ansible still honours are checked like their main name. */
const CHECKS: Record<string, Check> = {
  ansible_host: nonEmptyString,
  ansible_ssh_host: nonEmptyString,
  ansible_port: port,
  ansible_ssh_port: port,
  ansible_user: nonEmptyString,
  ansible_ssh_user: nonEmptyString,
  ansible_ssh_private_key_file: nonEmptyString,
  ansible_private_key_file: nonEmptyString,
  ansible_password: secretText,
  ansible_ssh_pass: secretText,
  ansible_become: bool,
  ansible_become_user: nonEmptyString,
  ansible_become_password: secretText,
  ansible_become_pass: secretText,
  ansible_connection: nonEmptyString,
  ansible_ssh_common_args: sshArgs,
  ansible_host_key_checking: bool,
  runbook_known_hosts: nonEmptyString,
  runbook_accept_new_host_key: bool,
  runbook_proxy_jump: jumpSpec,
};

/** Throws a BadInputError at `pos` when `key` is a connection var and `value` does not fit it. */
export function checkConnectionVar(key: string, value: unknown, pos: SourcePosition): void {
  const check = CHECKS[key];
  if (!check) return;
  // A template or a vault value is checked once rendered, when the connection is made.
  if (needsResolving(value)) return;
  const problem = check(value);
  if (problem) throw new BadInputError(`${key} ${problem}, got ${JSON.stringify(value)}`, pos);
}

export function toPort(v: unknown): number | undefined {
  const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535 ? n : undefined;
}

function checkJumpList(list: string): string | undefined {
  for (const hop of list.split(',')) {
    const m = /^(?:[^@\s]+@)?([^@\s:[\]]+|\[[0-9a-fA-F:.]+\])(?::(\d+))?$/.exec(hop.trim());
    if (!m) return `has an invalid jump host "${hop}" (expected [user@]host[:port])`;
    if (m[2] !== undefined && toPort(m[2]) === undefined) return `has an invalid port in "${hop}"`;
  }
  return undefined;
}

/** The `-o` options (and -J) of ansible_ssh_common_args that runbook takes, by lower-case name. */
export interface SshArgOptions {
  proxyJump?: string;
  userKnownHostsFile?: string;
  strictHostKeyChecking?: 'yes' | 'accept-new' | 'no' | 'ask';
}

/** Options ssh would take from -o that runbook honours; any other -o is refused by name. */
const SSH_ARG_OPTIONS = new Set(['proxyjump', 'userknownhostsfile', 'stricthostkeychecking']);
/** -o options with no bearing on runbook's connection (ControlMaster & co: runbook keeps its own). */
const SSH_ARG_IGNORED = new Set(['controlmaster', 'controlpersist', 'controlpath', 'forwardagent', 'compression', 'loglevel', 'serveraliveinterval', 'serveralivecountmax', 'connecttimeout', 'preferredauthentications', 'pubkeyauthentication', 'passwordauthentication', 'identitiesonly', 'hashknownhosts', 'checkhostip', 'updatehostkeys', 'addkeystoagent', 'tcpkeepalive', 'batchmode', 'gssapiauthentication']);

export function sshArgOptions(args: string): SshArgOptions {
  let words: string[];
  try {
    words = shlexSplit(args).map((t) => t.value);
  } catch (error) {
    if (error instanceof ShlexError) throw new Error(`cannot be split into words: ${error.message}`);
    throw error;
  }
  const out: SshArgOptions = {};
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    let option: string | undefined;
    if (w === '-o' || w === '-J') option = w === '-J' ? `ProxyJump=${words[++i] ?? ''}` : words[++i];
    else if (w.startsWith('-o')) option = w.slice(2);
    else if (w.startsWith('-J')) option = `ProxyJump=${w.slice(2)}`;
    if (option === undefined) continue;
    const m = /^\s*(\w+)\s*(?:=|\s)\s*(.*)$/.exec(option);
    if (!m) throw new Error(`has an ssh option runbook cannot read: "${option}"`);
    const name = m[1].toLowerCase();
    const value = m[2].trim();
    if (name === 'proxycommand') throw new Error('uses ProxyCommand, which runbook does not take from ansible_ssh_common_args: put it in ~/.ssh/config (a Host block), or use ProxyJump');
    if (SSH_ARG_IGNORED.has(name)) continue;
    if (!SSH_ARG_OPTIONS.has(name)) throw new Error(`has -o ${m[1]}, which runbook does not support (it takes ProxyJump, UserKnownHostsFile, StrictHostKeyChecking)`);
    if (name === 'proxyjump') {
      const problem = checkJumpList(value);
      if (value.toLowerCase() !== 'none' && problem) throw new Error(`ProxyJump ${problem}`);
      if (value.toLowerCase() === 'none') delete out.proxyJump;
      else out.proxyJump = value;
    } else if (name === 'userknownhostsfile') {
      out.userKnownHostsFile = value.split(/\s+/)[0];
    } else {
      const v = value.toLowerCase();
      const mapped = v === 'yes' || v === 'true' ? 'yes' : v === 'no' || v === 'false' || v === 'off' ? 'no' : v === 'accept-new' ? 'accept-new' : v === 'ask' ? 'ask' : undefined;
      if (!mapped) throw new Error(`StrictHostKeyChecking must be yes, accept-new, no or ask, got "${value}"`);
      out.strictHostKeyChecking = mapped;
    }
  }
  return out;
}

/** The ProxyJump in `-o ProxyJump=…`, `-o 'ProxyJump …'` or `-J …`. */
export function proxyJumpFromSshArgs(args: string): string | undefined {
  return sshArgOptions(args).proxyJump;
}

function optional<K extends string, V>(key: K, value: V | undefined): { [k in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [k in K]?: V };
}

/** Where each host's variables were defined, kept beside the public InventoryHost. */
const origins = new WeakMap<InventoryHost, Map<string, SourcePosition>>();

export function recordOrigins(host: InventoryHost, where: Map<string, SourcePosition>): void {
  origins.set(host, where);
}

/** ansible.cfg / ANSIBLE_* values: below the inventory's own vars (as in Ansible), above runbook's defaults. */
export interface ConnectionDefaults {
  user?: string;
  privateKeyFile?: string;
  hostKeyChecking?: boolean;
}

export type ConnectionOverrides = Partial<
  Pick<ConnectionSpec, 'knownHostsFile' | 'acceptNewHostKey' | 'user' | 'become' | 'becomeUser' | 'becomePassword' | 'privateKeyFile'>
> & { defaults?: ConnectionDefaults };

const SSH_CONNECTIONS = new Set(['ssh', 'smart', 'paramiko', 'paramiko_ssh']);
const LOCAL_CONNECTION = 'local';

/** How to reach `host`: its connection vars, with `overrides` (command-line flags) winning. */
export function connectionSpec(host: InventoryHost, overrides: ConnectionOverrides = {}): ConnectionSpec {
  const where = origins.get(host);
  const first = (...keys: string[]): [string, unknown] | undefined => {
    for (const k of keys) if (host.vars[k] !== undefined && host.vars[k] !== null) return [k, host.vars[k]];
    return undefined;
  };
  // Values normally arrive checked; a hand-built host is checked here, naming the host.
  const get = (...keys: string[]): unknown => {
    const found = first(...keys);
    if (!found) return undefined;
    checkConnectionVar(found[0], found[1], where?.get(found[0]) ?? { file: `host ${host.name}` });
    return found[1];
  };
  const connection = get('ansible_connection');
  if (connection !== undefined && connection !== LOCAL_CONNECTION && !SSH_CONNECTIONS.has(String(connection))) {
    throw new BadInputError(`host ${host.name}: ansible_connection=${String(connection)} is not supported: runbook connects over ssh or local`, where?.get('ansible_connection'));
  }
  const secretVar = (...keys: string[]): Secret | undefined => {
    const v = get(...keys);
    return v === undefined ? undefined : new Secret(String(v), keys[0]);
  };
  /** A path relative to the file that defined it (`~` is the home directory). */
  const pathVar = (key: string): string | undefined => {
    const v = get(key);
    if (v === undefined) return undefined;
    const p = String(v).replace(/^~(?=$|\/)/, homedir());
    const file = where?.get(key)?.file;
    return isAbsolute(p) || !file ? resolve(p) : resolve(dirname(file), p);
  };
  const keyFile = get('ansible_ssh_private_key_file', 'ansible_private_key_file');
  const commonArgs = get('ansible_ssh_common_args');
  const sshArgs = commonArgs === undefined ? {} : sshArgOptions(String(commonArgs));
  // Ansible: host_key_checking=False makes ssh accept unknown keys (StrictHostKeyChecking=no).
  const defaults = overrides.defaults ?? {};
  const keyChecking = toBool(get('ansible_host_key_checking')) ?? defaults.hostKeyChecking;
  const hostKeyChecking = sshArgs.strictHostKeyChecking ?? (keyChecking === false ? 'no' : undefined);
  const argsKnownHosts = sshArgs.userKnownHostsFile?.replace(/^~(?=$|\/)/, homedir());
  return {
    name: host.name,
    ...(connection === LOCAL_CONNECTION ? { connection: LOCAL_CONNECTION } : {}),
    address: String(get('ansible_host', 'ansible_ssh_host') ?? host.name),
    port: toPort(get('ansible_port', 'ansible_ssh_port')) ?? 22,
    user: overrides.user ?? String(get('ansible_user', 'ansible_ssh_user') ?? defaults.user ?? userInfo().username),
    privateKeyFile: overrides.privateKeyFile ?? (keyFile === undefined ? defaults.privateKeyFile : String(keyFile).replace(/^~(?=$|\/)/, homedir())),
    password: secretVar('ansible_password', 'ansible_ssh_pass'),
    ...optional('knownHostsFile', overrides.knownHostsFile ?? pathVar('runbook_known_hosts') ?? argsKnownHosts),
    ...optional('hostKeyChecking', hostKeyChecking),
    acceptNewHostKey: overrides.acceptNewHostKey ?? toBool(get('runbook_accept_new_host_key')) ?? false,
    proxyJump: (get('runbook_proxy_jump') as string | undefined) ?? sshArgs.proxyJump,
    become: overrides.become ?? toBool(get('ansible_become')) ?? false,
    becomeUser: overrides.becomeUser ?? (get('ansible_become_user') as string | undefined),
    becomePassword: overrides.becomePassword ?? secretVar('ansible_become_password', 'ansible_become_pass'),
  };
}
