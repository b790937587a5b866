/** Can this machine build a lab? Root, and the Debian packages whose programs the hosts run. */
import { existsSync } from 'node:fs';
import { EnvironmentError } from '../errors.js';

/** A file each package installs, and the package to name when it is missing. */
const REQUIRED: ReadonlyArray<[file: string, pkg: string]> = [
  ['/usr/sbin/sshd', 'openssh-server'],
  ['/usr/bin/ssh-keygen', 'openssh-client'],
  ['/usr/bin/sudo', 'sudo'],
  ['/usr/lib/postgresql/15/bin/initdb', 'postgresql-15'],
  ['/usr/bin/pg_createcluster', 'postgresql-common'],
  ['/usr/lib/postgresql/15/bin/psql', 'postgresql-client-15'],
  ['/usr/sbin/keepalived', 'keepalived'],
  ['/usr/bin/ganesha.nfsd', 'nfs-ganesha'],
  [`/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu/ganesha/libfsalvfs.so`, 'nfs-ganesha-vfs'],
  ['/usr/sbin/rpcbind', 'rpcbind'],
  ['/usr/bin/nfs-ls', 'libnfs-utils'],
  ['/usr/bin/unshare', 'util-linux'],
  ['/usr/bin/nsenter', 'util-linux'],
  ['/sbin/ip', 'iproute2'],
];

export function requireRoot(action: string): void {
  if (process.getuid?.() !== 0) {
    throw new EnvironmentError(
      `lab ${action} needs root: it creates network namespaces, a bridge and mounts (run it with sudo, or as root)`,
    );
  }
}

export function missingPackages(): string[] {
  return [...new Set(REQUIRED.filter(([file]) => !existsSync(file)).map(([, pkg]) => pkg))];
}

export function requirePackages(): void {
  const missing = missingPackages();
  if (missing.length > 0) {
    throw new EnvironmentError(
      `lab: missing Debian packages: ${missing.join(' ')}\n` +
        `install them with: bash scripts/ensure-deps.sh (or apt-get install -y ${missing.join(' ')})`,
    );
  }
}
