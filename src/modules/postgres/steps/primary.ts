/**
 * Primary-side configuration, on EVERY node (so that any of them can be primary after a failover):
 * settings in one managed file, restart only when pending_restart says so, pg_hba admitting every
 * node, ~postgres/.pgpass, and — on the node that is writable — the replication role, the slots
 * and the marker table. Files are identical on all nodes, so a clone or a rewind that copies them
 * from the peer leaves them right.
 */
import { blocked, change, fact, noop, stepsFor } from '../../../engine/define.js';
import type { Plan, StepContext, StepDef } from '../../../engine/types.js';
import { MARKER_TABLE, optionalQueryFact, type PgStatus, psqlCommand, statusFact } from '../facts.js';
import { Command, sh, sql, stdinText } from '../../../shell/index.js';
import {
  type HbaEntry,
  hbaAddress,
  hbaOp,
  pgpassOp,
  restartIfPendingOp,
  roleOp,
  settingsOp,
  slotsOp,
} from '../ops.js';
import { type PgCluster, type PgParams, clusterOf, connOfLayout, layoutOf, nodeOf, peersOf } from '../cluster.js';
import { isPristine } from '../topology.js';
import { clusterHosts } from './inspect.js';

export interface ReplicationSettingsParams extends PgParams {
  wal_keep_size: string;
  max_slot_wal_keep_size: string;
  /** Directory for archived WAL (local or an NFS mount); empty: no archiving. */
  wal_archive_dir: string | undefined;
}

/** The settings every node gets; inventory var pg_settings (a mapping) adds or overrides. */
export function replicationSettings(p: ReplicationSettingsParams, extra: unknown): Record<string, string> {
  const s: Record<string, string> = {
    wal_level: 'replica',
    max_wal_senders: '10',
    max_replication_slots: '10',
    hot_standby: 'on',
    // pg_rewind needs it unless the cluster has data checksums.
    wal_log_hints: 'on',
    wal_keep_size: p.wal_keep_size,
    // Caps the WAL an abandoned slot can pin.
    max_slot_wal_keep_size: p.max_slot_wal_keep_size,
    // Seed 001: a router dropping idle connections silently; notice within ~2 minutes.
    tcp_keepalives_idle: '60',
    tcp_keepalives_interval: '10',
    tcp_keepalives_count: '6',
  };
  if (p.wal_archive_dir) {
    const dir = p.wal_archive_dir.replace(/\/+$/, '');
    s.archive_mode = 'on';
    // Refuses to overwrite: a second cluster archiving into the same directory fails loudly.
    s.archive_command = `test ! -f ${dir}/%f && cp %p ${dir}/%f`;
    s.restore_command = `cp ${dir}/%f %p`;
  }
  if (extra && typeof extra === 'object' && !Array.isArray(extra)) for (const [k, v] of Object.entries(extra)) s[k] = String(v);
  return s;
}

/** Each node admits every node (itself included): replication, and the postgres db for pg_rewind. */
export function hbaEntries(c: PgCluster): HbaEntry[] {
  return c.nodes.flatMap((n) => [
    { type: 'host' as const, database: 'replication', user: c.replicationUser, address: hbaAddress(n.address), method: 'scram-sha-256' },
    { type: 'host' as const, database: 'postgres', user: c.replicationUser, address: hbaAddress(n.address), method: 'scram-sha-256' },
  ]);
}

