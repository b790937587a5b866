/**
 * Where a host keeps PostgreSQL and how it is started: detected from the host in one probe
 * (layout-facts.ts) and resolved here, purely, with inventory overrides winning.
 * Debian: pg_ctlcluster, config in /etc/postgresql/V/C. RHEL (PGDG): config inside the data dir,
 * systemd unit postgresql-V, or pg_ctl when PID 1 is not systemd (containers, the lab).
 */

export type PgFamily = 'debian' | 'rhel';
export type PgCtlMode = 'pg_ctlcluster' | 'systemd' | 'pg_ctl';

/** What the probe saw; every field may be missing on a host without PostgreSQL. */
export interface RawLayout {
  /** ID and ID_LIKE of /etc/os-release, lower case. */
  osId: string;
  osLike: string[];
  /** /run/systemd/system exists (PID 1 is systemd). */
  systemd: boolean;
  /** `pg_lsclusters -h` rows. */
  debianClusters: Array<{ version: string; cluster: string; port: number; status: string; dataDir: string }>;
  /** Versions V with /usr/pgsql-V/bin/postgres. */
  pgdgBins: string[];
  /** Versions V with /var/lib/pgsql/V/data/PG_VERSION. */
  pgdgData: string[];
  /** Versions V with /usr/lib/postgresql/V/bin/postgres. */
  debianBins: string[];
}

/** Inventory overrides (host or group vars). */
export interface LayoutVars {
  pg_version?: unknown;
  pg_cluster?: unknown;
  pg_data_dir?: unknown;
  pg_config_dir?: unknown;
  pg_bin_dir?: unknown;
  pg_ctl_mode?: unknown;
  pg_port?: unknown;
  pg_service?: unknown;
  pg_layout?: unknown;
}

export interface PgLayout {
  family: PgFamily;
  version: string;
  /** Debian cluster name ("main"); empty on RHEL. */
  cluster: string;
  dataDir: string;
  configDir: string;
  binDir: string;
  port: number;
  ctl: PgCtlMode;
  /** systemd unit (postgresql@15-main on Debian, postgresql-15 on RHEL). */
  service: string;
  /** postgresql.conf / pg_hba.conf paths. */
  confFile: string;
  hbaFile: string;
  /** The one file runbook writes its settings into. */
  managedConf: string;
  /**
   * Debian: an `include_dir = 'conf.d'` covers the managed file already.
   * RHEL: postgresql.conf needs this line, which we add once.
   */
  includeLine: string;
  /** Log for `pg_ctl start -l` (pg_ctl mode only). */
  startLog: string;
  /** Which fields came from the inventory rather than the host. */
  overridden: string[];
}

const LAYOUT_VARS = ['pg_version', 'pg_cluster', 'pg_data_dir', 'pg_config_dir', 'pg_bin_dir', 'pg_ctl_mode', 'pg_service', 'pg_layout'];

export const MANAGED_CONF_NAME = 'runbook-replication.conf';

function str(v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  return String(v);
}

function byVersion(a: string, b: string): number {
  return Number(a) - Number(b);
}

function newest(versions: string[]): string | undefined {
  return [...versions].sort(byVersion).pop();
}

export function isRhelLike(raw: RawLayout): boolean {
  return ['rhel', 'centos', 'fedora', 'rocky', 'almalinux', 'ol', 'amzn'].some((f) => raw.osId === f || raw.osLike.includes(f));
}

/**
 * Decide the layout. Evidence of an installed cluster beats the OS family (a Debian host can
 * carry a PGDG-style layout, as the lab's RHEL variant does); inventory vars beat both.
 * Returns a string when it cannot decide: the message for a blocked plan.
 */
