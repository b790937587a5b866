/**
 * NFS sharing, the pure part: input validation, backend choice, and the text of every managed
 * file (kernel exports file, nfs-ganesha EXPORT block, fstab line). No I/O here: the runbooks
 * (runbooks/enable-nfs-sharing.ts, disable-nfs-sharing.ts) feed these from facts.
 */
import type { KernelNfs, MountFacts, MountUser, NfsHostFacts } from '../facts/nfs.js';
import { raw, sh, type Command } from '../shell/index.js';

// ---------------------------------------------------------------- input

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const HOSTNAME = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
// Characters that exports(5), fstab(5) or ganesha.conf would read as syntax.
const UNSAFE_PATH = /[\s,()"'#;{}\\=]/;

/** An address, a network (addr/prefix) or a host name: what exports(5) and ganesha accept. */
export function isValidClient(client: string): boolean {
  const [addr, prefix, ...rest] = client.split('/');
  if (rest.length > 0 || !addr) return false;
  if (prefix !== undefined) return IPV4.test(addr) && /^\d+$/.test(prefix) && Number(prefix) <= 32;
  if (IPV4.test(addr)) return true;
  if (addr.includes(':')) return /^[0-9A-Fa-f:.]+$/.test(addr) && addr.split(':').length <= 8;
  // A name made only of digits and dots is a mistyped address, not a host.
  return HOSTNAME.test(addr) && !/^[\d.]+$/.test(addr);
}

export function pathProblem(what: string, path: string): string | undefined {
  if (!path.startsWith('/')) return `${what} ${JSON.stringify(path)} is not an absolute path`;
  if (UNSAFE_PATH.test(path)) return `${what} ${JSON.stringify(path)} holds a space or one of , ( ) " ' # ; { } \\ =`;
  if (path.split('/').includes('..')) return `${what} ${JSON.stringify(path)} contains ..`;
  if (path === '/') return `${what} cannot be /`;
  return undefined;
}

/** exports(5) options this runbook understands; ganesha gets their equivalent. */
const EXPORT_OPTIONS = new Set([
  'rw', 'ro', 'sync', 'async', 'root_squash', 'no_root_squash', 'all_squash', 'no_all_squash',
  'secure', 'insecure', 'subtree_check', 'no_subtree_check', 'wdelay', 'no_wdelay',
]);

export function parseOptions(text: string): string[] {
  return text.split(',').map((o) => o.trim()).filter(Boolean);
}

export function exportOptionProblems(options: string[]): string[] {
  const problems: string[] = [];
  for (const o of options) {
    if (!EXPORT_OPTIONS.has(o) && !/^anon(uid|gid)=\d+$/.test(o)) problems.push(`export option ${JSON.stringify(o)} is not one of ${[...EXPORT_OPTIONS].join(', ')}, anonuid=N, anongid=N`);
  }
  if (options.includes('rw') && options.includes('ro')) problems.push('export options: rw and ro together');
  const squash = options.filter((o) => /^(no_)?(root|all)_squash$/.test(o));
  if (squash.includes('root_squash') && squash.includes('no_root_squash')) problems.push('export options: root_squash and no_root_squash together');
  return problems;
}

export function mountOptionProblems(options: string[]): string[] {
  const problems: string[] = [];
  for (const o of options) {
    if (!/^[A-Za-z0-9_.=:-]+$/.test(o)) problems.push(`mount option ${JSON.stringify(o)} holds characters fstab cannot take`);
  }
  // hard is PostgreSQL's one firm NFS requirement: a soft mount can turn a slow server into corrupt files.
  if (options.includes('soft')) problems.push('mount option soft: the share is always mounted hard (a soft mount can lose writes)');
  return problems;
}

/** An owner given as a user name, user:group, or numeric uid[:gid]. */
export function isValidOwner(owner: string): boolean {
  return /^[a-z_][a-z0-9_.-]*(:[a-z_][a-z0-9_.-]*)?$/i.test(owner) || /^\d+(:\d+)?$/.test(owner);
}

export interface ShareSpec {
  /** Names the managed files and blocks; several shares may coexist. */
  name: string;
  exportPath: string;
  mountPoint: string;
  /** exports(5)-style options, e.g. ["rw", "sync", "root_squash"]. */
  exportOptions: string[];
  /** Extra mount options; hard, _netdev and nofail are always there. */
  mountOptions: string[];
  /** Who may mount: addresses, networks or host names. */
  clients: string[];
  /** How clients reach the server. */
  serverAddress: string;
}

/** Every problem with a share spec, all at once; empty when it is fine. */
export function shareProblems(spec: ShareSpec): string[] {
  const problems: string[] = [];
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(spec.name)) problems.push(`share name ${JSON.stringify(spec.name)}: letters, digits, _ and - only`);
  for (const [what, p] of [['export path', spec.exportPath], ['mount point', spec.mountPoint]] as const) {
    const problem = pathProblem(what, p);
    if (problem) problems.push(problem);
  }
  problems.push(...exportOptionProblems(spec.exportOptions), ...mountOptionProblems(spec.mountOptions));
  if (spec.clients.length === 0) problems.push('no clients: give a client group with hosts, or client addresses');
  for (const c of spec.clients) if (!isValidClient(c)) problems.push(`client ${JSON.stringify(c)} is not an address, a network or a host name`);
  if (!isValidClient(spec.serverAddress) || spec.serverAddress.includes('/')) problems.push(`server address ${JSON.stringify(spec.serverAddress)} is not an address or a host name`);
  return problems;
}

