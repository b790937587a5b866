/**
 * Read-only NFS probes. Each host answers in one round trip with `key=value` lines, parsed here
 * into typed values; the pure plans in nfs.ts decide from them.
 */
import { fact } from '../../engine/define.js';
import type { Fact } from '../../engine/types.js';
import { raw, sh } from '../../shell/index.js';
import { parseKeyValues } from '../../core/key-values.js';

export { parseKeyValues };

/** Filesystem types the running kernel knows, from /proc/filesystems ("nodev\tnfs" → "nfs"). */
export function parseFilesystems(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const name = line.trim().split(/\s+/).pop();
    if (name) out.add(name);
  }
  return out;
}

// ---------------------------------------------------------------- what the kernel and host can do

export interface KernelNfs {
  /** nfs or nfs4 registered in /proc/filesystems. */
  clientFs: boolean;
  /** nfsd registered in /proc/filesystems. */
  serverFs: boolean;
  /** The module exists on disk (it would load on first use). */
  clientModule: boolean;
  serverModule: boolean;
}

/** What an NFS-capable host has: kernel support, tools, init system. */
export interface NfsHostFacts {
  kernel: KernelNfs;
  /** Absolute paths of the tools found, by name (missing ones absent). */
  tools: Record<string, string>;
  /** 'systemd' when PID 1 is systemd, else 'none' (the lab: processes started by hand). */
  init: 'systemd' | 'none';
}

const TOOLS = ['exportfs', 'ganesha.nfsd', 'rpcbind', 'mount.nfs', 'nfs-cp', 'nfs-cat', 'nfs-ls', 'fuser', 'mountpoint', 'findmnt'];

// One script: /proc/filesystems, modules.dep (a module on disk loads on first mount/exportfs), tools, init.
const HOST_SCRIPT = raw(
  [
    `printf 'filesystems=%s\\n' "$(awk '{print $NF}' /proc/filesystems | tr '\\n' ' ')"`,
    `d=/lib/modules/$(uname -r)/modules.dep`,
    `printf 'modules=%s\\n' "$( [ -r "$d" ] && grep -oE '/(nfs|nfsv4|nfsd)\\.ko' "$d" | tr -d / | sed 's/\\.ko//' | tr '\\n' ' ')"`,
    `PATH="$PATH:/usr/sbin:/sbin"`,
    `for t in ${TOOLS.join(' ')}; do p=$(command -v "$t" 2>/dev/null) && printf 'tool.%s=%s\\n' "$t" "$p"; done`,
    `[ -d /run/systemd/system ] && echo init=systemd || echo init=none`,
  ].join('\n'),
);

export function parseNfsHost(stdout: string): NfsHostFacts {
  const kv = parseKeyValues(stdout);
  const fs = new Set((kv.get('filesystems') ?? '').split(/\s+/).filter(Boolean));
  const mods = new Set((kv.get('modules') ?? '').split(/\s+/).filter(Boolean));
  const tools: Record<string, string> = {};
  for (const [k, v] of kv) if (k.startsWith('tool.') && v) tools[k.slice(5)] = v;
  return {
    kernel: {
      clientFs: fs.has('nfs') || fs.has('nfs4'),
      serverFs: fs.has('nfsd'),
      clientModule: mods.has('nfs') || mods.has('nfsv4'),
      serverModule: mods.has('nfsd'),
    },
    tools,
    init: kv.get('init') === 'systemd' ? 'systemd' : 'none',
  };
}

export const nfsHostFact: Fact<NfsHostFacts> = fact({
  name: 'nfs.host',
  command: HOST_SCRIPT,
  parse: (r) => parseNfsHost(r.stdout),
});

// ---------------------------------------------------------------- paths and mounts

export interface PathFacts {
  path: string;
  kind: 'directory' | 'missing' | 'other';
  owner?: string;
  group?: string;
  /** Octal, e.g. "755". */
  mode?: string;
}

export function parsePath(path: string, stdout: string): PathFacts {
  const kv = parseKeyValues(stdout);
  const kind = kv.get('kind');
  if (kind !== 'directory') return { path, kind: kind === 'missing' ? 'missing' : 'other' };
  return { path, kind, owner: kv.get('owner'), group: kv.get('group'), mode: kv.get('mode') };
}

