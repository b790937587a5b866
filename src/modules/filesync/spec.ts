/**
 * File sync (seeds 001, 003, 004): directories kept in step from the current primary's host to the
 * other nodes by rsync over SSH. Each target *pulls* from the source with a key of its own that the
 * source's authorized_keys restricts to `rrsync -ro PATH` from the target's address, so the
 * primary exposes nothing but read access to the synced paths.
 *
 * This file: the names of everything a sync puts on a host, and the pure rules (validation, which
 * node is the source). Everything a sync puts on a host lives under a name derived from the
 * validated sync name, so no cron line, unit or authorized_keys entry ever carries free text.
 */
import { createHash } from 'node:crypto';
import type { PgRole } from '../vip/facts.js';

export const ETC_DIR = '/etc/runbook/filesync';
export const STATE_ROOT = '/var/lib/runbook/filesync';
export const SCRIPT_DIR = '/usr/local/lib/runbook';
export const CRON_DIR = '/etc/cron.d';
export const UNIT_DIR = '/etc/systemd/system';

export interface SyncDef {
  name: string;
  paths: string[];
  exclude: string[];
  delete: boolean;
  /** Seconds between runs. */
  interval: number;
}

/** What a node's conf file says now: the definition plus the source it pulls from. */
export interface SyncConf extends SyncDef {
  source: string;
  sourceAddress: string;
}

export const syncFiles = (name: string) => ({
  conf: `${ETC_DIR}/${name}.conf`,
  paths: `${ETC_DIR}/${name}.paths`,
  exclude: `${ETC_DIR}/${name}.exclude`,
  peers: `${ETC_DIR}/${name}.peers`,
  knownHosts: `${ETC_DIR}/${name}.known_hosts`,
  script: `${SCRIPT_DIR}/filesync-${name}`,
  cron: `${CRON_DIR}/runbook-filesync-${name}`,
  unit: `runbook-filesync-${name}`,
  lock: `/run/runbook-filesync-${name}.lock`,
  state: `${STATE_ROOT}/${name}`,
  status: `${STATE_ROOT}/${name}/status`,
});

/** A path's key id: stable whatever the order of the paths (the script computes the same). */
export function pathId(path: string): string {
  return createHash('sha256').update(path, 'utf8').digest('hex').slice(0, 12);
}
export const keyFile = (name: string, path: string) => `${ETC_DIR}/${name}.key.${pathId(path)}`;

const NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;
// Paths and addresses go into authorized_keys options and a cron-run script: refuse what no
// format carries plainly rather than quote it three times.
const PATH = /^\/[A-Za-z0-9._@+-][A-Za-z0-9._@+/-]*$/;
const ADDRESS = /^[A-Za-z0-9.:-]+$/;

