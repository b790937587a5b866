/**
 * Read-only probes for the VIP: addresses on interfaces, keepalived's process, and whether the
 * local PostgreSQL is writable (the role is read from the server, never taken from the inventory).
 */
import { fact } from '../../engine/define.js';
import type { Fact } from '../../engine/types.js';
import { raw, sh } from '../../shell/index.js';
import { parseKeyValues } from '../../core/key-values.js';
import { PEER_CONNECT_TIMEOUT_SEC, PSQL_BIN } from '../postgres/facts.js';

export interface InterfaceAddress {
  ifname: string;
  address: string;
  prefix: number;
}

/** `ip -o -4 addr show`: "2: eth0    inet 10.231.0.11/24 brd … scope global eth0\ …". */
export function parseIpAddr(text: string): InterfaceAddress[] {
  const out: InterfaceAddress[] = [];
  for (const line of text.split('\n')) {
    const m = /^\d+:\s+([^\s:@]+)(?:@\S+)?\s+inet\s+([\d.]+)\/(\d+)/.exec(line);
    if (m) out.push({ ifname: m[1]!, address: m[2]!, prefix: Number(m[3]) });
  }
  return out;
}

export const addressesFact: Fact<InterfaceAddress[]> = fact({
  name: 'ip.addresses',
  command: sh`ip -o -4 addr show`,
  parse: (r) => {
    if (r.exitCode !== 0) throw new Error(`ip -o -4 addr show failed: ${r.stderr.trim()}`);
    return parseIpAddr(r.stdout);
  },
});

export interface KeepalivedFacts {
  /** Path of the keepalived binary; absent when it is not installed. */
  binary?: string;
  /** PID of the running keepalived (the parent), if any. */
  pid?: number;
  init: 'systemd' | 'none';
  /** The last VRRP state the notify script logged (MASTER, BACKUP, FAULT, STOP) and when. */
  vrrp?: { state: string; at: string };
  /** The release flag (vip.ts RELEASE_FILE) is set: this node may not hold the VIP. */
  released?: boolean;
}

export function parseKeepalived(stdout: string): KeepalivedFacts {
  const kv = parseKeyValues(stdout);
  const pid = kv.get('pid') ?? '';
  return {
    ...(kv.get('binary') ? { binary: kv.get('binary')! } : {}),
    ...(/^\d+$/.test(pid) ? { pid: Number(pid) } : {}),
    init: kv.get('init') === 'systemd' ? 'systemd' : 'none',
    ...vrrpOf(kv.get('notify') ?? ''),
    ...(/^[1-9]/.test(kv.get('release') ?? '') ? { released: true } : {}),
  };
}

/** The notify log's line "AT TYPE NAME STATE PRIORITY" (vip.ts NOTIFY_SCRIPT_TEXT). */
function vrrpOf(line: string): Pick<KeepalivedFacts, 'vrrp'> {
  const [at, , , state] = line.trim().split(/\s+/);
  return at && state ? { vrrp: { state, at } } : {};
}

export const KEEPALIVED_PID_FILE = '/run/keepalived.pid';
/** Where the notify script logs VRRP state changes (written by it, read here). */
export const NOTIFY_LOG = '/var/log/runbook-vip-notify.log';

/**
 * The release flag, a keepalived track_file (weight 0, vip.ts renderKeepalivedConf): a non-zero
 * value puts the node into FAULT at once (keepalived watches the file with inotify), so a planned
 * switchover takes the VIP off the old primary right before its stop instead of waiting for `fall`
 * failed checks. 0 again once the switchover ended or was undone. `init_file 0` creates it without
 * overwriting: a value written by a switchover survives a restart of keepalived; setup-vip sets 0.
 */
export const RELEASE_FILE = '/etc/keepalived/runbook-vip-release';

export const keepalivedFact: Fact<KeepalivedFacts> = fact({
  name: 'keepalived',
  command: sh`pidfile=${KEEPALIVED_PID_FILE}; notify=${NOTIFY_LOG}; release=${RELEASE_FILE}; ${raw(
    `PATH="$PATH:/usr/sbin:/sbin"; echo binary=$(command -v keepalived); ` +
      `p=$(cat "$pidfile" 2>/dev/null); ` +
      `[ -n "$p" ] && [ "$(cat /proc/"$p"/comm 2>/dev/null)" = keepalived ] || p=$(pgrep -o -x keepalived); echo pid=$p; ` +
      `[ -d /run/systemd/system ] && echo init=systemd || echo init=none; ` +
      `echo notify=$(tail -n 1 "$notify" 2>/dev/null); echo release=$(cat "$release" 2>/dev/null)`,
  )}`,
  parse: (r) => parseKeepalived(r.stdout),
});

export type PgRole = 'primary' | 'standby' | 'down';

/** Whether the local PostgreSQL is writable, from the server itself (`pg_is_in_recovery()`). */
export const pgRoleFact: Fact<PgRole> = fact({
  name: 'pg.role',
  become: 'postgres',
  command: sh`cd / && echo ${'SELECT pg_is_in_recovery()'} | PGCONNECT_TIMEOUT=3 ${raw(PSQL_BIN)} -XAtq -d postgres`,
  parse: (r) => (r.exitCode !== 0 ? 'down' : r.stdout.trim() === 'f' ? 'primary' : r.stdout.trim() === 't' ? 'standby' : 'down'),
});

/** Whether PostgreSQL accepts connections on an address, seen from this host. */
export function pgAnswersFact(address: string, port = 5432): Fact<true | string> {
  return fact({
    name: `pg_isready ${address}`,
    command: sh`pg_isready -h ${address} -p ${port} -t ${PEER_CONNECT_TIMEOUT_SEC}`,
    parse: (r) => (r.exitCode === 0 ? true : (r.stdout.trim() || r.stderr.trim() || `pg_isready exit ${r.exitCode}`)),
  });
}
