/**
 * Read-only PostgreSQL probes through psql. SQL always goes to psql on stdin (never -c, so no
 * value ever sits on a command line); output is unaligned with unit/record separators so that
 * values may hold tabs, pipes and newlines. Facts run as root and switch to postgres themselves,
 * so one step's facts batch into one round trip whatever they need.
 */
import { fact } from '../../engine/define.js';
import type { Fact } from '../../engine/types.js';
import type { ExecResult } from '../../transport/types.js';
import { type Command, raw, sh, sql, type SqlFragment } from '../../shell/index.js';
import { asPostgres } from './control.js';
import { byServerVersion, type PgFeatures } from './version.js';

export const FIELD_SEP = '\x1f';
export const RECORD_SEP = '\x1e';
/** What psql prints for NULL: a control character no value of ours contains. */
export const NULL_MARK = '\x18';

/** How to reach a server with psql: its port, and psql's directory when known (else found on PATH or /usr/pgsql-*). */
export interface PgConn {
  port: number;
  bin?: string;
  db?: string;
  /** Over TCP to another node (password from ~postgres/.pgpass), with a 3 s connect timeout. */
  host?: string;
  user?: string;
}

/**
 * psql itself as one shell word, where the layout (its bin dir) is not known: the newest installed
 * Debian or PGDG binary, else psql on PATH. Not Debian's Perl wrapper /usr/bin/psql first: a Perl
 * start-up per call, which doubled the cost of the VIP checks that run every second.
 */
export const PSQL_BIN = `"$(for b in /usr/lib/postgresql/*/bin/psql /usr/pgsql-*/bin/psql; do [ -x "$b" ] && p=$b; done; echo "\${p:-psql}")"`;

/** application_name of runbook's own sessions: not counted as clients of a node. */
export const RUNBOOK_APP = 'runbook';

/**
 * Seconds a connection to another node's server may take: libpq's shortest (it reads 1 as 2). A
 * failover reads a cut-off old primary in several steps, and each read waits this long (issue 17:
 * RTO after a partition); a server that is up answers a connect in milliseconds, loaded or not.
 */
export const PEER_CONNECT_TIMEOUT_SEC = 2;

/** psql with the query on stdin: no psqlrc, unaligned, tuples only, stop at the first error. */
export function psqlCommand(conn: PgConn, query: SqlFragment): Command {
  const bin = conn.bin ? sh`${`${conn.bin}/psql`}` : raw(PSQL_BIN);
  const remote = conn.host ? sh` -h ${conn.host} -U ${conn.user ?? 'postgres'}` : raw('');
  const base = sh`${bin} -X -A -t -q -v ON_ERROR_STOP=1 -F ${FIELD_SEP} -R ${RECORD_SEP} -P ${`null=${NULL_MARK}`} -p ${conn.port} -d ${`dbname=${conn.db ?? 'postgres'} application_name=${RUNBOOK_APP}`}${remote}`;
  return asPostgres(conn.host ? sh`env PGCONNECT_TIMEOUT=${PEER_CONNECT_TIMEOUT_SEC} ${base}` : base).withStdin(query);
}

export type Row = Array<string | null>;

/** Split psql's unaligned output into rows of fields (NULL → null). */
export function parseRows(stdout: string): Row[] {
  const text = stdout.replace(/\n$/, '');
  if (text === '') return [];
  return text.split(RECORD_SEP).map((rec) => rec.replace(/^\n/, '').split(FIELD_SEP).map((f) => (f === NULL_MARK ? null : f)));
}

/** psql exits 2 when it cannot connect (server down, socket missing): not an error for a fact. */
export function isConnectFailure(r: ExecResult): boolean {
  return r.exitCode === 2 && /could not connect|connection to server|No such file or directory|Connection refused|the database system is (starting up|shutting down)/i.test(r.stderr);
}

function failure(r: ExecResult): Error {
  return new Error(`psql exit ${r.exitCode}: ${r.stderr.trim().split('\n').slice(-3).join(' | ') || r.stdout.trim()}`);
}

/** A query fact: rows mapped to T. Throws (fails the step) when the server cannot answer. */
export function queryFact<T>(name: string, conn: PgConn, query: SqlFragment, map: (rows: Row[]) => T): Fact<T> {
  return fact({
    name,
    become: true,
    command: psqlCommand(conn, query),
    parse(r) {
      if (r.exitCode !== 0) throw failure(r);
      return map(parseRows(r.stdout));
    },
  });
}

/** Like queryFact, but a server that is down is a value (`null`), not an error. */
export function optionalQueryFact<T>(name: string, conn: PgConn, query: SqlFragment, map: (rows: Row[]) => T): Fact<T | null> {
  return fact({
    name,
    become: true,
    command: psqlCommand(conn, query),
    parse(r) {
      if (r.exitCode === 0) return map(parseRows(r.stdout));
      if (isConnectFailure(r)) return null;
      throw failure(r);
    },
  });
}

