/**
 * Primary-side configuration, on EVERY node (so that any of them can be primary after a failover):
 * settings in one managed file (steps/settings.ts: minimums that never lower what a node has, the
 * restart they may need, the archive check), pg_hba admitting every
 * node, ~postgres/.pgpass, and — on the node that is writable — the replication role, the slots
 * and the marker table. Files are identical on all nodes, so a clone or a rewind that copies them
 * from the peer leaves them right.
 */
import { blocked, change, fact, noop, stepsFor } from '../../../engine/define.js';
import type { Plan, StepContext, StepDef } from '../../../engine/types.js';
import { MARKER_TABLE, optionalQueryFact, roleFact, type PgStatus, psqlCommand, statusFact } from '../facts.js';
import { sh, sql } from '../../../shell/index.js';
import { gucProblem } from '../../../shell/config-text.js';
import { type HbaEntry, hbaAddress, hbaOp, pgpassOp, roleOp, slotsOp } from '../ops.js';
import { archiveDir, archiveDirProblem, archiveSettings } from '../archive.js';
import { SHELL_SETTINGS, type SettingValue, settingRank } from '../settings.js';
import { SYNC_MARKER, SYNC_STRICT_MARKER, type SyncWish, syncProblem } from '../sync.js';
import { restartStep, settingsStep } from './settings.js';
import { type PgCluster, type PgParams, clusterOf, connOfLayout, layoutOf, nodeOf, peersOf } from '../cluster.js';
import { isPristine } from '../topology.js';
import { clusterHosts } from './inspect.js';

export interface ReplicationSettingsParams extends PgParams {
  wal_keep_size: string;
  max_slot_wal_keep_size: string;
  /** Directory for archived WAL (local or an NFS mount); empty: no archiving. */
  wal_archive_dir: string | undefined;
  /** The archive directory is one shared mount on every node: standbys get a restore_command. */
  wal_archive_shared: boolean;
  /** 'quorum': synchronous_standby_names = ANY 1 (…); default from the inventory var pg_synchronous. */
  synchronous: string | undefined;
  /** Keep synchronous replication on a primary with no standby (writes wait), like Patroni's synchronous_mode_strict. */
  synchronous_strict: boolean | undefined;
}

/**
 * The minimum settings every node gets (raised to what the nodes already have by raiseOnly),
 * the archive settings for this server version, the synchronous-replication marker; inventory var
 * pg_settings (a mapping) adds or overrides last: an explicit value is the operator's choice.
 */
