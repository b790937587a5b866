/**
 * What `runbook check` reads on each node: one SQL round trip for PostgreSQL, one for the file
 * syncs, one for the VIP. Read-only: SELECTs and cat/stat; nothing is written anywhere.
 */
import { fact } from '../../engine/define.js';
import type { Fact } from '../../engine/types.js';
import { sql } from '../../shell/index.js';
import { addressesFact } from '../vip/facts.js';
import { isConnectFailure, parseRows, psqlCommand, type PgConn } from '../postgres/facts.js';
import { hostSyncsFact, syncRunFact } from '../filesync/facts.js';
import type { NodeFacts, SlotFacts, SyncFacts } from './verdicts.js';

export type PgHealth = Omit<Extract<NodeFacts, { reachable: true }>, 'host' | 'reachable' | 'holdsVip' | 'syncs' | 'applicationName'>;

const num = (v: string | null | undefined) => (v === null || v === undefined || v === '' ? NaN : Number(v));

// Sections separated by a marker row so one psql call carries them all.
const HEALTH_SQL = sql`SELECT 'node', pg_is_in_recovery()::text,
    CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() END,
    pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,
    (SELECT system_identifier FROM pg_control_system())::text,
    current_setting('max_wal_senders'), current_setting('max_replication_slots'),
    (SELECT setting FROM pg_settings WHERE name = 'max_slot_wal_keep_size'),
    current_setting('wal_log_hints'), current_setting('data_checksums'), current_setting('archive_mode'),
    (SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready')::text
UNION ALL SELECT 'archiver', failed_count::text, (last_failed_time IS NOT NULL AND last_failed_time > coalesce(last_archived_time, '-infinity'))::text, last_failed_wal,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM pg_stat_archiver
UNION ALL SELECT 'sender', application_name, state,
    CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::text END,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM pg_stat_replication
UNION ALL SELECT 'slot', slot_name, active::text, wal_status,
    CASE WHEN pg_is_in_recovery() OR restart_lsn IS NULL THEN NULL ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text END,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM pg_replication_slots`;

export function parseHealthRows(rows: Array<Array<string | null>>): PgHealth {
  const node = rows.find((r) => r[0] === 'node');
  if (!node) throw new Error('health query returned no node row');
  const arch = rows.find((r) => r[0] === 'archiver');
  const t = (v: string | null | undefined) => v === 't' || v === 'true' || v === 'on';
  return {
    up: true,
    inRecovery: t(node[1]),
    replayPause: node[2] ?? null,
    receiveLsn: node[3] ?? null,
    replayLsn: node[4] ?? null,
    systemIdentifier: node[5] ?? null,
    maxWalSenders: num(node[6]),
    maxReplicationSlots: num(node[7]),
    maxSlotWalKeepSizeMb: num(node[8]),
    walLogHints: t(node[9]),
    dataChecksums: t(node[10]),
    archiveMode: node[11] ?? 'off',
    readyFiles: node[12] === null || node[12] === undefined ? null : num(node[12]),
    archiver: arch ? { failedCount: num(arch[1]), failingNow: t(arch[2]), lastFailedWal: arch[3] ?? null } : null,
    senders: rows.filter((r) => r[0] === 'sender').map((r) => ({ applicationName: r[1] ?? '', state: r[2] ?? '', replayLagBytes: r[3] ? num(r[3]) : null })),
    slots: rows.filter((r) => r[0] === 'slot').map((r): SlotFacts => ({ name: r[1] ?? '', active: t(r[2]), walStatus: r[3] ?? null, retainedBytes: r[4] ? num(r[4]) : null })),
  };
}

const DOWN: Omit<PgHealth, 'up' | 'error'> = {
  inRecovery: false, replayPause: null, receiveLsn: null, replayLsn: null, systemIdentifier: null, maxWalSenders: 0, maxReplicationSlots: 0,
  maxSlotWalKeepSizeMb: -1, walLogHints: false, dataChecksums: false, archiveMode: 'off', readyFiles: null, archiver: null, senders: [], slots: [],
};

export function healthFact(conn: PgConn): Fact<PgHealth> {
  return fact({
    name: 'pg.health',
    become: true,
    cache: false,
    command: psqlCommand(conn, HEALTH_SQL),
    parse(r) {
      if (r.exitCode === 0) return parseHealthRows(parseRows(r.stdout));
      if (isConnectFailure(r) || r.exitCode === 2) return { ...DOWN, up: false, error: r.stderr.trim().split('\n').pop() ?? `psql exit ${r.exitCode}` };
      throw new Error(`psql exit ${r.exitCode}: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`);
    },
  });
}

/** The file syncs this node pulls (or serves), with their last run. */
export async function syncFactsOf(read: <T>(f: Fact<T>) => Promise<T>): Promise<SyncFacts[]> {
  const syncs = await read(hostSyncsFact());
  const out: SyncFacts[] = [];
  for (const s of syncs) {
    const run = await read(syncRunFact(s.conf.name));
    out.push({
      name: s.conf.name,
      source: s.conf.source,
      interval: s.conf.interval,
      lastSuccess: run.lastSuccess,
      now: run.now,
      kept: run.kept,
      scheduled: run.scheduled,
      ...(run.status && !run.status.ok ? { lastFailed: run.status.detail } : {}),
    });
  }
  return out;
}

export { addressesFact };

export interface NodeRef {
  host: string;
  applicationName: string;
  conn: PgConn;
}

/** Every node at once; an unreachable node is a finding, not an exception. */
export async function readNodes(
  nodes: NodeRef[],
  read: <T>(host: string, f: Fact<T>) => Promise<T>,
  opts: { vip: string | undefined; conn: (host: string) => Promise<PgConn> },
): Promise<NodeFacts[]> {
  return Promise.all(
    nodes.map(async (n): Promise<NodeFacts> => {
      try {
        const conn = await opts.conn(n.host);
        const [pg, addrs, syncs] = await Promise.all([
          read(n.host, healthFact(conn)),
          opts.vip ? read(n.host, addressesFact) : Promise.resolve([]),
          syncFactsOf((f) => read(n.host, f)),
        ]);
        return { host: n.host, reachable: true, applicationName: n.applicationName, ...pg, holdsVip: addrs.some((a) => a.address === opts.vip), syncs };
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        // Only a failed connection is "cannot be reached"; anything else is what it says.
        if (e instanceof Error && e.name === 'UnreachableError') return { host: n.host, reachable: false, error: message };
        return { host: n.host, reachable: false, error: `reached, but could not read it: ${message}` };
      }
    }),
  );
}