/** Every problem at once (exit 2 before any host is touched). */
export function validateSync(d: SyncDef, param = (k: string) => k): string[] {
  const problems: string[] = [];
  if (!NAME.test(d.name)) problems.push(`${param('name')} ${JSON.stringify(d.name)}: lower-case letters, digits, - and _, at most 32`);
  if (d.paths.length === 0) problems.push(`${param('paths')}: give at least one absolute directory (-e paths=/srv/uploads,/srv/databases)`);
  for (const p of d.paths) {
    if (!PATH.test(p)) problems.push(`${param('paths')}: ${JSON.stringify(p)} must be an absolute path of letters, digits and . _ @ + - /`);
    else if (p === '/' || p.split('/').includes('..')) problems.push(`${param('paths')}: ${JSON.stringify(p)} is not a directory one can sync`);
  }
  const norm = d.paths.map((p) => p.replace(/\/+$/, ''));
  for (const p of norm) for (const q of norm) if (p !== q && q.startsWith(`${p}/`)) problems.push(`${param('paths')}: ${q} is inside ${p}`);
  if (new Set(norm).size !== norm.length) problems.push(`${param('paths')}: a path is listed twice`);
  for (const e of d.exclude) {
    if (e === '' || /[\n\r]/.test(e)) problems.push(`${param('exclude')}: an empty pattern or one with a newline`);
    else if (/^[#;]/.test(e)) problems.push(`${param('exclude')}: ${JSON.stringify(e)} starts with # or ; (rsync reads it as a comment)`);
  }
  problems.push(...intervalProblems(d.interval, param('interval')));
  return problems;
}

export function validAddress(a: string): boolean {
  return ADDRESS.test(a);
}

/**
 * cron runs at most once a minute: under 60 s the interval must divide 60 (one line per offset,
 * `sleep N;` first), from 60 s on it must be whole minutes that divide 60 or whole hours.
 */
export function intervalProblems(interval: number, name = 'interval'): string[] {
  if (!Number.isInteger(interval) || interval < 5) return [`${name} ${interval}: whole seconds, at least 5`];
  if (interval < 60) return 60 % interval === 0 ? [] : [`${name} ${interval}: under a minute it must divide 60 (5, 10, 15, 20, 30)`];
  if (interval % 60 !== 0) return [`${name} ${interval}: from a minute on, whole minutes`];
  const min = interval / 60;
  if (min < 60 && 60 % min === 0) return [];
  if (min % 60 === 0 && min / 60 <= 24 && 24 % (min / 60) === 0) return [];
  return [`${name} ${interval}: minutes that divide 60 or hours that divide 24`];
}

export type SourceChoice = { source: string; why: string } | { error: string };

/**
 * The source is the node whose PostgreSQL is writable *now* (read from the servers), or the one
 * named by sync_source — which must then not contradict the servers (a writable other node).
 */
export function chooseSource(roles: Record<string, PgRole>, explicit: string | undefined): SourceChoice {
  const writable = Object.entries(roles).filter(([, r]) => r === 'primary').map(([n]) => n);
  const seen = Object.entries(roles).map(([n, r]) => `${n} ${r}`).join(', ');
  if (explicit !== undefined && explicit !== '') {
    if (!(explicit in roles)) return { error: `sync_source ${explicit} is not one of the nodes (${Object.keys(roles).join(', ')})` };
    const other = writable.filter((n) => n !== explicit);
    if (other.length) return { error: `sync_source ${explicit}, but ${other.join(', ')} is the writable PostgreSQL node: the sync must come from the primary (${seen})` };
    return { source: explicit, why: `sync_source=${explicit} (${seen})` };
  }
  if (writable.length === 1) return { source: writable[0]!, why: `${writable[0]} is the writable PostgreSQL node (${seen})` };
  if (writable.length === 0) return { error: `no node is a writable PostgreSQL primary (${seen}): name the source with -e sync_source=HOST` };
  return { error: `${writable.join(' and ')} are all writable (split brain): refusing to pick a sync direction` };
}

/** One line of the peers file: `host address hostkey-type hostkey keytype:key per path…` is too loose; JSON it is. */
export interface PeerEntry {
  host: string;
  address: string;
  /** The host's ed25519 host key line ("ssh-ed25519 AAAA…"). */
  hostKey: string;
  /** pathId → public key line of this node's key for that path. */
  keys: Record<string, string>;
}

export function parseConf(text: string, paths: string, exclude: string): Omit<SyncConf, 'name'> {
  const kv = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)=(.*)$/.exec(line);
    if (m) kv.set(m[1]!, m[2]!);
  }
  return {
    source: kv.get('source') ?? '',
    sourceAddress: kv.get('source_address') ?? '',
    delete: kv.get('delete') === '1',
    interval: Number(kv.get('interval') ?? 60),
    paths: paths.split('\n').filter(Boolean),
    exclude: exclude.split('\n').filter(Boolean),
  };
}

/** The sync's status line, written by the script after each run: `ok|failed EPOCH SOURCE kept=N [reason]`. */
export interface SyncStatus {
  ok: boolean;
  at: number;
  source: string;
  kept: number;
  detail: string;
}

export function parseStatus(text: string | null): SyncStatus | null {
  if (!text) return null;
  const m = /^(ok|failed) (\d+) (\S+)(?: kept=(\d+))?(?: (.*))?$/.exec(text.trim().split('\n')[0] ?? '');
  if (!m) return null;
  return { ok: m[1] === 'ok', at: Number(m[2]), source: m[3]!, kept: Number(m[4] ?? 0), detail: m[5] ?? '' };
}
