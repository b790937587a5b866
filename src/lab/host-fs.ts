/**
 * A host's private files, prepared from the root namespace before its init starts:
 * - the /etc overlay's upper layer: hostname, hosts, passwd/shadow/group with the `ops` user, a
 *   sudoers.d entry, a lab sshd_config. The real /etc is only the read-only lower layer.
 * - per-host folders bind-mounted over the directories services write to.
 * - RHEL layout: overlays over /usr (the /usr/pgsql-<major> tree, no postgresql-common wrappers) and
 *   /var/lib (/var/lib/pgsql), so the host looks like a PGDG server to a runbook probing it.
 * - Another PostgreSQL major on the Debian layout: an overlay over /usr/lib/postgresql adding
 *   <major> (pg-server.ts), so pg_createcluster, pg_ctlcluster and pg_wrapper find it as installed.
 */
import { chmodSync, chownSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEBIAN_MAJOR, pgServerDir } from './pg-server.js';
import { labPgMajor, type DbLayout, type LabHost, type LabSpec } from './spec.js';

export const OPS_USER = 'ops';
export const rhelPgBin = (major: string) => `/usr/pgsql-${major}/bin`;
export const rhelPgData = (major: string) => `/var/lib/pgsql/${major}/data`;

export type Mount =
  | { kind: 'overlay'; target: string; upper: string; work: string }
  | { kind: 'bind'; target: string; source: string };

/** Per-host bind mounts: target → folder name under hosts/H/fs. /tmp last, as the notes advise. */
const BINDS: ReadonlyArray<[target: string, dir: string]> = [
  ['/etc/postgresql', 'etc-postgresql'],
  ['/var/lib/postgresql', 'var-lib-postgresql'],
  ['/var/lib/nfs', 'var-lib-nfs'],
  // runbook's own state on a host (cluster lock, detached jobs, file sync): one per host, like a
  // real server's; and the scripts it installs (the file sync's pull script)
  ['/var/lib/runbook', 'var-lib-runbook'],
  ['/usr/local/lib/runbook', 'usr-local-lib-runbook'],
  ['/var/log', 'var-log'],
  ['/root', 'root'],
  ['/home', 'home'],
  ['/srv', 'srv'],
  ['/run', 'run'],
  ['/tmp', 'tmp'],
];

export function isRhelHost(spec: LabSpec, host: LabHost): boolean {
  return host.role === 'db' && spec.layout === 'rhel';
}

/** In mount order. RHEL hosts overlay all of /var/lib instead of binding two folders in it. */
export function hostMounts(spec: LabSpec, host: LabHost, hostDir: string): Mount[] {
  const overlay = (target: string, base: string): Mount => ({
    kind: 'overlay',
    target,
    upper: join(hostDir, `${base}.upper`),
    work: join(hostDir, `${base}.work`),
  });
  const rhel = isRhelHost(spec, host);
  const mounts: Mount[] = [overlay('/etc', 'etc')];
  for (const [target, dir] of BINDS) {
    // a PGDG box has no Debian cluster dirs: hidden (hiddenPaths) rather than bound empty
    if (rhel && (target.startsWith('/var/lib/') || target === '/etc/postgresql')) continue;
    mounts.push({ kind: 'bind', target, source: join(hostDir, 'fs', dir) });
  }
  // Overlays after the binds: their sources live under /var/lib, which the /var/lib overlay covers.
  if (rhel) mounts.push(overlay('/usr', 'usr'), overlay('/var/lib', 'varlib'));
  // Another major (pg-server.ts): /usr/lib/postgresql/<major> appears in this host only.
  else if (host.role === 'db' && labPgMajor(spec) !== DEBIAN_MAJOR) mounts.push(overlay('/usr/lib/postgresql', 'usrlibpg'));
  // runbook's own state (/var/lib/runbook: cluster lock, detached jobs) is per host either way: a
  // bind of BINDS on Debian hosts, inside the per-host /var/lib overlay on RHEL hosts (a bind after
  // that overlay cannot see its source under the lab's state dir).
  return mounts;
}

/** The account files every host of a lab shares, built once from the real ones plus `ops`. */
export interface Accounts {
  passwd: string;
  shadow: string;
  group: string;
  gshadow: string;
  ops: { uid: number; gid: number };
  postgres: { uid: number; gid: number };
}