const bool = (v: string | null | undefined): boolean => v === 't';
const num = (v: string | null | undefined): number => (v === null || v === undefined ? NaN : Number(v));

// ---------------------------------------------------------------- LSNs

/** "0/3000148" → bigint byte position, for comparisons. */
export function lsnToBigInt(lsn: string): bigint {
  const m = /^([0-9A-Fa-f]+)\/([0-9A-Fa-f]+)$/.exec(lsn.trim());
  if (!m) throw new Error(`not an LSN: ${JSON.stringify(lsn)}`);
  return (BigInt(`0x${m[1]}`) << 32n) + BigInt(`0x${m[2]}`);
}

export function lsnGte(a: string | null, b: string | null): boolean {
  if (!a || !b) return false;
  return lsnToBigInt(a) >= lsnToBigInt(b);
}

// ---------------------------------------------------------------- status: role, timeline, LSNs

/** The one-row snapshot every pg step starts from. `up: false` when the server does not answer. */
export type PgStatus =
  | { up: false; error: string }
  | {
      up: true;
      inRecovery: boolean;
      /** Timeline of the last checkpoint (after promote + CHECKPOINT it is the new one). */
      timeline: number;
      /** Primary: pg_current_wal_lsn(). */
      currentLsn: string | null;
      /** Standby: received / replayed. */
      receiveLsn: string | null;
      replayLsn: string | null;
      /** Standby: 'not paused' | 'pause requested' | 'paused'. */
      replayPause: string | null;
      serverVersionNum: number;
      dataDirectory: string;
      configFile: string;
      hbaFile: string;
      primaryConninfo: string;
      primarySlotName: string;
      /** Databases other than postgres and the templates. */
      userDatabases: string[];
      /** Tables outside the system schemas in the postgres database (runbook's marker table counts: a node that had it served). */
      userTables: number;
      /** Client sessions other than ours. */
      clients: number;
    };

export const MARKER_TABLE = 'runbook_marker';

/** The status query for one server version (the pause-state function exists from 14). */
export function statusSql(f: PgFeatures): SqlFragment {
  return sql`SELECT pg_is_in_recovery(),
  (SELECT timeline_id FROM pg_control_checkpoint()),
  CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_lsn()::text END,
  pg_last_wal_receive_lsn()::text,
  pg_last_wal_replay_lsn()::text,
  CASE WHEN pg_is_in_recovery() THEN ${f.replayPauseState} END,
  current_setting('server_version_num'),
  current_setting('data_directory'),
  current_setting('config_file'),
  current_setting('hba_file'),
  current_setting('primary_conninfo'),
  current_setting('primary_slot_name'),
  (SELECT coalesce(string_agg(datname, ',' ORDER BY datname), '') FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1')),
  (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'),
  (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND application_name <> ${RUNBOOK_APP});`;
}

/**
 * Wait on the server, up to `maxMs`, until a standby has replayed past `lsn` (returns at once on a
 * writable node or once replayed): put before statusFact in one batch, a poll then usually needs
 * one round trip instead of several 200 ms apart. Never fails (the status read after it decides).
 */
export function replayWaitFact(conn: PgConn, lsn: string, maxMs = 3000): Fact<null> {
  const loops = Math.max(1, Math.ceil(maxMs / 50));
  return fact({
    name: 'pg.replay_wait',
    become: true,
    cache: false,
    command: psqlCommand(conn, sql`DO $rb$ BEGIN FOR i IN 1..${loops} LOOP EXIT WHEN NOT pg_is_in_recovery() OR pg_last_wal_replay_lsn() >= ${lsn}::pg_lsn; PERFORM pg_sleep(0.05); END LOOP; END $rb$;`),
    parse: () => null,
  });
}

/** Chosen by the server's server_version_num in the same round trip (version.ts). */
export const STATUS_SQL = byServerVersion([140000], statusSql);

export function parseStatusRow(row: Row): PgStatus {
  return {
    up: true,
    inRecovery: bool(row[0]),
    timeline: num(row[1]),
    currentLsn: row[2] ?? null,
    receiveLsn: row[3] ?? null,
    replayLsn: row[4] ?? null,
    replayPause: row[5] ?? null,
    serverVersionNum: num(row[6]),
    dataDirectory: row[7] ?? '',
    configFile: row[8] ?? '',
    hbaFile: row[9] ?? '',
    primaryConninfo: row[10] ?? '',
    primarySlotName: row[11] ?? '',
    userDatabases: row[12] ? row[12].split(',') : [],
    userTables: num(row[13]),
    clients: num(row[14]),
  };
}