export function pathFact(path: string): Fact<PathFacts> {
  return fact({
    name: `path ${path}`,
    become: true,
    command: sh`p=${path}; ${raw(
      `if [ -d "$p" ]; then echo kind=directory; stat -c 'owner=%U\ngroup=%G\nmode=%a' "$p"; ` +
        `elif [ -e "$p" ]; then echo kind=other; else echo kind=missing; fi`,
    )}`,
    parse: (r) => parsePath(path, r.stdout),
  });
}

export interface MountFacts {
  mountPoint: string;
  /** What is mounted there now, if anything ("10.0.0.5:/srv/share", "nfs4"). */
  mounted?: { source: string; fstype: string };
  /** The mount point exists as a directory. */
  directory: boolean;
}

export function parseMount(mountPoint: string, stdout: string): MountFacts {
  const kv = parseKeyValues(stdout);
  const source = kv.get('source');
  return {
    mountPoint,
    directory: kv.get('directory') === 'yes',
    ...(source ? { mounted: { source, fstype: kv.get('fstype') ?? '' } } : {}),
  };
}

/** /proc/mounts, not `mountpoint -q`: a dead NFS server makes stat-based tools hang. */
export function mountFact(mountPoint: string): Fact<MountFacts> {
  return fact({
    name: `mount ${mountPoint}`,
    command: sh`m=${mountPoint}; ${raw(
      `[ -d "$m" ] && echo directory=yes || echo directory=no; ` +
        // /proc/mounts escapes spaces as \040; compare on the escaped form.
        `e=$(printf '%s' "$m" | sed 's/ /\\\\040/g'); ` +
        `awk -v m="$e" '$2 == m { print "source=" $1; print "fstype=" $3 }' /proc/mounts | tail -n 2`,
    )}`,
    parse: (r) => parseMount(mountPoint, r.stdout),
  });
}

export interface MountUser {
  user: string;
  pid: number;
  command: string;
}

/**
 * `fuser -vm` lists processes using the filesystem on stderr, in a table:
 *                      USER        PID ACCESS COMMAND
 * /mnt/share:          root     kernel mount /mnt/share
 *                      postgres   4242 ..c.. bash
 */
export function parseFuser(stderr: string): MountUser[] {
  const users: MountUser[] = [];
  for (const line of stderr.split('\n')) {
    const body = line.replace(/^\S*:\s*/, '').trim();
    const m = /^(\S+)\s+(\d+)\s+\S+\s+(.+)$/.exec(body);
    if (m) users.push({ user: m[1]!, pid: Number(m[2]), command: m[3]!.trim() });
  }
  return users;
}

/** Who uses the filesystem mounted at the mount point (nothing when it is not mounted). */
export function mountUsersFact(mountPoint: string): Fact<MountUser[]> {
  return fact({
    name: `users of ${mountPoint}`,
    become: true,
    command: sh`m=${mountPoint}; ${raw(`if mountpoint -q "$m" 2>/dev/null; then fuser -vm "$m"; fi; true`)}`,
    parse: (r) => parseFuser(r.stderr),
  });
}

// ---------------------------------------------------------------- nfs-ganesha

export interface GaneshaFacts {
  /** PID of the running ganesha.nfsd, from its pid file, checked against /proc. */
  pid?: number;
  rpcbindPid?: number;
}

export function parseGanesha(stdout: string): GaneshaFacts {
  const kv = parseKeyValues(stdout);
  const num = (k: string) => (/^\d+$/.test(kv.get(k) ?? '') ? Number(kv.get(k)) : undefined);
  const pid = num('ganesha');
  const rpcbindPid = num('rpcbind');
  return { ...(pid ? { pid } : {}), ...(rpcbindPid ? { rpcbindPid } : {}) };
}

export const GANESHA_PID_FILE = '/run/ganesha/ganesha.pid';

export const ganeshaFact: Fact<GaneshaFacts> = fact({
  name: 'nfs.ganesha',
  command: sh`pidfile=${GANESHA_PID_FILE}; ${raw(
    `p=$(cat "$pidfile" 2>/dev/null); ` +
      `[ -n "$p" ] && [ "$(cat /proc/"$p"/comm 2>/dev/null)" = ganesha.nfsd ] && echo ganesha="$p"; ` +
      `echo rpcbind="$(pgrep -x rpcbind | head -n 1)"`,
  )}`,
  parse: (r) => parseGanesha(r.stdout),
});