// ---------------------------------------------------------------- server backend

export type Backend = 'kernel' | 'ganesha';

/** Why the kernel nfsd cannot serve here, or undefined when it can. */
export function kernelServerUnavailable(host: NfsHostFacts): string | undefined {
  if (!host.kernel.serverFs && !host.kernel.serverModule) return 'the kernel has no nfsd (not in /proc/filesystems, no nfsd module)';
  if (!host.tools.exportfs) return 'exportfs is not installed (nfs-kernel-server / nfs-utils)';
  return undefined;
}

/** The backend to use, or why none can be. */
export function chooseBackend(wanted: 'auto' | Backend, host: NfsHostFacts): { backend: Backend; why: string } | { blocked: string } {
  const noKernel = kernelServerUnavailable(host);
  const noGanesha = host.tools['ganesha.nfsd'] ? (host.tools.rpcbind ? undefined : 'rpcbind is not installed') : 'nfs-ganesha is not installed';
  if (wanted === 'kernel') return noKernel ? { blocked: `backend=kernel: ${noKernel}` } : { backend: 'kernel', why: 'asked for' };
  if (wanted === 'ganesha') return noGanesha ? { blocked: `backend=ganesha: ${noGanesha}` } : { backend: 'ganesha', why: 'asked for' };
  if (!noKernel) return { backend: 'kernel', why: 'kernel nfsd available' };
  if (!noGanesha) return { backend: 'ganesha', why: `detected; kernel nfsd unusable: ${noKernel}` };
  return { blocked: `no NFS server on this host: ${noKernel}; ${noGanesha}` };
}

/** Why this host cannot mount NFS through the kernel (reported as the skip reason), or undefined. */
export function kernelClientUnavailable(kernel: KernelNfs): string | undefined {
  if (kernel.clientFs || kernel.clientModule) return undefined;
  return 'this kernel has no NFS client (no nfs/nfs4 in /proc/filesystems, no nfs module)';
}

// ---------------------------------------------------------------- kernel nfsd

export const exportsFilePath = (name: string): string => `/etc/exports.d/${name}.exports`;

/** The one line of /etc/exports.d/NAME.exports: the path, then each client with its options. */
export function renderKernelExports(spec: Pick<ShareSpec, 'name' | 'exportPath' | 'exportOptions' | 'clients'>): string {
  // exportfs warns (and picks subtree_check) when neither is given: say it.
  const opts = [...spec.exportOptions];
  if (!opts.some((o) => /subtree_check$/.test(o))) opts.push('no_subtree_check');
  const clients = spec.clients.map((c) => `${c}(${opts.join(',')})`).join(' ');
  return `# Managed by runbook (share ${spec.name}); edits are overwritten.\n${spec.exportPath} ${clients}\n`;
}

export interface ExportEntry {
  path: string;
  client: string;
  options: string[];
}

/**
 * `exportfs -v`: "PATH<tab>CLIENT(opts)"; a long path sits alone on its line and the client
 * follows, indented, on the next.
 */
export function parseExportfs(text: string): ExportEntry[] {
  const entries: ExportEntry[] = [];
  let path: string | undefined;
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const m = /^(\S+)?\s*(?:(\S+)\(([^)]*)\))?\s*$/.exec(line);
    if (!m) continue;
    if (m[1] && !line.startsWith(' ') && !line.startsWith('\t')) path = m[1];
    if (m[2] && path) entries.push({ path, client: m[2], options: (m[3] ?? '').split(',').filter(Boolean) });
  }
  return entries;
}