export function buildAccounts(): Accounts {
  const passwd = readFileSync('/etc/passwd', 'utf8');
  const group = readFileSync('/etc/group', 'utf8');
  const rows = (text: string) => text.split('\n').filter(Boolean).map((l) => l.split(':'));
  const pg = rows(passwd).find((r) => r[0] === 'postgres');
  if (!pg) throw new Error('lab: no postgres user in /etc/passwd (is postgresql-15 installed?)');
  const uids = new Set(rows(passwd).map((r) => Number(r[2])));
  const gids = new Set(rows(group).map((r) => Number(r[2])));
  let id = 1500;
  while (uids.has(id) || gids.has(id)) id++;
  const withoutOps = (text: string) => rows(text).filter((r) => r[0] !== OPS_USER).map((r) => r.join(':') + '\n').join('');
  // sshd without PAM refuses accounts whose password starts with '!' (locked): keys only, so '*'.
  const unlock = (text: string) =>
    rows(text)
      .map((r) => (r[0] === 'root' || r[0] === 'postgres') && r[1]?.startsWith('!') ? [r[0], '*', ...r.slice(2)] : r)
      .map((r) => r.join(':') + '\n')
      .join('');
  return {
    passwd: withoutOps(passwd) + `${OPS_USER}:x:${id}:${id}:runbook lab operator:/home/${OPS_USER}:/bin/bash\n`,
    shadow: unlock(withoutOps(readFileSync('/etc/shadow', 'utf8'))) + `${OPS_USER}:*:19000:0:99999:7:::\n`,
    group: withoutOps(group) + `${OPS_USER}:x:${id}:\n`,
    gshadow: withoutOps(readFileSync('/etc/gshadow', 'utf8')) + `${OPS_USER}:!::\n`,
    ops: { uid: id, gid: id },
    postgres: { uid: Number(pg[2]), gid: Number(pg[3]) },
  };
}

function sshdConfig(host: LabHost): string {
  // A whole config rather than the machine's: only this host's address and its own key.
  return [
    '# runbook lab host sshd',
    `ListenAddress ${host.address}`,
    'HostKey /etc/ssh/ssh_host_ed25519_key',
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    // PAM adds pam_systemd and friends to every login for nothing in a lab host
    'UsePAM no',
    'UseDNS no',
    'PrintMotd no',
    'AcceptEnv LANG LC_*',
    'Subsystem sftp /usr/lib/openssh/sftp-server',
    '',
  ].join('\n');
}

function writeFile(path: string, text: string, mode = 0o644, owner?: { uid: number; gid: number }): void {
  writeFileSync(path, text, { mode });
  chmodSync(path, mode); // the umask would otherwise narrow it
  if (owner) chownSync(path, owner.uid, owner.gid);
}

function mkdir(path: string, mode = 0o755, owner?: { uid: number; gid: number }): void {
  mkdirSync(path, { recursive: true });
  chmodSync(path, mode);
  if (owner) chownSync(path, owner.uid, owner.gid);
}

function authorize(home: string, clientPub: string, owner: { uid: number; gid: number }): void {
  mkdir(join(home, '.ssh'), 0o700, owner);
  writeFile(join(home, '.ssh', 'authorized_keys'), clientPub, 0o600, owner);
}

/** Where runbook keeps its state on a host (src/core/lock.ts, src/core/detached.ts). */
const RUNBOOK_STATE_DIR = '/var/lib/runbook';

export function prepareHostFs(spec: LabSpec, host: LabHost, hostDir: string, accounts: Accounts, clientPub: string): void {
  const rhel = isRhelHost(spec, host);
  // The mount point must exist in the root: an empty directory, runbook's own.
  mkdir(RUNBOOK_STATE_DIR);
  const root = { uid: 0, gid: 0 };
  for (const m of hostMounts(spec, host, hostDir)) {
    if (m.kind === 'overlay') {
      mkdir(m.upper);
      mkdir(m.work);
    } else mkdir(m.source);
  }
  const fs = (dir: string) => join(hostDir, 'fs', dir);

  const etc = join(hostDir, 'etc.upper');
  mkdir(join(etc, 'ssh'));
  mkdir(join(etc, 'sudoers.d'), 0o750);
  writeFile(join(etc, 'hostname'), `${host.name}\n`);
  writeFile(
    join(etc, 'hosts'),
    ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', ...spec.hosts.map((h) => `${h.address}\t${h.name}`), ''].join('\n'),
  );
  const passwd = rhel ? accounts.passwd.replace(/^(postgres:[^:]*:[^:]*:[^:]*:[^:]*:)[^:]*/m, '$1/var/lib/pgsql') : accounts.passwd;
  writeFile(join(etc, 'passwd'), passwd);
  writeFile(join(etc, 'group'), accounts.group);
  writeFile(join(etc, 'shadow'), accounts.shadow, 0o640, { uid: 0, gid: groupId(accounts.group, 'shadow') });
  writeFile(join(etc, 'gshadow'), accounts.gshadow, 0o640, { uid: 0, gid: groupId(accounts.group, 'shadow') });
  writeFile(join(etc, 'sudoers.d', OPS_USER), `${OPS_USER} ALL=(ALL:ALL) NOPASSWD: ALL\n`, 0o440);
  writeFile(join(etc, 'ssh', 'sshd_config'), sshdConfig(host));
  const major = labPgMajor(spec);
  if (rhel) prepareRhelLook(hostDir, accounts, major);
  else if (host.role === 'db' && major !== DEBIAN_MAJOR) symlinkSync(pgServerDir(major), join(hostDir, 'usrlibpg.upper', major));

  // Homes and service folders, owned as the packages would have made them.
  mkdir(fs('root'), 0o700, root);
  authorize(fs('root'), clientPub, root);
  mkdir(join(fs('home'), OPS_USER), 0o755, accounts.ops);
  authorize(join(fs('home'), OPS_USER), clientPub, accounts.ops);
  const pgHome = rhel ? join(hostDir, 'varlib.upper', 'pgsql') : fs('var-lib-postgresql');
  mkdir(pgHome, rhel ? 0o700 : 0o755, accounts.postgres);
  authorize(pgHome, clientPub, accounts.postgres);
  if (!rhel) mkdir(fs('etc-postgresql'), 0o755, accounts.postgres);
  mkdir(join(fs('var-log'), 'postgresql'), 0o1775, { uid: 0, gid: accounts.postgres.gid });
  chmodSync(fs('tmp'), 0o1777);
  if (host.role === 'nfs') mkdir(join(fs('srv'), 'share'), 0o755);
}

