/**
 * Probes that work whether or not the server runs: the layout (one script), the data directory
 * (signals, moved-aside copies, fence), pg_controldata, and pg_rewind --dry-run.
 */
import { fact } from '../../engine/define.js';
import type { Fact } from '../../engine/types.js';
import { raw, sh } from '../../shell/index.js';
import { asPostgres, cLocale } from './control.js';
import { type LayoutVars, type PgLayout, type RawLayout, resolveLayout } from './layout.js';
import { type PgTool, type ToolVersions, VERSIONED_TOOLS, parseToolVersion } from './version.js';

/** key=value lines (repeated keys kept in order). */
export function parseKeyValueLines(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out.push([line.slice(0, eq), line.slice(eq + 1)]);
  }
  return out;
}

// One round trip: OS family, init, Debian clusters, PGDG binaries and data dirs, Debian binaries.
const LAYOUT_SCRIPT = raw(
  [
    `( . /etc/os-release 2>/dev/null; echo "os_id=$ID"; echo "os_like=$ID_LIKE" )`,
    `[ -d /run/systemd/system ] && echo systemd=1 || echo systemd=0`,
    `command -v pg_lsclusters >/dev/null 2>&1 && pg_lsclusters -h 2>/dev/null | sed 's/^/cluster=/'`,
    `for f in /usr/pgsql-*/bin/postgres; do [ -x "$f" ] && echo "pgdg_bin=$f"; done`,
    `for f in /var/lib/pgsql/*/data/PG_VERSION; do [ -f "$f" ] && echo "pgdg_data=$f"; done`,
    `for f in /usr/lib/postgresql/*/bin/postgres; do [ -x "$f" ] && echo "debian_bin=$f"; done`,
    `true`,
  ].join('\n'),
);

