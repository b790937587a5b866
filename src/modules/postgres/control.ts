/**
 * Commands that act on a PostgreSQL server for a given layout. Every command here expects to
 * run as root (the pg steps use `become: true`) and switches to postgres itself with runuser, so
 * that one step can mix root and postgres work and its facts batch in one round trip.
 */
import { type Command, joinCommands, raw, sh } from '../../shell/index.js';
import type { PgLayout } from './layout.js';

/** Run `cmd` as the postgres OS user (from /, which postgres can always read); a group, so it can sit in a pipe. */
export function asPostgres(cmd: Command): Command {
  return sh`{ cd / && runuser -u postgres -- ${cmd}; }`;
}

/** C locale for tools whose output we parse (pg_controldata, pg_rewind). */
export function cLocale(cmd: Command): Command {
  return sh`env LC_ALL=C LANG=C ${cmd}`;
}

function pgCtl(l: PgLayout, args: Command): Command {
  return asPostgres(sh`${`${l.binDir}/pg_ctl`} -D ${l.dataDir} ${args}`);
}

/** Extra -o options so pg_ctl finds the config outside the data dir (Debian layout driven by pg_ctl). */
function pgCtlConfigOpt(l: PgLayout): Command {
  return l.configDir === l.dataDir ? raw('') : sh`-o ${`-c config_file=${l.confFile}`}`;
}

export function startCommand(l: PgLayout): Command {
  switch (l.ctl) {
    case 'pg_ctlcluster':
      return sh`pg_ctlcluster ${l.version} ${l.cluster} start`;
    case 'systemd':
      return sh`systemctl start ${l.service}`;
    case 'pg_ctl':
      return pgCtl(l, sh`-l ${l.startLog} -w -t 120 ${pgCtlConfigOpt(l)} start`);
  }
}

/** Clean stop (fast: disconnect clients, shutdown checkpoint); a no-op when already stopped. */
export function stopCommand(l: PgLayout): Command {
  switch (l.ctl) {
    case 'pg_ctlcluster':
      return sh`if pg_ctlcluster ${l.version} ${l.cluster} status >/dev/null 2>&1; then pg_ctlcluster ${l.version} ${l.cluster} stop -m fast; fi`;
    case 'systemd':
      return sh`systemctl stop ${l.service}`;
    case 'pg_ctl':
      return sh`if ${pgCtl(l, raw('status'))} >/dev/null 2>&1; then ${pgCtl(l, raw('-m fast -w -t 120 stop'))}; fi`;
  }
}

export function restartCommand(l: PgLayout): Command {
  switch (l.ctl) {
    case 'pg_ctlcluster':
      return sh`pg_ctlcluster ${l.version} ${l.cluster} restart -m fast`;
    case 'systemd':
      return sh`systemctl restart ${l.service}`;
    case 'pg_ctl':
      return pgCtl(l, sh`-l ${l.startLog} -w -t 120 -m fast ${pgCtlConfigOpt(l)} restart`);
  }
}

/** Promote and wait until the server accepts writes. */
export function promoteCommand(l: PgLayout): Command {
  if (l.ctl === 'pg_ctlcluster') return sh`pg_ctlcluster ${l.version} ${l.cluster} promote`;
  return pgCtl(l, raw('-w -t 120 promote'));
}

/**
 * Keep the server from starting as a primary by itself: Debian start.conf "manual", systemd
 * disable, and — for every mode, the lab's pg_ctl too — a standby.signal, so a stray start comes
 * up read-only instead of writable (no split brain even if someone starts it by hand).
 */
export function fenceCommand(l: PgLayout): Command {
  const parts: Command[] = [asPostgres(sh`touch ${`${l.dataDir}/standby.signal`}`)];
  if (l.family === 'debian') parts.push(sh`echo manual > ${`${l.configDir}/start.conf`}`);
  if (l.ctl === 'systemd') parts.push(sh`systemctl disable ${l.service}`);
  return joinCommands(parts, ' && ');
}

/** Undo the boot-time part of the fence (standby.signal is the rejoin's business). */
export function unfenceCommand(l: PgLayout): Command | undefined {
  if (l.family === 'debian') return sh`echo auto > ${`${l.configDir}/start.conf`}`;
  if (l.ctl === 'systemd') return sh`systemctl enable ${l.service}`;
  return undefined;
}
