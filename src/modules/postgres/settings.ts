/**
 * The managed settings are minimums. A conf.d file is read after postgresql.conf, so writing
 * `wal_level = replica` there would *lower* a DBA's `logical` (logical slots then stop the server
 * at its next start). So: read what every node has from every other source (pg_file_settings,
 * and pg_settings for the command line), and never write less than the highest of them; the file
 * is the same on every node (a standby needs max_wal_senders etc. at least as high as its
 * primary's). Pure: current values in, the settings to write and what was kept out.
 */
import { fact } from '../../engine/define.js';
import type { Fact } from '../../engine/types.js';
import type { ShellLine } from '../../shell/config-text.js';
import { sql } from '../../shell/index.js';
import { type PgConn, isConnectFailure, parseRows, psqlCommand } from './facts.js';

export type SettingValue = string | ShellLine;

type Order = 'wal_level' | 'integer' | 'memory-mb' | 'memory-mb-unlimited';

/** Settings that only ever go up, and how to compare their values. */
export const RAISE_ONLY: Record<string, Order> = {
  wal_level: 'wal_level',
  max_wal_senders: 'integer',
  max_replication_slots: 'integer',
  wal_keep_size: 'memory-mb',
  max_slot_wal_keep_size: 'memory-mb-unlimited',
};

const WAL_LEVELS = ['minimal', 'replica', 'logical'];
const MEMORY_UNITS: Record<string, number> = { B: 1 / (1024 * 1024), kB: 1 / 1024, MB: 1, GB: 1024, TB: 1024 * 1024 };

/** A value as a number on one scale (higher = more), or undefined when it cannot be read. */
export function settingRank(name: string, value: string, baseUnit = 'MB'): number | undefined {
  const order = RAISE_ONLY[name];
  const v = value.trim().replace(/^'(.*)'$/, '$1');
  if (!order) return undefined;
  if (order === 'wal_level') {
    // 'archive' and 'hot_standby' are the pre-9.6 names of replica.
    const i = WAL_LEVELS.indexOf(v === 'archive' || v === 'hot_standby' ? 'replica' : v);
    return i < 0 ? undefined : i;
  }
  if (order === 'integer') return /^\d+$/.test(v) ? Number(v) : undefined;
  const m = /^(-?\d+)\s*(B|kB|MB|GB|TB)?$/.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]);
  if (n < 0) return order === 'memory-mb-unlimited' ? Number.POSITIVE_INFINITY : undefined;
  const unit = m[2] ?? baseUnit;
  const scale = MEMORY_UNITS[unit] ?? (/^(\d+)MB$/.test(unit) ? Number(unit.slice(0, -2)) : undefined);
  return scale === undefined ? undefined : n * scale;
}

/** One place a node has a value for a setting: a line in a file, or the running value from elsewhere. */
export interface SettingSource {
  name: string;
  /** As written (file) or setting+unit (running). */
  value: string;
  /** "pg1: /etc/postgresql/15/main/postgresql.conf" or "pg1: command line". */
  where: string;
}

/** What one node has, as read by currentSettingsFact. */
export interface CurrentSettings {
  /** pg_file_settings rows (every file, ours included), in file order. */
  files: Array<{ seqno: number; name: string; setting: string; sourcefile: string; error: string | null }>;
  /** pg_settings rows of the names asked for. */
  running: Array<{ name: string; setting: string; unit: string | null; source: string; sourcefile: string | null; pendingRestart: boolean }>;
}

export function currentSettingsFact(conn: PgConn, names: string[]): Fact<CurrentSettings | null> {
  const query = sql`SELECT 'f', seqno::text, name, setting, sourcefile, error FROM pg_file_settings WHERE name = ANY (ARRAY[${names}]::text[]) OR name IN (SELECT name FROM pg_settings WHERE pending_restart)
UNION ALL SELECT 'r', name, setting, unit, source, coalesce(sourcefile, '') || ':' || pending_restart::text FROM pg_settings WHERE name = ANY (ARRAY[${names}]::text[]) OR pending_restart`;
  return fact({
    name: 'pg.current_settings',
    become: true,
    command: psqlCommand(conn, query),
    parse(r) {
      if (r.exitCode !== 0) {
        if (isConnectFailure(r) || r.exitCode === 2) return null;
        throw new Error(`reading pg_file_settings failed: ${r.stderr.trim()}`);
      }
      return parseCurrentSettings(parseRows(r.stdout));
    },
  });
}

/**
 * The value the files give a setting (the last line for it wins). For placeholders such as
 * runbook.synchronous this is the only place they show: pg_settings does not list them.
 */
export function fileValue(cur: CurrentSettings | null | undefined, name: string): string | null {
  const last = cur?.files.filter((f) => f.name === name).sort((a, b) => b.seqno - a.seqno)[0];
  return last ? last.setting : null;
}

export function parseCurrentSettings(rows: Array<Array<string | null>>): CurrentSettings {
  const out: CurrentSettings = { files: [], running: [] };
  for (const r of rows) {
    if (r[0] === 'f') out.files.push({ seqno: Number(r[1]), name: r[2] ?? '', setting: r[3] ?? '', sourcefile: r[4] ?? '', error: r[5] ?? null });
    else if (r[0] === 'r') {
      const tail = r[5] ?? null;
      const pending = tail === null ? false : tail.endsWith(':true');
      const file = tail === null ? null : tail.replace(/:(true|false)$/, '') || null;
      out.running.push({ name: r[1] ?? '', setting: r[2] ?? '', unit: r[3] ?? null, source: r[4] ?? '', sourcefile: file, pendingRestart: pending });
    }
  }
  return out;
}

