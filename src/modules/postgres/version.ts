/**
 * What differs between PostgreSQL 13, 14, 15, 16 and 17, decided from numbers only: the server's
 * `server_version_num` (a fact, e.g. 130023) and a tool's `--version`. Every SQL text and tool
 * option that is not the same on all supported majors is chosen here, so the runbooks never
 * compare version strings. Pure: unit-tested from fixture numbers (test/unit/pg/version.test.ts).
 */
import { type SqlFragment, sql } from '../../shell/index.js';

/** The majors runbook supports and tests (older ones lack wal_keep_size, max_slot_wal_keep_size…). */
export const SUPPORTED_MAJORS = [13, 14, 15, 16, 17] as const;
export const OLDEST_SUPPORTED = 130000;

/** 130023 → 13; 90624 → 9 (9.6 counts as 9 here: only the "too old" message needs it). */
export function majorOf(versionNum: number): number {
  return Math.floor(versionNum / 10000);
}

/** server_version_num as psql prints it ("170010"); NaN when it is not a number. */
export function parseVersionNum(text: string | null | undefined): number {
  return text && /^\d{5,6}$/.test(text.trim()) ? Number(text.trim()) : NaN;
}

/** Why a server cannot be handled, or undefined when its version is supported. */
export function unsupportedReason(versionNum: number): string | undefined {
  if (!Number.isFinite(versionNum)) return 'server_version_num unknown';
  if (versionNum < OLDEST_SUPPORTED) return `PostgreSQL ${majorOf(versionNum)} is not supported: runbook needs 13 or newer (wal_keep_size, max_slot_wal_keep_size, pg_rewind --no-ensure-shutdown)`;
  return undefined;
}

/** A layout's major as written in paths ("13", "9.6") → the lowest server_version_num of it; NaN when unreadable. */
export function versionNumOfMajor(major: string): number {
  const m = /^(\d+)(?:\.(\d+))?$/.exec(major.trim());
  if (!m) return NaN;
  const a = Number(m[1]);
  return a >= 10 ? a * 10000 : a * 10000 + Number(m[2] ?? 0) * 100;
}

/** The SQL and settings that depend on the server version. */
export interface PgFeatures {
  versionNum: number;
  major: number;
  /**
   * Replay pause state as 'not paused' | 'pause requested' | 'paused'. 14+: the function; 13 only
   * knows paused or not (pg_get_wal_replay_pause_state() does not exist: every query naming it fails).
   */
  replayPauseState: SqlFragment;
  /** pg_rewind --config-file (15+): without it a Debian target's single-user crash recovery fails. */
  rewindConfigFile: boolean;
  /** archive_library (15+; Debian's postgresql-15 ships basic_archive); archive_command before. */
  archiveLibrary: boolean;
  /** promote_trigger_file exists up to 15 and is removed in 16 (setting it stops a 16 server). */
  promoteTriggerFile: boolean;
  /** The WAL-retention setting: wal_keep_size from 13 (wal_keep_segments before: it stops a 13 server). */
  walKeepSetting: 'wal_keep_size';
  /** Checkpoint counters: pg_stat_checkpointer from 17, pg_stat_bgwriter before. */
  checkpointsSql: SqlFragment;
  /** Start / stop of a non-exclusive low-level backup: pg_backup_start/stop from 15, pg_start/stop_backup before. */
  backupStart: (label: string, fast: boolean) => SqlFragment;
  backupStop: (waitForArchive: boolean) => SqlFragment;
  /** password_encryption is scram-sha-256 by default from 14; 13 stores md5 unless told otherwise. */
  scramByDefault: boolean;
}

export function pgFeatures(versionNum: number): PgFeatures {
  const major = majorOf(versionNum);
  return {
    versionNum,
    major,
    replayPauseState:
      versionNum >= 140000 ? sql`pg_get_wal_replay_pause_state()` : sql`CASE WHEN pg_is_wal_replay_paused() THEN 'paused' ELSE 'not paused' END`,
    rewindConfigFile: versionNum >= 150000,
    archiveLibrary: versionNum >= 150000,
    promoteTriggerFile: versionNum < 160000,
    walKeepSetting: 'wal_keep_size',
    checkpointsSql:
      versionNum >= 170000
        ? sql`SELECT num_timed + num_requested FROM pg_stat_checkpointer`
        : sql`SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter`,
    backupStart: (label, fast) => (versionNum >= 150000 ? sql`SELECT pg_backup_start(${label}, ${fast})` : sql`SELECT pg_start_backup(${label}, ${fast}, false)`),
    backupStop: (wait) =>
      versionNum >= 150000 ? sql`SELECT lsn, labelfile, spcmapfile FROM pg_backup_stop(${wait})` : sql`SELECT lsn, labelfile, spcmapfile FROM pg_stop_backup(false, ${wait})`,
    scramByDefault: versionNum >= 140000,
  };
}