/** What is missing from `exportfs -v` for the share (empty when every client is exported). */
export function missingKernelExports(entries: ExportEntry[], spec: Pick<ShareSpec, 'exportPath' | 'clients'>): string[] {
  return spec.clients.filter((c) => !entries.some((e) => e.path === spec.exportPath && e.client === c));
}

export const exportfsReload: Command = sh`exportfs -ra`;
export const exportfsList: Command = sh`exportfs -v`;

// ---------------------------------------------------------------- nfs-ganesha

export const GANESHA_CONF = '/etc/ganesha/ganesha.conf';

/** A stable Export_Id per share name (FNV-1a), so re-runs and reloads keep the same id. */
export function ganeshaExportId(name: string): number {
  let h = 0x811c9dc5;
  for (const ch of name) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return 1000 + (h % 60000);
}

/** exports(5) options → ganesha EXPORT settings. */
export function ganeshaSettings(options: string[]): { accessType: 'RW' | 'RO'; squash: string } {
  const squash = options.includes('all_squash')
    ? 'All_Squash'
    : options.includes('no_root_squash')
      ? 'No_Root_Squash'
      : 'Root_Squash';
  return { accessType: options.includes('ro') ? 'RO' : 'RW', squash };
}

/** The EXPORT block for ganesha.conf (inside a managed block; the markers are the op's). */
export function renderGaneshaExport(spec: Pick<ShareSpec, 'name' | 'exportPath' | 'exportOptions' | 'clients'>): string {
  const { accessType, squash } = ganeshaSettings(spec.exportOptions);
  const anon = spec.exportOptions.flatMap((o) => {
    const m = /^anon(uid|gid)=(\d+)$/.exec(o);
    return m ? [`    Anonymous_${m[1] === 'uid' ? 'Uid' : 'Gid'} = ${m[2]};`] : [];
  });
  return [
    `EXPORT {`,
    `    Export_Id = ${ganeshaExportId(spec.name)};`,
    `    Path = "${spec.exportPath}";`,
    `    Pseudo = "${spec.exportPath}";`,
    `    Protocols = 3, 4;`,
    `    Transports = TCP;`,
    // Nothing is allowed outside the CLIENT list.
    `    Access_Type = None;`,
    `    Squash = ${squash};`,
    `    SecType = sys;`,
    ...anon,
    `    FSAL { Name = VFS; }`,
    `    CLIENT {`,
    `        Clients = ${spec.clients.join(', ')};`,
    `        Access_Type = ${accessType};`,
    `    }`,
    `}`,
  ].join('\n');
}

/** Server-wide: without Graceless every (re)start refuses opens for a 90 s grace period. */
export const GANESHA_CORE_BLOCK = `NFSV4 {\n    Graceless = true;\n}`;

/** Start rpcbind as a plain process (no init system); ganesha exits without it. */
export function startRpcbind(init: NfsHostFacts['init']): Command {
  return init === 'systemd' ? sh`systemctl start rpcbind` : sh`rpcbind -w`;
}

/** Start ganesha with its pid file, or make a running one re-read its EXPORT blocks. */
export function startOrReloadGanesha(init: NfsHostFacts['init'], pid: number | undefined, pidFile: string): Command {
  if (init === 'systemd') return pid ? sh`systemctl reload-or-restart nfs-ganesha` : sh`systemctl start nfs-ganesha`;
  if (pid) return sh`kill -HUP ${pid}`;
  return sh`mkdir -p /var/log/ganesha ${dirOf(pidFile)} && setsid ganesha.nfsd -f ${GANESHA_CONF} -p ${pidFile} -L /var/log/ganesha/ganesha.log </dev/null`;
}

function dirOf(path: string): string {
  return path.slice(0, path.lastIndexOf('/')) || '/';
}

// ---------------------------------------------------------------- client

/** The fstab line: hard (never lose a write), _netdev (wait for the network), nofail (boot anyway). */
export function renderFstabLine(spec: Pick<ShareSpec, 'serverAddress' | 'exportPath' | 'mountPoint' | 'mountOptions'>): string {
  const server = spec.serverAddress.includes(':') ? `[${spec.serverAddress}]` : spec.serverAddress;
  const opts = ['hard', '_netdev', 'nofail', ...spec.mountOptions.filter((o) => !['hard', '_netdev', 'nofail'].includes(o))];
  return `${server}:${spec.exportPath} ${spec.mountPoint} nfs ${opts.join(',')} 0 0`;
}

