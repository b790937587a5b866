/**
 * A real OpenSSH server on 127.0.0.1 for transport tests, with its own host key, client keys and a
 * clean test user — without touching the real /etc. sshd runs in a private mount namespace where
 * /etc is an overlay (the user `rbops`, its password and sudo rules live only in the upper layer)
 * and /run and /var/lib/sudo are tmpfs, so sudo's timestamps and lectures stay inside too.
 *
 * sudo rules for rbops: any user with a password; `nobody` without (NOPASSWD).
 * Needs root (mount namespaces); teardown kills the processes it started, by PID.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionSpec } from '../../src/inventory/types.js';

/** Where a test connects: everything a ConnectionSpec needs. One place, so tests can move to the lab. */
export interface SshTarget {
  address: string;
  port: number;
  user: string;
  privateKeyFile: string;
  /** Holds this server's host key only. */
  knownHostsFile: string;
  /** The user's sudo password (sudo to root needs it; sudo to `nobody` does not). */
  becomePassword: string;
}

export interface LoopbackSshd {
  target: SshTarget;
  dir: string;
  /** `ssh-ed25519 AAAA…` of the server's host key. */
  hostKeyPublic: string;
  /** A client key protected by `passphrase`, also authorized for the user. */
  passphraseKeyFile: string;
  passphrase: string;
  pid: number;
  /** PIDs of the sshd processes serving connections (children of the listener), for fault injection. */
  sessionPids(): number[];
  stop(): Promise<void>;
}

const USER = 'rbops';
const UID = 46_811;
const BECOME_PASSWORD = 'become-pw-4e7b1';
const PASSPHRASE = 'key-passphrase-19c2';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function keygen(file: string, passphrase = ''): string {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', 'runbook-test', '-f', file]);
  return readFileSync(`${file}.pub`, 'utf8').trim();
}

/** Children, grandchildren… of a process, from /proc. */
export function descendants(pid: number): number[] {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
  return children.flatMap((c) => [c, ...descendants(c)]);
}

/** The overlay's upper layer: the real files plus our user, its password and sudo rules. */
function prepareEtc(upper: string, home: string): void {
  const add = (name: string, line: string, mode: number, group = 0) => {
    const file = join(upper, name);
    writeFileSync(file, `${readFileSync(`/etc/${name}`, 'utf8').replace(/\n?$/, '\n')}${line}\n`, { mode });
    chmodSync(file, mode);
    chownSync(file, 0, group);
  };
  const hash = execFileSync('openssl', ['passwd', '-6', BECOME_PASSWORD], { encoding: 'utf8' }).trim();
  const shadowGid = Number(execFileSync('getent', ['group', 'shadow'], { encoding: 'utf8' }).split(':')[2] ?? 0);
  add('passwd', `${USER}:x:${UID}:${UID}:runbook test:${home}:/bin/bash`, 0o644);
  add('group', `${USER}:x:${UID}:`, 0o644);
  add('shadow', `${USER}:${hash}:19000:0:99999:7:::`, 0o640, shadowGid);
  mkdirSync(join(upper, 'sudoers.d'), { mode: 0o755 });
  const sudoers = join(upper, 'sudoers.d', 'runbook-test');
  writeFileSync(
    sudoers,
    [
      `Defaults:${USER} lecture=never, !mail_badpass`,
      `${USER} ALL=(ALL:ALL) ALL`,
      `${USER} ALL=(nobody) NOPASSWD: ALL`,
      '',
    ].join('\n'),
    { mode: 0o440 },
  );
}

export async function startLoopbackSshd(): Promise<LoopbackSshd> {
  if (process.getuid?.() !== 0) throw new Error('loopback sshd: the tests need root (a mount namespace for a private /etc)');
  const dir = mkdtempSync(join(tmpdir(), 'runbook-sshd-'));
  chmodSync(dir, 0o755); // the user's sshd child reads its authorized keys from here
  const home = join(dir, 'home');
  const upper = join(dir, 'etc-upper');
  const keys = join(dir, 'authorized');
  for (const d of [home, upper, join(dir, 'etc-work'), keys]) mkdirSync(d, { mode: 0o755 });
  chownSync(home, UID, UID);

  const hostKeyPublic = keygen(join(dir, 'host_key'));
  const clientPublic = keygen(join(dir, 'client_key'));
  const passphrasePublic = keygen(join(dir, 'client_key_pw'), PASSPHRASE);
  writeFileSync(join(keys, USER), `${clientPublic}\n${passphrasePublic}\n`, { mode: 0o644 });
  prepareEtc(upper, home);

  const port = await freePort();
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      'PidFile none',
      `AuthorizedKeysFile ${keys}/%u`,
      'StrictModes no',
      'UsePAM no',
      'PasswordAuthentication yes',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin no',
      'AllowTcpForwarding yes',
      'MaxSessions 10',
      'LogLevel INFO',
      '',
    ].join('\n'),
  );
  const knownHostsFile = join(dir, 'known_hosts');
  const [type, blob] = hostKeyPublic.split(' ');
  writeFileSync(knownHostsFile, `[127.0.0.1]:${port} ${type} ${blob}\n`);

  const script = [
    'set -e',
    `mount -t overlay overlay -o lowerdir=/etc,upperdir=${upper},workdir=${join(dir, 'etc-work')} /etc`,
    'mount -t tmpfs -o mode=755 tmpfs /run',
    'mkdir -p /run/sshd',
    'mount -t tmpfs -o mode=755 tmpfs /var/lib/sudo',
    `exec /usr/sbin/sshd -D -e -f ${config}`,
  ].join('\n');
  const child: ChildProcess = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sshd did not start within 10 s:\n${log}`)), 10_000);
    child.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.includes('Server listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sshd exited (${code}) before listening:\n${log}`));
    });
  });
  const pid = child.pid!;

  return {
    target: {
      address: '127.0.0.1',
      port,
      user: USER,
      privateKeyFile: join(dir, 'client_key'),
      knownHostsFile,
      becomePassword: BECOME_PASSWORD,
    },
    dir,
    hostKeyPublic,
    passphraseKeyFile: join(dir, 'client_key_pw'),
    passphrase: PASSPHRASE,
    pid,
    sessionPids: () => descendants(pid),
    async stop() {
      const all = [...descendants(pid), pid];
      for (const p of all) signal(p, 'SIGCONT');
      for (const p of all) signal(p, 'SIGTERM');
      await new Promise((r) => setTimeout(r, 200));
      for (const p of all) signal(p, 'SIGKILL');
      if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** A ConnectionSpec for the target; tests override what they exercise. */
export function specFor(target: SshTarget, overrides: Partial<ConnectionSpec> = {}): ConnectionSpec {
  return {
    name: 'loopback',
    address: target.address,
    port: target.port,
    user: target.user,
    privateKeyFile: target.privateKeyFile,
    knownHostsFile: target.knownHostsFile,
    become: false,
    ...overrides,
  };
}