/** What makes a RHEL-layout host look like a PGDG install (see docs in lab/index.ts). */
function prepareRhelLook(hostDir: string, accounts: Accounts, major: string): void {
  const usr = join(hostDir, 'usr.upper');
  // /usr/pgsql-<major>/bin: Debian's 15, or the other major's tree (its bin/ already mixes server and client tools).
  if (major === DEBIAN_MAJOR) {
    mkdir(join(usr, `pgsql-${major}`));
    symlinkSync(pgServerDir(major) + '/bin', join(usr, `pgsql-${major}`, 'bin'));
  } else symlinkSync(pgServerDir(major), join(usr, `pgsql-${major}`));
  // /usr/bin/psql & co. point at postgresql-common's pg_wrapper on Debian; PGDG links them to
  // /usr/pgsql-15/bin. Wrapper-only tools (pg_lsclusters, pg_ctlcluster…) are hidden by init.
  mkdir(join(usr, 'bin'));
  for (const tool of readdirSync('/usr/bin')) {
    let target: string;
    try {
      target = readlinkSync(join('/usr/bin', tool));
    } catch {
      continue;
    }
    if (target.endsWith('/pg_wrapper')) symlinkSync(`${rhelPgBin(major)}/${tool}`, join(usr, 'bin', tool));
  }
  mkdir(join(hostDir, 'varlib.upper', 'pgsql', major), 0o700, accounts.postgres);
  const etc = join(hostDir, 'etc.upper');
  writeFile(
    join(etc, 'os-release'),
    'NAME="Red Hat Enterprise Linux"\nVERSION="9.4 (runbook lab imitation on Debian)"\nID="rhel"\nID_LIKE="fedora"\nVERSION_ID="9.4"\nPRETTY_NAME="RHEL 9.4 layout (runbook lab)"\n',
  );
  writeFile(join(etc, 'redhat-release'), 'Red Hat Enterprise Linux release 9.4 (runbook lab imitation)\n');
}

/** Files init hides in the overlays (whiteouts must be made by mknod, as root, before mounting). */
export function hiddenPaths(spec: LabSpec, host: LabHost, hostDir: string): string[] {
  // The machine's own host keys: a lab host has only its own (init generates it after mounting).
  const keys = ['rsa', 'ecdsa', 'ed25519'].flatMap((t) => [`ssh_host_${t}_key`, `ssh_host_${t}_key.pub`]);
  const hidden = keys.map((k) => join(hostDir, 'etc.upper', 'ssh', k));
  if (isRhelHost(spec, host)) {
    hidden.push(
      join(hostDir, 'etc.upper', 'postgresql'),
      join(hostDir, 'etc.upper', 'postgresql-common'),
      join(hostDir, 'varlib.upper', 'postgresql'),
    );
    for (const tool of readdirSync('/usr/bin')) {
      if (/^pg_(lsclusters|ctlcluster|createcluster|dropcluster|upgradecluster|renamecluster|conftool|backupcluster|restorecluster|buildext|virtualenv)$/.test(tool)) {
        hidden.push(join(hostDir, 'usr.upper', 'bin', tool));
      }
    }
  }
  return hidden;
}

function groupId(group: string, name: string): number {
  const row = group.split('\n').find((l) => l.startsWith(`${name}:`));
  return row ? Number(row.split(':')[2]) : 0;
}