/** Matches any fstab line for this mount point, ours or an older hand-written one. */
export function fstabLineRegexp(mountPoint: string): RegExp {
  return new RegExp(`^\\s*\\S+\\s+${mountPoint.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\s+nfs4?\\s`);
}

export type MountPlan =
  | { kind: 'noop'; reason: string }
  | { kind: 'change'; summary: string; commands: Command[] }
  | { kind: 'blocked'; reason: string };

/** Mount (through the fstab line) unless the share is already there. */
export function planMount(mount: MountFacts, spec: Pick<ShareSpec, 'serverAddress' | 'exportPath' | 'mountPoint'>): MountPlan {
  const want = `${spec.serverAddress}:${spec.exportPath}`;
  if (mount.mounted) {
    if (mount.mounted.source === want && mount.mounted.fstype.startsWith('nfs')) return { kind: 'noop', reason: `${want} is mounted on ${spec.mountPoint}` };
    return { kind: 'blocked', reason: `${spec.mountPoint} already has ${mount.mounted.source} (${mount.mounted.fstype}) mounted; unmount it first` };
  }
  const commands = [...(mount.directory ? [] : [sh`mkdir -p ${spec.mountPoint}`]), sh`mount ${spec.mountPoint}`];
  return { kind: 'change', summary: `mount ${want} on ${spec.mountPoint}`, commands };
}

/** Unmount; a lazy unmount only when forced, and never over users unless forced. */
export function planUnmount(mount: MountFacts, users: MountUser[], force: boolean): MountPlan {
  if (!mount.mounted) return { kind: 'noop', reason: `nothing is mounted on ${mount.mountPoint}` };
  const busy = users.filter((u) => u.command !== `mount ${mount.mountPoint}` && u.user !== 'kernel');
  if (busy.length > 0 && !force) {
    const list = busy.map((u) => `${u.command} (pid ${u.pid}, ${u.user})`).join(', ');
    return { kind: 'blocked', reason: `${mount.mountPoint} is in use by ${list}: stop them, or pass force=true for a lazy unmount` };
  }
  return force
    ? { kind: 'change', summary: `lazy unmount of ${mount.mountPoint} (force=true)`, commands: [sh`umount -l ${mount.mountPoint}`] }
    : { kind: 'change', summary: `unmount ${mount.mountPoint}`, commands: [sh`umount ${mount.mountPoint}`] };
}

// ---------------------------------------------------------------- write/read test

/** Probe file of one client on the share: overwritten each run, so probes never pile up. */
export const probeName = (host: string): string => `.runbook-probe-${host}`;

/**
 * Write a fresh token to the share and read it back, as the service user. Through the mount
 * when there is one; else through libnfs (NFSv3, from the client host, in user space).
 * Prints `wrote=TOKEN` and `read=TOKEN`; the comparison is the caller's.
 */
export function roundTripCommand(
  via: 'mount' | 'libnfs',
  spec: Pick<ShareSpec, 'serverAddress' | 'exportPath' | 'mountPoint'>,
  host: string,
): Command {
  const token = raw(`"$(hostname)-$$-$(date +%s%N)"`);
  if (via === 'mount') {
    const file = `${spec.mountPoint}/${probeName(host)}`;
    return sh`f=${file}; t=${token}; ${raw(`printf '%s' "$t" > "$f" && echo "wrote=$t" && echo "read=$(cat "$f")"`)}`;
  }
  const url = libnfsUrl(spec.serverAddress, `${spec.exportPath}/${probeName(host)}`);
  return sh`u=${url}; t=${token}; ${raw(
    `l=$(mktemp) && printf '%s' "$t" > "$l" && nfs-cp "$l" "$u" && echo "wrote=$t" && echo "read=$(nfs-cat "$u")"; r=$?; rm -f "$l"; exit $r`,
  )}`;
}

export function libnfsUrl(server: string, path: string): string {
  // version=3: libnfs over NFSv4 fails on larger writes (seen in the lab).
  return `nfs://${server}${path}?version=3`;
}

/** true when what was read is what was written, else what went wrong. */
export function checkRoundTrip(stdout: string, stderr: string, exitCode: number | null): true | string {
  const wrote = /^wrote=(.*)$/m.exec(stdout)?.[1];
  const read = /^read=(.*)$/m.exec(stdout)?.[1];
  if (exitCode !== 0 || !wrote) return `write failed (exit ${exitCode}): ${stderr.trim().split('\n').slice(-2).join(' ') || 'no output'}`;
  if (read !== wrote) return `read back ${JSON.stringify(read ?? '')}, wrote ${JSON.stringify(wrote)}`;
  return true;
}
