/**
 * NFS sharing, the pure part: input validation, backend choice, and the text of every managed
 * file (kernel exports file, nfs-ganesha EXPORT block, fstab line). No I/O here: the runbooks
 * (runbooks/enable-nfs-sharing.ts, disable-nfs-sharing.ts) feed these from facts.
 */
import { checksFor } from '../../engine/checks.js';
import { blocked, change, fact, noop, param, stepsFor } from '../../engine/define.js';
import type { Fact, ParamsOf, Plan, RunContext, StepContext, StepDef } from '../../engine/types.js';
import {
  GANESHA_PID_FILE,
  ganeshaFact,
  nfsHostFact,
  pathFact,
  type GaneshaFacts,
  type KernelNfs,
  type MountFacts,
  type MountUser,
  type NfsHostFacts,
  type PathFacts,
} from './facts.js';
import { sh, type Command } from '../../shell/index.js';
import type { ServiceArgs } from '../../core/service.js';
import { portListening } from '../../core/wait.js';

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

export type MountPlan = Plan;

/** Mount (through the fstab line) unless the share is already there. */
export function planMount(mount: MountFacts, spec: Pick<ShareSpec, 'serverAddress' | 'exportPath' | 'mountPoint'>): MountPlan {
  const want = `${spec.serverAddress}:${spec.exportPath}`;
  if (mount.mounted) {
    if (mount.mounted.source === want && mount.mounted.fstype.startsWith('nfs')) return { kind: 'noop', reason: `${want} is mounted on ${spec.mountPoint}` };
    return { kind: 'blocked', reason: `${spec.mountPoint} already has ${mount.mounted.source} (${mount.mounted.fstype}) mounted; unmount it first` };
  }
  const commands = [...(mount.directory ? [] : [sh`mkdir -p ${spec.mountPoint}`]), sh`mount ${spec.mountPoint}`];
  return change(`mount ${want} on ${spec.mountPoint}`, commands);
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
    ? change(`lazy unmount of ${mount.mountPoint} (force=true)`, [sh`umount -l ${mount.mountPoint}`])
    : change(`unmount ${mount.mountPoint}`, [sh`umount ${mount.mountPoint}`]);
}

// ---------------------------------------------------------------- write/read test

/** Probe file of one client on the share; disable-nfs-sharing removes them. */
export const probeName = (host: string): string => `.runbook-probe-${host}`;

/** Fixed content, so every run can check that what it reads is what this host wrote. */
export const probeContent = (host: string, user: string): string => `runbook write/read probe from ${host} as ${user}\n`;

export function libnfsUrl(server: string, path: string): string {
  // version=3: libnfs over NFSv4 fails on larger writes (seen in the lab).
  return `nfs://${server}${path}?version=3`;
}

type ProbeSpec = Pick<ShareSpec, 'serverAddress' | 'exportPath' | 'mountPoint'>;

/** Read this host's probe back: through the mount, or through libnfs (user space, NFSv3). */
export function probeReadCommand(via: 'mount' | 'libnfs', spec: ProbeSpec, host: string): Command {
  return via === 'mount' ? sh`cat ${`${spec.mountPoint}/${probeName(host)}`}` : sh`nfs-cat ${libnfsUrl(spec.serverAddress, `${spec.exportPath}/${probeName(host)}`)}`;
}

/**
 * Write the probe as the service user. nfs-cp creates exclusively (NFS3ERR_EXIST on an existing
 * file) and libnfs-utils has no rm: so the probe is written once, read on every run.
 */
export function probeWriteCommand(via: 'mount' | 'libnfs', spec: ProbeSpec, host: string, user: string): Command {
  const content = probeContent(host, user);
  const write =
    via === 'mount'
      ? sh`printf '%s' ${content} > ${`${spec.mountPoint}/${probeName(host)}`}`
      : sh`l=$(mktemp) && printf '%s' ${content} > "$l" && nfs-cp "$l" ${libnfsUrl(spec.serverAddress, `${spec.exportPath}/${probeName(host)}`)}; r=$?; rm -f "$l"; exit $r`;
  return sh`cd / && runuser -u ${user} -- sh -c ${write.toString()}`;
}

export type ProbeState = { kind: 'same' } | { kind: 'missing' } | { kind: 'different'; content: string } | { kind: 'error'; message: string };

export function parseProbeRead(stdout: string, stderr: string, exitCode: number | null, expected: string): ProbeState {
  if (exitCode === 0) return stdout === expected ? { kind: 'same' } : { kind: 'different', content: stdout.slice(0, 200) };
  if (/NOENT|No such file/i.test(stderr)) return { kind: 'missing' };
  return { kind: 'error', message: stderr.trim().split('\n').slice(-2).join(' ') || `exit ${exitCode}` };
}

