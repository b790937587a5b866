/**
 * ~/.ssh/config (HostName, Port, User, IdentityFile, ProxyJump) under the inventory: a value the
 * inventory set wins, the config fills the rest. `Match exec` is never run (it executes commands).
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import SSHConfig from 'ssh-config';
import type { ConnectionSpec } from '../inventory/types.js';

/** Where and as whom to connect, after the ssh config was applied. */
export interface ResolvedTarget {
  /** Inventory (or jump) name for messages. */
  name: string;
  address: string;
  port: number;
  user: string;
  /** Key files to try, in order (explicit first). */
  identityFiles: string[];
  /** Jump hops, outermost first. */
  jumps: JumpHop[];
}

export interface JumpHop {
  user?: string;
  host: string;
  port?: number;
}

export function defaultSshConfigFile(): string {
  return join(homedir(), '.ssh', 'config');
}

/** Parsed lazily once per file; a missing file is an empty config. */
const cache = new Map<string, SSHConfig | null>();

function loadConfig(file: string): SSHConfig | null {
  if (!cache.has(file)) cache.set(file, existsSync(file) ? SSHConfig.parse(readFileSync(file, 'utf8')) : null);
  return cache.get(file)!;
}

/** Options from the ssh config for a host alias, names lower-cased. */
export function sshConfigFor(alias: string, file = defaultSshConfigFile()): Record<string, string | string[]> {
  const config = loadConfig(file);
  return config ? config.compute(alias, { ignoreCase: true, matchExec: false }) : {};
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function expandPath(path: string, alias: string, user: string): string {
  return path
    .replace(/^~(?=\/|$)/, homedir())
    .replace(/%d/g, homedir())
    .replace(/%h/g, alias)
    .replace(/%r/g, user)
    .replace(/%u/g, userInfo().username)
    .replace(/%%/g, '%');
}

/** "user@host:port,host2" → hops. An IPv6 address goes in brackets: "[::1]:2222". */
export function parseProxyJump(value: string): JumpHop[] {
  if (!value || value.toLowerCase() === 'none') return [];
  return value.split(',').map((item) => {
    const text = item.trim().replace(/^ssh:\/\//, '');
    const at = text.lastIndexOf('@');
    const user = at >= 0 ? text.slice(0, at) : undefined;
    const rest = at >= 0 ? text.slice(at + 1) : text;
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest) ?? /^([^:]+)(?::(\d+))?$/.exec(rest);
    if (!m) throw new TypeError(`invalid ProxyJump hop "${item}"`);
    return { user: user || undefined, host: m[1]!, port: m[2] ? Number(m[2]) : undefined };
  });
}

/**
 * Apply the ssh config under a spec, as `ssh ADDRESS` would (Ansible runs exactly that): the address
 * (ansible_host) is the alias looked up, so a config HostName for it applies. The port and user
 * count as set when they differ from the defaults (22; empty or the local user); otherwise the config
 * fills them.
 */
export function resolveTarget(spec: ConnectionSpec, configFile = defaultSshConfigFile()): ResolvedTarget {
  const cfg = sshConfigFor(spec.address, configFile);
  const address = first(cfg.hostname)?.replace(/%h/g, spec.address) ?? spec.address;
  const port = spec.port !== 22 ? spec.port : Number(first(cfg.port) ?? 22);
  // The inventory defaults the user to the local one (as ssh does), so that counts as unset here.
  const userSet = spec.user !== '' && spec.user !== userInfo().username;
  const user = (userSet ? spec.user : first(cfg.user)) || spec.user || userInfo().username;
  const configured = ([] as string[]).concat(cfg.identityfile ?? []).map((f) => expandPath(f, spec.address, user));
  const identityFiles = spec.privateKeyFile ? [expandPath(spec.privateKeyFile, spec.address, user)] : configured;
  const jumps = parseProxyJump(spec.proxyJump ?? first(cfg.proxyjump) ?? '');
  return { name: spec.name, address, port, user, identityFiles, jumps };
}

/**
 * A jump hop, resolved through the ssh config under its own alias. What the config does not say
 * (user, key files) comes from the target: the usual setup is one account and key everywhere.
 */
export function resolveHop(hop: JumpHop, target: ResolvedTarget, configFile = defaultSshConfigFile()): ResolvedTarget {
  const cfg = sshConfigFor(hop.host, configFile);
  const user = hop.user ?? first(cfg.user) ?? target.user;
  const configured = ([] as string[]).concat(cfg.identityfile ?? []).map((f) => expandPath(f, hop.host, user));
  return {
    name: hop.host,
    address: first(cfg.hostname)?.replace(/%h/g, hop.host) ?? hop.host,
    port: hop.port ?? Number(first(cfg.port) ?? 22),
    user,
    identityFiles: configured.length ? configured : target.identityFiles,
    jumps: [],
  };
}