export function parseRawLayout(stdout: string): RawLayout {
  const raw: RawLayout = { osId: '', osLike: [], systemd: false, debianClusters: [], pgdgBins: [], pgdgData: [], debianBins: [] };
  const versionIn = (path: string, re: RegExp): string | undefined => re.exec(path)?.[1];
  for (const [k, v] of parseKeyValueLines(stdout)) {
    if (k === 'os_id') raw.osId = v.trim().toLowerCase();
    else if (k === 'os_like') raw.osLike = v.trim().toLowerCase().split(/\s+/).filter(Boolean);
    else if (k === 'systemd') raw.systemd = v.trim() === '1';
    else if (k === 'cluster') {
      // Ver Cluster Port Status Owner Data-directory Log-file
      const f = v.trim().split(/\s+/);
      if (f.length >= 6) raw.debianClusters.push({ version: f[0]!, cluster: f[1]!, port: Number(f[2]), status: f[3]!, dataDir: f[5]! });
    } else if (k === 'pgdg_bin') {
      const ver = versionIn(v, /^\/usr\/pgsql-([0-9.]+)\//);
      if (ver) raw.pgdgBins.push(ver);
    } else if (k === 'pgdg_data') {
      const ver = versionIn(v, /^\/var\/lib\/pgsql\/([0-9.]+)\//);
      if (ver) raw.pgdgData.push(ver);
    } else if (k === 'debian_bin') {
      const ver = versionIn(v, /^\/usr\/lib\/postgresql\/([0-9.]+)\//);
      if (ver) raw.debianBins.push(ver);
    }
  }
  return raw;
}

/** The host's layout, inventory vars applied; a string when it cannot be decided (→ blocked). */
export function layoutFact(vars: LayoutVars): Fact<PgLayout | string> {
  return fact({
    name: 'pg.layout',
    become: true,
    command: LAYOUT_SCRIPT,
    parse(r) {
      if (r.exitCode !== 0) throw new Error(`layout probe failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
      return resolveLayout(parseRawLayout(r.stdout), vars);
    },
  });
}

// ---------------------------------------------------------------- the data directory

export interface DataDirState {
  exists: boolean;
  /** PG_VERSION content; null when the directory holds no cluster. */
  pgVersion: string | null;
  standbySignal: boolean;
  recoverySignal: boolean;
  /** `pg_ctl status` says a postmaster runs on it. */
  running: boolean;
  /** Copies moved aside by base-backup (<dataDir>.old.<timestamp>), oldest first. */
  oldCopies: string[];
  /**
   * <dataDir>.runbook-clone exists: a clone was started and not yet verified (its content: the
   * copy the old data dir was moved to, or '-'). The data dir then holds a partial clone, never data.
   */
  cloneMarker: string | null;
  /** Debian start.conf ("auto", "manual", "disabled"); null elsewhere. */
  startConf: string | null;
  /** systemctl is-enabled (systemd mode only). */
  enabled: string | null;
}

export function parseDataDir(stdout: string): DataDirState {
  const s: DataDirState = { exists: false, pgVersion: null, standbySignal: false, recoverySignal: false, running: false, oldCopies: [], cloneMarker: null, startConf: null, enabled: null };
  for (const [k, v] of parseKeyValueLines(stdout)) {
    if (k === 'exists') s.exists = v === '1';
    else if (k === 'pg_version') s.pgVersion = v.trim() || null;
    else if (k === 'standby_signal') s.standbySignal = v === '1';
    else if (k === 'recovery_signal') s.recoverySignal = v === '1';
    else if (k === 'running') s.running = v === '0';
    else if (k === 'old') s.oldCopies.push(v);
    else if (k === 'clone_marker') s.cloneMarker = v.trim() || '-';
    else if (k === 'start_conf') s.startConf = v.trim() || null;
    else if (k === 'enabled') s.enabled = v.trim() || null;
  }
  s.oldCopies.sort();
  return s;
}

export function dataDirFact(l: PgLayout): Fact<DataDirState> {
  const d = l.dataDir;
  return fact({
    name: 'pg.data_dir',
    become: true,
    command: sh`d=${d}
[ -d "$d" ] && echo exists=1 || echo exists=0
[ -f "$d/PG_VERSION" ] && echo "pg_version=$(cat "$d/PG_VERSION")"
[ -f "$d/standby.signal" ] && echo standby_signal=1
[ -f "$d/recovery.signal" ] && echo recovery_signal=1
if [ -f "$d/PG_VERSION" ]; then ${asPostgres(sh`${`${l.binDir}/pg_ctl`} -D ${d} status`)} >/dev/null 2>&1; echo "running=$?"; fi
for o in "$d".old.*; do [ -d "$o" ] && echo "old=$o"; done
[ -f "$d.runbook-clone" ] && echo "clone_marker=$(head -n 1 "$d.runbook-clone")"
${l.family === 'debian' ? sh`[ -f ${`${l.configDir}/start.conf`} ] && echo "start_conf=$(grep -v '^#' ${`${l.configDir}/start.conf`} | tr -d ' \\n')"` : raw(':')}
${l.ctl === 'systemd' ? sh`echo "enabled=$(systemctl is-enabled ${l.service} 2>/dev/null)"` : raw(':')}
true`,
    parse(r) {
      if (r.exitCode !== 0) throw new Error(`data dir probe failed: ${r.stderr.trim()}`);
      return parseDataDir(r.stdout);
    },
  });
}

// ---------------------------------------------------------------- pg_controldata

export interface ControlData {
  /** "in production", "shut down", "shut down in recovery", "in archive recovery", "in crash recovery"… */
  state: string;
  checkpointLsn: string | null;
  redoLsn: string | null;
  timeline: number;
  walLogHints: boolean;
  checksums: boolean;
  minRecoveryEnd: string | null;
  /** "Database system identifier": equal on a primary and its clones. */
  systemId: string | null;
}

export function parseControlData(stdout: string): ControlData {
  const m = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) m.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  const lsn = (k: string): string | null => {
    const v = m.get(k);
    return v && v !== '0/0' ? v : null;
  };
  return {
    state: m.get('Database cluster state') ?? '',
    checkpointLsn: lsn('Latest checkpoint location'),
    redoLsn: lsn("Latest checkpoint's REDO location"),
    timeline: Number(m.get("Latest checkpoint's TimeLineID") ?? NaN),
    walLogHints: m.get('wal_log_hints setting') === 'on',
    checksums: (m.get('Data page checksum version') ?? '0') !== '0',
    minRecoveryEnd: lsn('Minimum recovery ending location'),
    systemId: m.get('Database system identifier') ?? null,
  };
}

/** null when the data dir holds no cluster. */
export function controlDataFact(l: PgLayout): Fact<ControlData | null> {
  return fact({
    name: 'pg.controldata',
    become: true,
    command: sh`[ -f ${`${l.dataDir}/global/pg_control`} ] || exit 0; ${asPostgres(cLocale(sh`${`${l.binDir}/pg_controldata`} -D ${l.dataDir}`))}`,
    parse(r) {
      if (r.exitCode !== 0) throw new Error(`pg_controldata failed: ${r.stderr.trim()}`);
      return r.stdout.trim() ? parseControlData(r.stdout) : null;
    },
  });
}

/** A cleanly stopped cluster: pg_rewind and a safe promotion-free restart need one. */
export function isCleanShutdown(c: ControlData): boolean {
  return c.state === 'shut down' || c.state === 'shut down in recovery';
}

// ---------------------------------------------------------------- client tool versions

/** `--version` of the tools whose version must fit the server's (version.ts says how), in the layout's bin dir. */
export function toolVersionsFact(l: PgLayout): Fact<ToolVersions> {
  return fact({
    name: 'pg.tool_versions',
    become: true,
    command: sh`b=${l.binDir}; for t in ${VERSIONED_TOOLS}; do printf '%s=%s\\n' "$t" "$("$b/$t" --version 2>/dev/null | head -n 1)"; done; true`,
    parse(r) {
      const out: ToolVersions = {};
      for (const [k, v] of parseKeyValueLines(r.stdout)) if ((VERSIONED_TOOLS as string[]).includes(k)) out[k as PgTool] = parseToolVersion(v);
      return out;
    },
  });
}