/**
 * One psql script that runs the variant meant for the server it is connected to, chosen by
 * server_version_num in the same round trip (psql's \if): a fact that must work before the
 * version is known (the status every step starts from) cannot be built for one version.
 * `build` gets the features of each range's lowest version; ranges come from `boundaries`.
 */
export function byServerVersion(boundaries: number[], build: (f: PgFeatures) => SqlFragment): SqlFragment {
  const cuts = [...new Set(boundaries)].sort((a, b) => b - a);
  if (!cuts.length) return build(pgFeatures(OLDEST_SUPPORTED));
  const flag = (cut: number) => sql.raw(`rb_v${cut}`);
  const tests = cuts.map((cut) => sql`current_setting('server_version_num')::int >= ${cut} AS ${flag(cut)}`);
  let script = sql`SELECT ${tests} \\gset\n`;
  cuts.forEach((cut, i) => {
    script = sql`${script}${sql.raw(i === 0 ? '\\if' : '\\elif')} :${flag(cut)}\n${build(pgFeatures(cut))}\n`;
  });
  return sql`${script}\\else\n${build(pgFeatures(OLDEST_SUPPORTED))}\n\\endif\n`;
}

// ---------------------------------------------------------------- client tools

export type PgTool = 'pg_basebackup' | 'pg_rewind' | 'pg_verifybackup' | 'pg_controldata';
export const VERSIONED_TOOLS: PgTool[] = ['pg_basebackup', 'pg_rewind', 'pg_verifybackup', 'pg_controldata'];

/** "pg_rewind (PostgreSQL) 15.10 (Debian 15.10-0+deb12u1)" → 150010; "… 9.6.24" → 90624; null when absent. */
export function parseToolVersion(text: string | null | undefined): number | null {
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(text ?? '');
  if (!m) return null;
  const [a, b, c] = [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)];
  return a >= 10 ? a * 10000 + b : a * 10000 + b * 100 + c;
}

/** Tool versions found in a bin dir (null: not there, or not a PostgreSQL tool). */
export type ToolVersions = Partial<Record<PgTool, number | null>>;

/**
 * Can this tool, of this version, work on a server (or data directory) of `serverNum`? undefined
 * when it can; else why not, in words for the plan. The rules are the tools' own checks:
 * - pg_rewind reads and writes the target's files: only the server's own major ("clusters are not
 *   compatible with this version of pg_rewind", seen: 15's on 13 and on 17).
 * - pg_basebackup streams from servers up to its own major ("incompatible server version 17.10",
 *   seen: 15's against 17; 15's against 13 works).
 * - pg_verifybackup reads the manifest pg_basebackup wrote: at least the pg_basebackup's major.
 * - pg_controldata: the fields runbook reads are stable across 13-17 (15's reads 13's and 17's
 *   pg_control without a CRC warning, seen); only a tool older than 13 is refused.
 */
export function toolProblem(tool: PgTool, toolNum: number | null | undefined, serverNum: number, where: string): string | undefined {
  const server = majorOf(serverNum);
  if (toolNum === null || toolNum === undefined) return `no ${tool} in ${where}`;
  const have = majorOf(toolNum);
  switch (tool) {
    case 'pg_rewind':
      return have === server ? undefined : `${tool} ${have} (${where}) cannot rewind a PostgreSQL ${server} data directory: pg_rewind must be the server's major version`;
    case 'pg_basebackup':
    case 'pg_verifybackup':
      return have >= server ? undefined : `${tool} ${have} (${where}) cannot clone from PostgreSQL ${server}: it refuses servers newer than itself`;
    case 'pg_controldata':
      return have >= 13 ? undefined : `${tool} ${have} (${where}) is older than 13`;
  }
}

// ---------------------------------------------------------------- libpq connection options

/**
 * libpq keywords newer than 13, with the version that first knows them. A standby's walreceiver
 * parses primary_conninfo with its *server's* libpq: `pg_basebackup -R` of a newer client writes
 * e.g. sslsni=1, and a 13 standby then never connects ("invalid connection option "sslsni"", seen).
 */
export const LIBPQ_KEYWORDS_SINCE: Readonly<Record<string, number>> = {
  sslsni: 140000,
  sslcertmode: 160000,
  require_auth: 160000,
  load_balance_hosts: 160000,
  gssdelegation: 160000,
  sslnegotiation: 170000,
};

/** Keys of a conninfo that a server of `versionNum` does not know. */
export function unknownConninfoKeys(keys: string[], versionNum: number): string[] {
  return keys.filter((k) => (LIBPQ_KEYWORDS_SINCE[k] ?? 0) > versionNum);
}