export function statusFact(conn: PgConn): Fact<PgStatus> {
  return fact({
    name: 'pg.status',
    become: true,
    command: psqlCommand(conn, STATUS_SQL),
    parse(r) {
      if (r.exitCode === 0) {
        const row = parseRows(r.stdout)[0];
        if (!row) throw new Error('status query returned no row');
        return parseStatusRow(row);
      }
      if (isConnectFailure(r) || r.exitCode === 2) return { up: false, error: r.stderr.trim().split('\n').pop() ?? `psql exit ${r.exitCode}` };
      throw failure(r);
    },
  });
}

// ---------------------------------------------------------------- settings

export interface PgSetting {
  name: string;
  setting: string;
  unit: string | null;
  context: string;
  pendingRestart: boolean;
  sourcefile: string | null;
}

export function settingsFact(conn: PgConn, names: string[]): Fact<Record<string, PgSetting>> {
  return queryFact(
    'pg.settings',
    conn,
    sql`SELECT name, setting, unit, context, pending_restart, sourcefile FROM pg_settings WHERE name = ANY (ARRAY[${names}]::text[])`,
    (rows) =>
      Object.fromEntries(
        rows.map((r) => [
          r[0]!,
          { name: r[0]!, setting: r[1] ?? '', unit: r[2] ?? null, context: r[3] ?? '', pendingRestart: bool(r[4]), sourcefile: r[5] ?? null },
        ]),
      ),
  );
}

/** Names of settings whose new value waits for a restart (pg_settings.pending_restart). */
export function pendingRestartFact(conn: PgConn): Fact<string[] | null> {
  return optionalQueryFact('pg.pending_restart', conn, sql`SELECT name FROM pg_settings WHERE pending_restart ORDER BY name`, (rows) =>
    rows.map((r) => r[0]!),
  );
}

// ---------------------------------------------------------------- pg_hba_file_rules

export interface HbaRule {
  line: number;
  type: string;
  database: string[];
  user: string[];
  address: string | null;
  netmask: string | null;
  method: string | null;
  error: string | null;
}

/** "{a,b}" → ['a','b'] (text[] as psql prints it; our names need no quoting). */
export function parsePgArray(v: string | null): string[] {
  if (!v) return [];
  const inner = v.replace(/^\{/, '').replace(/\}$/, '');
  return inner === '' ? [] : inner.split(',').map((s) => s.replace(/^"(.*)"$/, '$1'));
}

/** null when the server is down. */
export function hbaRulesFact(conn: PgConn): Fact<HbaRule[] | null> {
  return optionalQueryFact(
    'pg.hba_file_rules',
    conn,
    sql`SELECT line_number, type, database, user_name, address, netmask, auth_method, error FROM pg_hba_file_rules ORDER BY line_number`,
    (rows) =>
      rows.map((r) => ({
        line: num(r[0]),
        type: r[1] ?? '',
        database: parsePgArray(r[2] ?? null),
        user: parsePgArray(r[3] ?? null),
        address: r[4] ?? null,
        netmask: r[5] ?? null,
        method: r[6] ?? null,
        error: r[7] ?? null,
      })),
  );
}

// ---------------------------------------------------------------- replication slots, senders, receiver

export interface PgSlot {
  name: string;
  type: string;
  active: boolean;
  restartLsn: string | null;
  walStatus: string | null;
}

export function slotsFact(conn: PgConn): Fact<PgSlot[] | null> {
  return optionalQueryFact(
    'pg.replication_slots',
    conn,
    sql`SELECT slot_name, slot_type, active, restart_lsn::text, wal_status FROM pg_replication_slots ORDER BY slot_name`,
    (rows) => rows.map((r) => ({ name: r[0]!, type: r[1] ?? '', active: bool(r[2]), restartLsn: r[3] ?? null, walStatus: r[4] ?? null })),
  );
}

export interface PgSender {
  applicationName: string;
  clientAddr: string | null;
  state: string;
  sentLsn: string | null;
  replayLsn: string | null;
  /** pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn). */
  replayLagBytes: number | null;
  syncState: string;
}

export function replicationFact(conn: PgConn): Fact<PgSender[] | null> {
  return optionalQueryFact(
    'pg.stat_replication',
    conn,
    sql`SELECT application_name, client_addr::text, state, sent_lsn::text, replay_lsn::text,
      CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) END, sync_state
      FROM pg_stat_replication ORDER BY application_name`,
    (rows) =>
      rows.map((r) => ({
        applicationName: r[0] ?? '',
        clientAddr: r[1] ?? null,
        state: r[2] ?? '',
        sentLsn: r[3] ?? null,
        replayLsn: r[4] ?? null,
        replayLagBytes: r[5] === null || r[5] === undefined ? null : Number(r[5]),
        syncState: r[6] ?? '',
      })),
  );
}