export function primaryConfigSteps<P extends ReplicationSettingsParams>(): Array<StepDef<P, any>> {
  const { step } = stepsFor<P>();
  const writableOnly = (s: PgStatus, what: string, ctx: StepContext<P>): Plan | undefined => pristineOrNotWritable(s, what, ctx);

  return [
    step({
      id: 'pg-settings',
      title: 'Replication settings in one managed file',
      on: clusterHosts,
      become: true,
      operation: (ctx) => settingsOp(layoutOf(ctx), replicationSettings(ctx.params, ctx.host.vars.pg_settings)),
    }),
    step({
      id: 'pg-wal-archive-dir',
      title: 'WAL archive directory (owned by postgres, 0700)',
      on: clusterHosts,
      become: true,
      when: (ctx) => (ctx.params.wal_archive_dir ? true : 'no wal_archive_dir given'),
      gather: (ctx) => ({ dir: dirFact(ctx.params.wal_archive_dir!) }),
      plan: (f, ctx) =>
        f.dir === 'postgres 700'
          ? noop(`${ctx.params.wal_archive_dir} exists (postgres, 0700)`)
          : change(`create ${ctx.params.wal_archive_dir} (postgres, 0700)`, [sh`install -d -o postgres -g postgres -m 0700 ${ctx.params.wal_archive_dir!}`]),
    }),
    step({
      id: 'pg-restart-if-pending',
      title: 'Restart where pg_settings.pending_restart says a restart is owed',
      on: clusterHosts,
      become: true,
      operation: (ctx) => restartIfPendingOp(layoutOf(ctx), ctx.host.name, connOfLayout(layoutOf(ctx))),
    }),
    step({
      id: 'pg-hba',
      title: 'pg_hba.conf admits every node for replication and pg_rewind (scram-sha-256)',
      on: clusterHosts,
      become: true,
      operation: (ctx) => hbaOp(layoutOf(ctx), connOfLayout(layoutOf(ctx)), hbaEntries(clusterOf(ctx))),
    }),
    step({
      id: 'pg-pgpass',
      title: '~postgres/.pgpass holds the replication password (0600)',
      on: clusterHosts,
      become: true,
      operation: (ctx) => {
        const c = clusterOf(ctx);
        return pgpassOp(
          c.nodes.map((n) => ({ host: n.address, port: n.port, user: c.replicationUser })),
          c.password!,
        );
      },
    }),
    step({
      id: 'pg-replication-role',
      title: 'Replication role (LOGIN REPLICATION, pg_rewind grants, password)',
      on: clusterHosts,
      become: true,
      gather: (ctx) => {
        const c = clusterOf(ctx);
        const conn = connOfLayout(layoutOf(ctx));
        return { self: statusFact(conn), ...roleOp(conn, c.replicationUser, c.password!).facts };
      },
      plan: (f, ctx) => {
        const c = clusterOf(ctx);
        return writableOnly(f.self, 'the role', ctx) ?? roleOp(connOfLayout(layoutOf(ctx)), c.replicationUser, c.password!).plan(f);
      },
    }),
    step({
      id: 'pg-marker-table',
      title: `Marker table ${MARKER_TABLE} (zero-loss proofs and verification rows)`,
      on: clusterHosts,
      become: true,
      gather: (ctx) => ({ self: statusFact(connOfLayout(layoutOf(ctx))), exists: markerTableFact(ctx) }),
      plan: (f, ctx) =>
        writableOnly(f.self, 'the marker table', ctx) ??
        (f.exists
          ? noop(`${MARKER_TABLE} exists`)
          : change(`create table ${MARKER_TABLE}`, [
              psqlCommand(
                connOfLayout(layoutOf(ctx)),
                sql`CREATE TABLE IF NOT EXISTS ${sql.ident(MARKER_TABLE)} (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), note text NOT NULL);`,
              ),
            ])),
    }),
    slotsStep<P>('pg-slots'),
  ];
}

/**
 * Seed 000's check that the archive fills: on the writable node, write a row, switch WAL, and
 * wait for that segment to appear in the archive directory (30 s); pg_stat_archiver must show no
 * failure. Writes, so not in --check.
 */
export function archiveVerifyStep<P extends ReplicationSettingsParams>(id: string): StepDef<P, { archive: string }> {
  const { step } = stepsFor<P>();
  return step({
    id,
    title: 'WAL archiving works: a switched segment appears in the archive directory',
    on: clusterHosts,
    become: true,
    when: (ctx) => (!ctx.params.wal_archive_dir ? 'no wal_archive_dir given' : ctx.checkMode ? 'switches WAL: not in --check' : true),
    gather: (ctx) => ({ archive: archiveProbe(connOfLayout(layoutOf(ctx)), ctx.params.wal_archive_dir!) }),
    plan: (f) => {
      const [kind, detail] = [f.archive.split(' ')[0], f.archive.slice(f.archive.indexOf(' ') + 1)];
      if (kind === 'standby') return noop('in recovery: the primary archives');
      if (kind === 'archived') return noop(`WAL segment ${detail} archived`);
      return blocked(`WAL archiving does not work: ${detail}`);
    },
  });
}

