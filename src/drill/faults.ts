/**
 * The faults a drill injects, over SSH, on any cluster: a clean stop and a SIGKILL of the
 * primary's postmaster, replay paused on a standby (then the primary stopped) so that the
 * failover's candidate checks are rehearsed, and the partition (partition.ts; it undoes itself).
 * A full pg_wal ("disk-full-wal") is not offered: filling the primary's WAL filesystem makes
 * PostgreSQL PANIC and takes down whatever else shares that filesystem; no undo makes that safe.
 */
import { psqlCommand } from '../modules/postgres/facts.js';
import { connOfLayout } from '../modules/postgres/cluster.js';
import { stopCommand } from '../modules/postgres/control.js';
import type { PgLayout } from '../modules/postgres/layout.js';
import { sh, type Command } from '../shell/command.js';
import { sql } from '../shell/sql.js';
import type { FaultKind } from './types.js';

export const FAULTS: readonly FaultKind[] = ['stop', 'kill', 'partition', 'lag'];

export const UNSAFE_FAULTS: Record<string, string> = {
  'disk-full-wal':
    'not offered: a full pg_wal filesystem makes the primary PANIC and stops everything else that shares the filesystem; no undo makes it safe on a cluster people use',
};

/** The primary-side command of a stop or kill (and of the lag fault's primary loss: a stop). */
export function faultCommand(kind: 'stop' | 'kill', layout: PgLayout): Command {
  if (kind === 'stop') return stopCommand(layout);
  // SIGKILL of the postmaster: no shutdown checkpoint, backends notice and exit (like a crash).
  return sh`kill -KILL "$(head -n 1 ${`${layout.dataDir}/postmaster.pid`})"`;
}

export function describeFault(kind: FaultKind, host: string, lagging?: string): string {
  switch (kind) {
    case 'stop':
      return `clean stop of PostgreSQL on ${host}`;
    case 'kill':
      return `SIGKILL of the postmaster on ${host}`;
    case 'partition':
      return `${host} cut from the other nodes and this controller (firewall rules or blackhole routes installed over SSH; a guard on ${host} restores the link at the deadline by itself)`;
    case 'lag':
      return `replay paused on ${lagging ?? 'a standby'}, then a clean stop of ${host}: the failover must refuse ${lagging ?? 'it'} and promote another standby`;
  }
}

export function replayPauseCommand(layout: PgLayout, pause: boolean): Command {
  return psqlCommand(connOfLayout(layout), pause ? sql`SELECT pg_wal_replay_pause();` : sql`SELECT pg_wal_replay_resume();`);
}

/** received − replayed bytes on a standby (one number). */
export function replayLagCommand(layout: PgLayout): Command {
  return psqlCommand(connOfLayout(layout), sql`SELECT coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::bigint;`);
}