export interface PgWalReceiver {
  status: string;
  receivedTli: number;
  senderHost: string | null;
  slotName: string | null;
  flushedLsn: string | null;
}

/** The standby's WAL receiver; null when there is none (primary, or not connected). */
export function walReceiverFact(conn: PgConn): Fact<PgWalReceiver | null> {
  return optionalQueryFact(
    'pg.stat_wal_receiver',
    conn,
    sql`SELECT status, received_tli, sender_host, slot_name, flushed_lsn::text FROM pg_stat_wal_receiver`,
    (rows) => {
      const r = rows[0];
      if (!r) return null;
      return { status: r[0] ?? '', receivedTli: num(r[1]), senderHost: r[2] ?? null, slotName: r[3] ?? null, flushedLsn: r[4] ?? null };
    },
  );
}

// ---------------------------------------------------------------- roles

export interface PgRoleState {
  exists: boolean;
  canLogin: boolean;
  replication: boolean;
  /** The stored verifier (SCRAM or md5), hidden from logs and reports. */
  verifier: Hidden | null;
  /** pg_rewind's functions granted (pg_ls_dir, pg_stat_file, pg_read_binary_file). */
  rewindGrants: boolean;
}

export const REWIND_FUNCTIONS = [
  'pg_catalog.pg_ls_dir(text, boolean, boolean)',
  'pg_catalog.pg_stat_file(text, boolean)',
  'pg_catalog.pg_read_binary_file(text)',
  'pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)',
];

/**
 * A value that prints as *** but, unlike a Secret, is not added to the masking list: the same
 * verifier read on two nodes must stay readable in the second read.
 */
export class Hidden {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '***';
  }
  toJSON(): string {
    return '***';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'Hidden(***)';
  }
}

export function roleFact(conn: PgConn, role: string): Fact<PgRoleState>;
/** optional: a server that is down gives null (a stopped standby mid-clone), not an error. */
export function roleFact(conn: PgConn, role: string, optional: true): Fact<PgRoleState | null>;
export function roleFact(conn: PgConn, role: string, optional = false): Fact<PgRoleState | null> {
  return (optional ? optionalQueryFact : queryFact)(
    'pg.role',
    conn,
    sql`SELECT rolcanlogin, rolreplication, rolpassword,
        (SELECT bool_and(has_function_privilege(oid, f, 'EXECUTE')) FROM unnest(ARRAY[${REWIND_FUNCTIONS}]::text[]) AS f)
      FROM pg_authid WHERE rolname = ${role}`,
    (rows) => {
      const r = rows[0];
      if (!r) return { exists: false, canLogin: false, replication: false, verifier: null, rewindGrants: false };
      return { exists: true, canLogin: bool(r[0]), replication: bool(r[1]), verifier: r[2] ? new Hidden(r[2]) : null, rewindGrants: bool(r[3]) };
    },
  );
}

// ---------------------------------------------------------------- marker rows (zero-loss proof)

/**
 * Notes of the marker rows on a node; [] when the table does not exist yet, null when the server
 * is down. psql's \if keeps one round trip without failing on a missing table.
 */
export function markersFact(conn: PgConn): Fact<string[] | null> {
  const query = sql`SELECT to_regclass(${`public.${MARKER_TABLE}`}) IS NOT NULL AS has_markers \\gset
\\if :has_markers
SELECT note FROM ${sql.ident(MARKER_TABLE)} ORDER BY id;
\\endif
`;
  return optionalQueryFact('pg.markers', conn, query, (rows) => rows.map((r) => r[0] ?? ''));
}

// ---------------------------------------------------------------- a peer, seen over the network

/** What a node sees of a peer on its PostgreSQL port: no SSH needed, so it works when the peer's host is gone. */
export type PeerView = { answers: false; error: string } | { answers: true; inRecovery: boolean };

export function peerViewFact(conn: PgConn): Fact<PeerView> {
  return fact({
    name: `pg.peer ${conn.host ?? ''}`,
    become: true,
    command: psqlCommand(conn, sql`SELECT pg_is_in_recovery()`),
    parse(r) {
      if (r.exitCode === 0) return { answers: true, inRecovery: parseRows(r.stdout)[0]?.[0] === 't' };
      // libpq's reason ("Connection refused", "timeout expired") is on the first line, a hint on the next.
      return { answers: false, error: r.stderr.split('\n').map((x) => x.trim()).filter(Boolean).join(' ') || `psql exit ${r.exitCode}` };
    },
  });
}

// ---------------------------------------------------------------- archive backlog

/** WAL segments waiting for archive_command (`.ready` files); null when the server is down. */
export function archiveBacklogFact(conn: PgConn): Fact<number | null> {
  return optionalQueryFact('pg.archive_backlog', conn, sql`SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'`, (rows) => Number(rows[0]?.[0] ?? 0));
}