export function resolveLayout(raw: RawLayout, vars: LayoutVars = {}): PgLayout | string {
  const overridden = Object.entries(vars)
    .filter(([k, v]) => LAYOUT_VARS.includes(k) && str(v) !== undefined)
    .map(([k]) => k);
  const wantVersion = str(vars.pg_version);
  const wantCluster = str(vars.pg_cluster);

  const debianMatch = raw.debianClusters.filter(
    (c) => (!wantVersion || c.version === wantVersion) && (!wantCluster || c.cluster === wantCluster),
  );
  const rhelVersions = raw.pgdgData.filter((v) => !wantVersion || v === wantVersion);

  let family: PgFamily;
  const forced = str(vars.pg_layout);
  if (forced === 'debian' || forced === 'rhel') family = forced;
  else if (forced !== undefined) return `pg_layout must be debian or rhel, not ${JSON.stringify(forced)}`;
  else if (debianMatch.length > 0) family = 'debian';
  else if (rhelVersions.length > 0) family = 'rhel';
  else family = isRhelLike(raw) ? 'rhel' : 'debian';

  let version = wantVersion;
  let cluster = '';
  let detectedData: string | undefined;
  let port = Number(str(vars.pg_port) ?? NaN);
  if (family === 'debian') {
    if (debianMatch.length > 1 && !wantVersion && !wantCluster)
      return `several clusters on this host (${debianMatch.map((c) => `${c.version}/${c.cluster}`).join(', ')}): set pg_version and pg_cluster in the inventory`;
    const c = debianMatch[0];
    version ??= c?.version ?? newest(raw.debianBins);
    cluster = wantCluster ?? c?.cluster ?? 'main';
    detectedData = c?.dataDir;
    if (!Number.isFinite(port)) port = c?.port ?? 5432;
  } else {
    version ??= newest(rhelVersions) ?? newest(raw.pgdgBins);
    if (!Number.isFinite(port)) port = 5432;
  }
  if (!version) return 'no PostgreSQL found (no pg_lsclusters cluster, no /var/lib/pgsql/V/data, no /usr/pgsql-V): set pg_version in the inventory';

  const dataDir =
    str(vars.pg_data_dir) ?? detectedData ?? (family === 'debian' ? `/var/lib/postgresql/${version}/${cluster}` : `/var/lib/pgsql/${version}/data`);
  const configDir = str(vars.pg_config_dir) ?? (family === 'debian' ? `/etc/postgresql/${version}/${cluster}` : dataDir);
  const binDir =
    str(vars.pg_bin_dir) ??
    (family === 'rhel' && (raw.pgdgBins.includes(version) || !raw.debianBins.includes(version))
      ? `/usr/pgsql-${version}/bin`
      : `/usr/lib/postgresql/${version}/bin`);

  const wantCtl = str(vars.pg_ctl_mode);
  let ctl: PgCtlMode;
  if (wantCtl === 'pg_ctlcluster' || wantCtl === 'systemd' || wantCtl === 'pg_ctl') ctl = wantCtl;
  else if (wantCtl !== undefined) return `pg_ctl_mode must be pg_ctlcluster, systemd or pg_ctl, not ${JSON.stringify(wantCtl)}`;
  // No systemd as PID 1 (containers, the lab): pg_ctl, run as postgres, is all there is on RHEL.
  else ctl = family === 'debian' ? 'pg_ctlcluster' : raw.systemd ? 'systemd' : 'pg_ctl';

  const service = str(vars.pg_service) ?? (family === 'debian' ? `postgresql@${version}-${cluster}` : `postgresql-${version}`);
  const managedConf = family === 'debian' ? `${configDir}/conf.d/${MANAGED_CONF_NAME}` : `${configDir}/${MANAGED_CONF_NAME}`;
  return {
    family,
    version,
    cluster,
    dataDir,
    configDir,
    binDir,
    port,
    ctl,
    service,
    confFile: `${configDir}/postgresql.conf`,
    hbaFile: `${configDir}/pg_hba.conf`,
    managedConf,
    includeLine: family === 'debian' ? `include_dir = 'conf.d'` : `include_if_exists = '${MANAGED_CONF_NAME}'`,
    // Outside the data dir, so a clone or a move-aside does not carry it along.
    startLog: `${dataDir.replace(/\/+$/, "").replace(/\/[^/]*$/, "")}/runbook-pg_ctl.log`,
    overridden,
  };
}

/** One line for reports: "PostgreSQL 15 debian 15/main /var/lib/postgresql/15/main (pg_ctlcluster)". */
export function describeLayout(l: PgLayout): string {
  const name = l.family === 'debian' ? `${l.version}/${l.cluster}` : `${l.version}`;
  const over = l.overridden.length ? `; from inventory: ${l.overridden.join(', ')}` : '';
  return `PostgreSQL ${name} (${l.family} layout), data ${l.dataDir}, config ${l.configDir}, ${l.ctl}, port ${l.port}${over}`;
}