function archiveProbe(conn: ReturnType<typeof connOfLayout>, dir: string) {
  const query = sql`SELECT CASE WHEN pg_is_in_recovery() THEN 'standby' ELSE (SELECT pg_walfile_name(pg_switch_wal()) FROM (SELECT 1) s) END;`;
  const write = sql`DO $rb$ BEGIN IF NOT pg_is_in_recovery() THEN INSERT INTO ${sql.ident(MARKER_TABLE)} (note) VALUES ('archive check'); END IF; END $rb$;`;
  const failed = sql`SELECT failed_count || ' failed, last error on ' || coalesce(last_failed_wal, 'none') FROM pg_stat_archiver`;
  const q = (x: typeof query) => new Command(psqlCommand(conn, x).parts);
  return fact({
    name: 'pg.archive_probe',
    become: true,
    command: sh`{ read -r w; read -r s; read -r fq; } ; printf '%s\n' "$w" | ${q(write)} >/dev/null 2>&1
seg=$(printf '%s\n' "$s" | ${q(query)}) || { echo "error cannot switch WAL"; exit 0; }
[ "$seg" = standby ] && { echo standby; exit 0; }
i=0; while [ $i -lt 150 ]; do [ -f ${dir}/"$seg" ] && { echo "archived $seg"; exit 0; }; sleep 0.2; i=$((i+1)); done
echo "missing $seg not in ${dir} after 30 s ($(printf '%s\n' "$fq" | ${q(failed)}))"`.withStdin(stdinText`${String(write)}
${String(query)}
${String(failed)}
`),
    parse: (r) => r.stdout.trim() || `error ${r.stderr.trim()}`,
  });
}

/**
 * The primary-only objects (role, marker table, slots) go to the writable node — but not to a
 * pristine stand-alone node that is not the intended primary: setup's clone replaces it, and
 * objects made there would make it look used.
 */
function pristineOrNotWritable<P extends PgParams>(s: PgStatus, what: string, ctx: StepContext<P>): Plan | undefined {
  if (!s.up) return noop(`not running: ${what} is kept on the writable node`);
  if (s.inRecovery) return noop(`in recovery: ${what} replicates from the primary`);
  if (!nodeOf(clusterOf(ctx), ctx.host.name).intendedPrimary && isPristine(s)) return noop(`pristine stand-alone server: the clone replaces it, ${what} comes with it`);
  return undefined;
}

/** On the writable node: a physical slot for every other node (elsewhere a no-op saying why). */
export function slotsStep<P extends PgParams>(id: string): StepDef<P, any> {
  const { step } = stepsFor<P>();
  return step({
    id,
    title: 'A physical replication slot for every other node, on the writable node',
    on: clusterHosts,
    become: true,
    gather: (ctx) => ({ self: statusFact(connOfLayout(layoutOf(ctx))), ...slotsOp(connOfLayout(layoutOf(ctx)), [], []).facts }),
    plan: (f, ctx) => {
      const c = clusterOf(ctx);
      const want = peersOf(c, ctx.host.name).map((n) => n.slotName);
      return pristineOrNotWritable(f.self, 'the slots', ctx) ?? slotsOp(connOfLayout(layoutOf(ctx)), want, []).plan(f);
    },
  });
}

function dirFact(dir: string) {
  return fact({
    name: 'pg.archive_dir',
    become: true,
    command: sh`stat -c '%U %a' ${dir} 2>/dev/null || true`,
    parse: (r) => r.stdout.trim(),
  });
}

function markerTableFact(ctx: StepContext<PgParams>) {
  return optionalQueryFact('pg.marker_table', connOfLayout(layoutOf(ctx)), sql`SELECT to_regclass(${`public.${MARKER_TABLE}`}) IS NOT NULL`, (rows) => rows[0]?.[0] === 't');
}