/**
 * Every value a node has for the raise-only settings outside our managed file. A default is not
 * "what the server has" (nobody chose it): the minimum applies there.
 */
export function sourcesOutsideManaged(node: string, managedConf: string, cur: CurrentSettings): SettingSource[] {
  const out: SettingSource[] = [];
  for (const f of cur.files) {
    if (!(f.name in RAISE_ONLY) || f.sourcefile === managedConf) continue;
    if (f.error && f.error !== 'setting could not be applied') continue;
    out.push({ name: f.name, value: f.setting, where: `${node}: ${f.sourcefile}` });
  }
  for (const s of cur.running) {
    if (!(s.name in RAISE_ONLY) || s.source === 'default' || s.source === 'configuration file') continue;
    out.push({ name: s.name, value: `${s.setting}${s.unit && /^[a-zA-Z]+$/.test(s.unit) ? s.unit : ''}`, where: `${node}: ${s.source}` });
  }
  return out;
}

export interface KeptSetting {
  name: string;
  /** What the runbook would have written. */
  minimum: string;
  /** What it writes instead: the highest value found. */
  kept: string;
  where: string;
}

/** The settings to write: each raise-only one at least as high as the highest source found. */
export function raiseOnly(wanted: Record<string, SettingValue>, sources: SettingSource[]): { settings: Record<string, SettingValue>; kept: KeptSetting[] } {
  const settings = { ...wanted };
  const kept: KeptSetting[] = [];
  for (const name of Object.keys(RAISE_ONLY)) {
    const want = wanted[name];
    if (typeof want !== 'string') continue;
    const wantRank = settingRank(name, want);
    let best: SettingSource | undefined;
    let bestRank = wantRank ?? Number.NEGATIVE_INFINITY;
    for (const s of sources.filter((x) => x.name === name)) {
      const r = settingRank(name, s.value);
      if (r !== undefined && r > bestRank) [best, bestRank] = [s, r];
    }
    if (best) {
      settings[name] = best.value.replace(/^'(.*)'$/, '$1');
      kept.push({ name, minimum: want, kept: settings[name] as string, where: best.where });
    }
  }
  return { settings, kept };
}

export function describeKept(kept: KeptSetting[]): string {
  return kept.map((k) => `kept ${k.name}=${k.kept} (set in ${k.where}; higher than ${k.minimum})`).join('; ');
}

/** Settings that hand their value to /bin/sh on the server: only a ShellLine may fill them. */
export const SHELL_SETTINGS = new Set(['archive_command', 'restore_command', 'archive_cleanup_command', 'recovery_end_command']);

// ---------------------------------------------------------------- the restart they may need

/** Settings that only a restart applies (context postmaster) among the ones we manage. */
export const RESTART_SETTINGS = new Set([
  'wal_level', 'max_wal_senders', 'max_replication_slots', 'hot_standby', 'wal_log_hints', 'archive_mode',
  'listen_addresses', 'port', 'shared_buffers', 'max_connections', 'max_worker_processes', 'shared_preload_libraries',
]);

/**
 * Pending restarts split by who staged them: ours when the value waiting is the one in our
 * managed file (the last line for that name is ours), someone else's otherwise.
 */
export function pendingRestarts(managedConf: string, cur: CurrentSettings): { ours: string[]; others: Array<{ name: string; where: string }> } {
  const ours: string[] = [];
  const others: Array<{ name: string; where: string }> = [];
  for (const s of cur.running.filter((x) => x.pendingRestart).sort((a, b) => a.name.localeCompare(b.name))) {
    const last = cur.files.filter((f) => f.name === s.name).sort((a, b) => b.seqno - a.seqno)[0];
    if (last?.sourcefile === managedConf) ours.push(s.name);
    else others.push({ name: s.name, where: last?.sourcefile ?? 'not in any file (reset)' });
  }
  return { ours, others };
}

export interface RestartNode {
  name: string;
  /** null: not running. */
  inRecovery: boolean | null;
  ours: string[];
  others: Array<{ name: string; where: string }>;
}

/**
 * Which nodes to restart, in order: only those with a restart we owe, one at a time, standbys
 * first and the primary last (its standbys then already accept the new values, e.g. a raised
 * max_wal_senders). A node that is down is not restarted (it reads the file when it starts).
 */
export function restartOrder(nodes: RestartNode[]): RestartNode[] {
  const todo = nodes.filter((n) => n.inRecovery !== null && n.ours.length > 0);
  return [...todo.filter((n) => n.inRecovery), ...todo.filter((n) => !n.inRecovery)];
}

export function describePendingOthers(nodes: RestartNode[]): string {
  return nodes
    .filter((n) => n.others.length)
    .map((n) => `${n.name}: ${n.others.map((o) => `${o.name} (from ${o.where})`).join(', ')} wait${n.others.length > 1 ? '' : 's'} for a restart staged outside runbook: reported, not acted on`)
    .join('; ');
}