export function replicationSettings(p: ReplicationSettingsParams, extra: unknown, versionNum: number, sync: SyncWish = { mode: 'off', strict: false }): { settings: Record<string, SettingValue>; notes: string[] } {
  const s: Record<string, SettingValue> = {
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
  const notes: string[] = [];
  if (p.wal_archive_dir) {
    const a = archiveSettings(versionNum, { dir: p.wal_archive_dir, shared: p.wal_archive_shared });
    Object.assign(s, a.settings);
    notes.push(...a.notes);
  }
  if (sync.mode !== 'off') {
    // The choice travels with the file, so failover and failback keep it without being told.
    s[SYNC_MARKER] = sync.mode;
    s[SYNC_STRICT_MARKER] = sync.strict ? 'on' : 'off';
  }
  if (extra && typeof extra === 'object' && !Array.isArray(extra)) for (const [k, v] of Object.entries(extra)) s[k] = String(v);
  return { settings: s, notes };
}

/** Bad input in the settings-related params and vars, all at once (validate: exit 2, nothing touched). */
export function settingsProblems(p: ReplicationSettingsParams, hosts: Array<{ name: string; vars: Record<string, unknown> }>): string[] {
  const out: string[] = [];
  if (p.wal_archive_dir !== undefined && p.wal_archive_dir !== '') {
    const why = archiveDirProblem(p.wal_archive_dir);
    if (why) out.push(`wal_archive_dir ${JSON.stringify(p.wal_archive_dir)} ${why}`);
  }
  for (const [name, v] of [['wal_keep_size', p.wal_keep_size], ['max_slot_wal_keep_size', p.max_slot_wal_keep_size]] as const) {
    if (settingRank(name, v) === undefined) out.push(`${name} ${JSON.stringify(v)} is not a size (e.g. 256MB, 2GB${name === 'max_slot_wal_keep_size' ? ', -1' : ''})`);
  }
  const sp = syncProblem(p.synchronous, 'synchronous');
  if (sp) out.push(sp);
  for (const h of hosts) {
    const vp = syncProblem(h.vars.pg_synchronous, `${h.name}: pg_synchronous`);
    if (vp) out.push(vp);
    const extra = h.vars.pg_settings;
    if (extra === undefined || extra === null) continue;
    if (typeof extra !== 'object' || Array.isArray(extra)) {
      out.push(`${h.name}: pg_settings must be a mapping of setting names to values`);
      continue;
    }
    for (const [k, v] of Object.entries(extra)) {
      if (!/^[a-z_][a-z0-9_.]*$/.test(k)) out.push(`${h.name}: pg_settings.${k}: not a setting name`);
      else if (SHELL_SETTINGS.has(k)) out.push(`${h.name}: pg_settings.${k}: a shell command cannot come from pg_settings (it would reach /bin/sh unquoted); use wal_archive_dir`);
      else {
        const why = gucProblem(String(v));
        if (why) out.push(`${h.name}: pg_settings.${k} ${why}`);
      }
    }
  }
  return out;
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
      id: 'pg-wal-archive-dir',
      title: 'WAL archive directory (owned by postgres, 0700)',
      on: clusterHosts,
      become: true,
      when: (ctx) => (ctx.params.wal_archive_dir ? true : 'no wal_archive_dir given'),
      gather: (ctx) => ({ dir: dirFact(archiveDir(ctx.params.wal_archive_dir!)) }),
      plan: (f, ctx) => {
        const dir = archiveDir(ctx.params.wal_archive_dir!);
        return f.dir === 'postgres 700'
          ? noop(`${dir} exists (postgres, 0700)`)
          : change(`create ${dir} (postgres, 0700)`, [sh`install -d -o postgres -g postgres -m 0700 ${dir}`]);
      },
    }),
    settingsStep<P>('pg-settings'),
    restartStep<P>('pg-restart'),
    step({
      id: 'pg-hba',
      title: 'pg_hba.conf admits every node for replication and pg_rewind (scram-sha-256)',
      on: clusterHosts,
      become: true,
      operation: (ctx) => hbaOp(layoutOf(ctx), connOfLayout(layoutOf(ctx)), hbaEntries(clusterOf(ctx))),
    }),
    // Role first, then .pgpass: a rotation whose ALTER ROLE fails leaves every node's .pgpass on
    // the password the server still has, so standbys keep streaming.
    step({
      id: 'pg-replication-role',
      title: 'Replication role (LOGIN REPLICATION, pg_rewind grants, password)',
      on: clusterHosts,
      become: true,
      gather: (ctx) => {
        const c = clusterOf(ctx);
        const conn = connOfLayout(layoutOf(ctx));
        return { self: statusFact(conn), role: roleFact(conn, c.replicationUser, true) };
      },
      plan: (f, ctx) => {
        const c = clusterOf(ctx);
        return (
          writableOnly(f.self, 'the role', ctx) ??
          (f.role ? roleOp(connOfLayout(layoutOf(ctx)), c.replicationUser, c.password!).plan({ role: f.role }) : noop('not running: the role is kept on the writable node'))
        );
      },
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

export { archiveVerifyStep } from './settings.js';

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
      return pristineOrNotWritable(f.self, 'the slot set', ctx) ?? slotsOp(connOfLayout(layoutOf(ctx)), want, []).plan(f);
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