/** Noop when the probe reads back identical; write it when missing; refuse to clobber another file. */
export function planProbe(state: ProbeState, how: string, write: Command, user: string): MountPlan {
  switch (state.kind) {
    case 'same':
      return { kind: 'noop', reason: `the probe written by ${user} reads back identical ${how}` };
    case 'missing':
      return change(`write a probe as ${user} ${how}, then read it back`, [write]);
    case 'error':
      // Before the share is ready (first run, check mode) reading fails: writing is what proves it.
      return change(`write a probe as ${user} ${how}, then read it back (now: ${state.message})`, [write]);
    case 'different':
      return { kind: 'blocked', reason: `the probe file holds something else (${JSON.stringify(state.content)}): remove it on the server and run again` };
  }
}

// ---------------------------------------------------------------- params and shared steps

export const nfsParams = {
  name: param.string({ description: 'share name: names the exports file and the ganesha block', default: 'share' }),
  exportPath: param.string({ description: 'path exported by the server (must exist there)', default: '/srv/share' }),
  mountPoint: param.string({ description: 'where clients mount the share', default: '/mnt/share' }),
  options: param.string({ description: 'export options, exports(5) style', default: 'rw,sync,root_squash' }),
  mountOptions: param.string({ description: 'extra mount options (hard,_netdev,nofail are always set)', default: '' }),
  owner: param.string({ description: 'owner[:group] of the exported directory ("" leaves it)', default: 'postgres' }),
  user: param.string({ description: 'service user for the write/read test', default: 'postgres' }),
  servers: param.string({ description: 'NFS server host pattern (one host)', default: 'nfs_servers' }),
  clients: param.string({ description: 'client host pattern', default: 'postgres' }),
  clientAddresses: param.list({ description: 'more addresses, networks or host names allowed to mount', default: [] }),
  backend: param.string({ description: 'server backend', default: 'auto', choices: ['auto', 'kernel', 'ganesha'] }),
};
export type NfsParams = ParamsOf<typeof nfsParams>;

/** The share as the params and the inventory describe it. */
export function shareSpec<P extends NfsParams>(p: P, ctx: RunContext<P>): ShareSpec {
  const server = ctx.select(p.servers)[0];
  const clients = [...ctx.select(p.clients).map((h) => h.address), ...p.clientAddresses];
  return {
    name: p.name,
    exportPath: p.exportPath,
    mountPoint: p.mountPoint,
    exportOptions: parseOptions(p.options),
    mountOptions: parseOptions(p.mountOptions),
    clients: [...new Set(clients)],
    serverAddress: server?.address ?? '',
  };
}

/** Runbook-level validation: all problems at once, before any host is touched. */
export function validateNfs<P extends NfsParams>(p: P, ctx: RunContext<P>): string[] {
  const servers = ctx.select(p.servers);
  const problems: string[] = [];
  if (servers.length !== 1) problems.push(`servers "${p.servers}" must match exactly one host, matches ${servers.length}${servers.length ? ` (${servers.map((h) => h.name).join(', ')})` : ''}`);
  if (p.owner && !isValidOwner(p.owner)) problems.push(`owner ${JSON.stringify(p.owner)} is not a user[:group] name or uid[:gid]`);
  if (!/^[a-z_][a-z0-9_.-]*$/i.test(p.user)) problems.push(`user ${JSON.stringify(p.user)} is not a user name`);
  return [...problems, ...shareProblems(shareSpec(p, ctx))];
}

/** What later steps read from ctx.state (set by the check steps, which never change anything). */
export type NfsState = {
  nfsInit?: NfsHostFacts['init'];
  nfsBackend?: Backend;
  /** Why the kernel nfsd is not used here. */
  nfsNoKernelServer?: string;
  nfsHasGanesha?: boolean;
  /** Why the kernel cannot mount here (the skip reason), undefined when it can. */
  nfsNoKernelClient?: string;
};
export const nfsState = <P>(ctx: StepContext<P>): NfsState => ctx.state as NfsState;

/** Skip unless the kernel can mount; the reason is the fact (e.g. no nfs in /proc/filesystems). */
export const whenKernelClient = <P>(ctx: StepContext<P>): true | string => nfsState(ctx).nfsNoKernelClient ?? true;

/** What must hold of the export path before anything is exported: a directory (the evidence in words). */
export function exportPathHolds(path: PathFacts, host: string): true | { ok: string } | string {
  if (path.kind === 'missing') return `export path ${path.path} does not exist on ${host}: create it, or give exportPath`;
  if (path.kind !== 'directory') return `export path ${path.path} on ${host} is not a directory`;
  return { ok: `${path.path} is a directory owned by ${path.owner}` };
}

