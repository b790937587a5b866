/** The lab's SSH trust: one client key for every account, and known_hosts with each host's own key. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './local.js';
import type { LabHost } from './spec.js';

export async function ensureClientKey(keyFile: string, comment: string): Promise<string> {
  if (!existsSync(keyFile)) {
    await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', keyFile]);
  }
  return readFileSync(`${keyFile}.pub`, 'utf8');
}

/** The public key each host's init generated into its /etc overlay. */
export function hostPublicKey(hostDir: string): string {
  const [type, key] = readFileSync(join(hostDir, 'etc.upper', 'ssh', 'ssh_host_ed25519_key.pub'), 'utf8').trim().split(/\s+/);
  return `${type} ${key}`;
}

export function writeKnownHosts(file: string, hosts: Array<{ host: LabHost; key: string }>): void {
  writeFileSync(file, hosts.map(({ host, key }) => `${host.name},${host.address} ${key}\n`).join(''), { mode: 0o644 });
}
