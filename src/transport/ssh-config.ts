/**
 * ~/.ssh/config under the inventory, evaluated as `ssh -G` does (openssh-config.ts): a value the
 * inventory set wins, the config fills the rest: address, port, user, keys, jump hosts (each with
 * its own config), ProxyCommand, known_hosts files, HostKeyAlias, StrictHostKeyChecking,
 * keepalives, connect timeout, agent.
 */
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { ConnectionSpec } from '../inventory/types.js';
import { expandTilde, sshOptions, type HostKeyChecking, type SshOptions } from './openssh-config.js';

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
  /** A ProxyCommand line (tokens expanded): its stdin/stdout is the connection. */
  proxyCommand?: string;
  /** known_hosts files: the first is written (accept-new), all are read, then the global ones. */
  knownHostsFiles: string[];
  globalKnownHostsFiles: string[];
  /** The name looked up in known_hosts instead of the address (HostKeyAlias). */
  hostKeyAlias?: string;
  hostKeyChecking: HostKeyChecking;
  /** ServerAliveInterval in ms (0: runbook's default), ServerAliveCountMax. */
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
  connectTimeoutMs?: number;
  /** IdentityAgent none → no agent; a path → that socket; IdentitiesOnly → only the key files. */
  agent?: string | false;
}

export interface JumpHop {
  user?: string;
  host: string;
  port?: number;
}

export function defaultSshConfigFile(): string {
  return join(homedir(), '.ssh', 'config');
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

function fromOptions(name: string, o: SshOptions, over: { port?: number; user?: string; identityFiles?: string[]; jumps?: JumpHop[] }): ResolvedTarget {
  const agent = o.identityAgent === 'none' || o.identitiesOnly ? false : o.identityAgent;
  return {
    name,
    address: o.hostname,
    port: over.port ?? o.port,
    user: over.user ?? o.user,
    identityFiles: over.identityFiles ?? o.identityFiles,
    jumps: over.jumps ?? parseProxyJump(o.proxyJump ?? ''),
    ...(o.proxyCommand && !over.jumps?.length && !o.proxyJump ? { proxyCommand: o.proxyCommand } : {}),
    knownHostsFiles: o.userKnownHostsFiles,
    globalKnownHostsFiles: o.globalKnownHostsFiles,
    ...(o.hostKeyAlias ? { hostKeyAlias: o.hostKeyAlias } : {}),
    hostKeyChecking: o.strictHostKeyChecking,
    keepaliveIntervalMs: o.serverAliveInterval * 1000,
    keepaliveCountMax: o.serverAliveCountMax,
    ...(o.connectTimeout !== undefined ? { connectTimeoutMs: o.connectTimeout * 1000 } : {}),
    ...(agent !== undefined ? { agent } : {}),
  };
}

/**
 * Apply the ssh config under a spec, as `ssh ADDRESS` would (Ansible runs exactly that): the address
 * (ansible_host) is the alias looked up, so a config HostName for it applies. The port and user
 * count as set when they differ from the defaults (22; empty or the local user); otherwise the config
 * fills them. What the inventory says about host keys wins over the config.
 */
export function resolveTarget(spec: ConnectionSpec, configFile = defaultSshConfigFile()): ResolvedTarget {
  // The inventory defaults the user to the local one (as ssh does), so that counts as unset here.
  const userSet = spec.user !== '' && spec.user !== userInfo().username;
  const o = sshOptions(configFile, { host: spec.address, ...(userSet ? { user: spec.user } : {}) });
  const target = fromOptions(spec.name, o, {
    ...(spec.port !== 22 ? { port: spec.port } : {}),
    ...(spec.privateKeyFile ? { identityFiles: [expandTilde(spec.privateKeyFile)] } : {}),
    ...(spec.proxyJump ? { jumps: parseProxyJump(spec.proxyJump) } : {}),
  });
  if (spec.knownHostsFile) target.knownHostsFiles = [spec.knownHostsFile];
  if (spec.hostKeyChecking) target.hostKeyChecking = spec.hostKeyChecking;
  return target;
}

/**
 * A jump host, resolved through the ssh config under its own name, as ssh -J does: its own User,
 * IdentityFile, Port and ProxyJump (a chain) from its Host block, never the target's.
 */
export function resolveHop(hop: JumpHop, target: ResolvedTarget, configFile = defaultSshConfigFile()): ResolvedTarget {
  const o = sshOptions(configFile, { host: hop.host, ...(hop.user ? { user: hop.user } : {}) });
  const resolved = fromOptions(hop.host, o, { ...(hop.port ? { port: hop.port } : {}), jumps: [] });
  // The inventory's known_hosts choice covers every hop of the connection.
  if (target.knownHostsFiles.length === 1 && !o.origin.has('userknownhostsfile')) resolved.knownHostsFiles = target.knownHostsFiles;
  if (!o.origin.has('stricthostkeychecking')) resolved.hostKeyChecking = target.hostKeyChecking;
  return resolved;
}

/** A hop's own ProxyJump, flattened: ssh -J a, where a has ProxyJump b, connects b → a → target. */
export function expandHops(hops: JumpHop[], target: ResolvedTarget, configFile = defaultSshConfigFile(), depth = 0): ResolvedTarget[] {
  if (depth > 8) throw new TypeError('ProxyJump chain too long (a loop?)');
  const out: ResolvedTarget[] = [];
  for (const hop of hops) {
    const o = sshOptions(configFile, { host: hop.host, ...(hop.user ? { user: hop.user } : {}) });
    if (o.proxyJump) out.push(...expandHops(parseProxyJump(o.proxyJump), target, configFile, depth + 1));
    out.push(resolveHop(hop, target, configFile));
  }
  return out;
}