/**
 * The checks both runbooks start with: nothing changes, everything later steps need is remembered.
 * A backend that cannot serve is a guard (blocked, exit 8); a missing export path is a check that
 * does not hold (failed, kind verify, exit 4) — enable only: disabling does not care.
 */
export function nfsCheckSteps<P extends NfsParams>(mode: 'enable' | 'disable'): Array<StepDef<P, any>> {
  const { step } = stepsFor<P>();
  const { check } = checksFor<P>();
  const server = step<{ host: NfsHostFacts }>({
    id: 'nfs-server-check',
    title: 'NFS server: backend',
    on: (ctx) => ctx.select(ctx.params.servers).map((h) => h.name),
    become: true,
    gather: () => ({ host: nfsHostFact }),
    plan: (f, ctx) => {
      const choice = chooseBackend(ctx.params.backend as 'auto' | Backend, f.host);
      if (mode === 'disable') return noop(`kernel nfsd: ${kernelServerUnavailable(f.host) ?? 'available'}; ganesha: ${f.host.tools['ganesha.nfsd'] ? 'installed' : 'not installed'}`);
      if ('blocked' in choice) return blocked(choice.blocked);
      return noop(`backend ${choice.backend} (${choice.why})`);
    },
    remember: (f, ctx): NfsState => {
      const choice = chooseBackend(ctx.params.backend as 'auto' | Backend, f.host);
      const noKernel = kernelServerUnavailable(f.host);
      return {
        nfsInit: f.host.init,
        ...('backend' in choice ? { nfsBackend: choice.backend } : {}),
        ...(noKernel ? { nfsNoKernelServer: noKernel } : {}),
        nfsHasGanesha: Boolean(f.host.tools['ganesha.nfsd']),
      };
    },
  });
  const client = step<{ host: NfsHostFacts }>({
    id: 'nfs-client-check',
    title: 'NFS client: kernel support, or libnfs',
    on: (ctx) => ctx.select(ctx.params.clients).map((h) => h.name),
    gather: () => ({ host: nfsHostFact }),
    plan: (f) => {
      const noKernel = kernelClientUnavailable(f.host.kernel);
      if (!noKernel) {
        if (!f.host.tools['mount.nfs']) return blocked('the kernel has an NFS client but mount.nfs is missing: install nfs-common (Debian) or nfs-utils (RHEL)');
        return noop('kernel NFS client available');
      }
      if (mode === 'enable' && !(f.host.tools['nfs-cp'] && f.host.tools['nfs-cat']))
        return blocked(`${noKernel}, and libnfs-utils (nfs-cp, nfs-cat) is not installed: nothing on this host can reach the share`);
      return noop(`${noKernel}: no mount here; the share is checked through libnfs (nfs-cp, nfs-cat)`);
    },
    remember: (f): NfsState => {
      const noKernel = kernelClientUnavailable(f.host.kernel);
      return { nfsInit: f.host.init, ...(noKernel ? { nfsNoKernelClient: noKernel } : {}) };
    },
  });
  const exportPath = check<{ path: PathFacts }>({
    id: 'nfs-export-path',
    title: 'NFS server: the export path is a directory',
    name: 'the export path is a directory on the server',
    on: (ctx) => ctx.select(ctx.params.servers).map((h) => h.name),
    become: true,
    timeoutMs: 0,
    gather: (ctx) => ({ path: pathFact(ctx.params.exportPath) }),
    holds: (f, ctx) => exportPathHolds(f.path, ctx.host.name),
  });
  return mode === 'enable' ? [server, exportPath, client] : [server, client];
}

/** Server steps run on the server hosts only. */
export const onServers = <P extends NfsParams>(ctx: RunContext<P>): string[] => ctx.select(ctx.params.servers).map((h) => h.name);
export const onClients = <P extends NfsParams>(ctx: RunContext<P>): string[] => ctx.select(ctx.params.clients).map((h) => h.name);

/** Skip unless the server uses (enable) or may hold (disable) this backend. */
export function whenBackend<P>(backend: Backend, mode: 'enable' | 'disable') {
  return (ctx: StepContext<P>): true | string => {
    const s = nfsState(ctx);
    if (backend === 'kernel') {
      if (s.nfsNoKernelServer) return `kernel nfsd not usable here: ${s.nfsNoKernelServer}`;
      return mode === 'disable' || s.nfsBackend === 'kernel' ? true : `backend is ${s.nfsBackend}`;
    }
    if (mode === 'disable') return s.nfsHasGanesha ? true : 'nfs-ganesha is not installed';
    return s.nfsBackend === 'ganesha' ? true : `backend is ${s.nfsBackend}`;
  };
}

/** exportfs -v as a fact (kernel backend). */
export const exportfsFact: Fact<ExportEntry[]> = fact({
  name: 'nfs.exportfs',
  become: true,
  command: exportfsList,
  parse: (r) => {
    if (r.exitCode !== 0) throw new Error(`exportfs -v failed: ${r.stderr.trim()}`);
    return parseExportfs(r.stdout);
  },
});

/** The step that makes the kernel's live export table follow the exports file (exportfs -ra). */
export function kernelExportsActiveStep<P extends NfsParams>(mode: 'enable' | 'disable'): StepDef<P, { entries: ExportEntry[] }> {
  const { step } = stepsFor<P>();
  return step({
    id: mode === 'enable' ? 'nfs-kernel-exports-active' : 'nfs-kernel-exports-inactive',
    title: 'Kernel nfsd: exportfs -ra, checked with exportfs -v',
    on: onServers,
    become: true,
    when: whenBackend('kernel', mode),
    gather: () => ({ entries: exportfsFact }),
    plan: (f, ctx) => planKernelExportActive(f.entries, shareSpec(ctx.params, ctx), mode === 'enable'),
  });
}

/** The kernel's live export table matches the file (enable), or no longer has the path (disable). */
export function planKernelExportActive(entries: ExportEntry[], spec: ShareSpec, present: boolean): Plan {
  const ours = entries.filter((e) => e.path === spec.exportPath);
  if (!present) return ours.length ? change(`exportfs -ra: ${spec.exportPath} is still exported`, [exportfsReload]) : noop(`${spec.exportPath} is not exported`);
  const want = spec.exportOptions.filter((o) => !/^no_(all_)?squash$|^(no_)?wdelay$/.test(o));
  const stale = spec.clients.filter((c) => {
    const e = ours.find((x) => x.client === c);
    return !e || want.some((o) => !e.options.includes(o));
  });
  return stale.length ? change(`exportfs -ra: ${stale.join(', ')} not exported as wanted`, [exportfsReload]) : noop(`exportfs -v shows ${spec.exportPath} for ${spec.clients.join(', ')}`);
}

/** ganesha as a process (no init system) or a systemd unit. */
export function ganeshaService(init: NfsHostFacts['init']): ServiceArgs {
  const pidFile = GANESHA_PID_FILE;
  return {
    name: 'nfs-ganesha',
    state: 'running',
    commands: {
      start: startOrReloadGanesha(init, undefined, pidFile),
      stop: sh`kill $(cat ${pidFile})`,
      status: sh`p=$(cat ${pidFile} 2>/dev/null) && [ "$(cat /proc/$p/comm 2>/dev/null)" = ganesha.nfsd ]`,
    },
  };
}

export const rpcbindService = (init: NfsHostFacts['init']): ServiceArgs => ({
  name: 'rpcbind',
  state: 'running',
  commands: { start: startRpcbind(init), stop: sh`pkill -x rpcbind`, status: sh`pgrep -x rpcbind >/dev/null` },
});

/** Reload a running ganesha (SIGHUP re-reads EXPORT blocks); a handler. */
export function ganeshaReloadHandler<P>(): StepDef<P, { g: GaneshaFacts }> {
  return {
    id: 'nfs-ganesha-reload',
    title: 'Reload nfs-ganesha',
    become: true,
    gather: () => ({ g: ganeshaFact }),
    plan: (f, ctx) => {
      const init = nfsState(ctx).nfsInit ?? 'none';
      if (!f.g.pid && init !== 'systemd') return noop('nfs-ganesha is not running: nothing to reload');
      return change('reload nfs-ganesha', [startOrReloadGanesha(init, f.g.pid, GANESHA_PID_FILE)]);
    },
    // A reload changes nothing a fact can see; the process must still be there afterwards.
    verify: { converge: false, assertions: () => [portListening<P>(2049, { timeoutMs: 15_000, intervalMs: 500 })] },
  };
}

/** This host's probe on the share, read as the service user. */
export function shareProbeFact(spec: ShareSpec, host: string, via: 'mount' | 'libnfs', user: string): Fact<ProbeState> {
  return fact({
    name: `nfs.probe ${via}`,
    become: user,
    command: sh`cd / && ${probeReadCommand(via, spec, host)}`,
    parse: (r) => parseProbeRead(r.stdout, r.stderr, r.exitCode, probeContent(host, user)),
  });
}
