/**
 * A stand-alone PostgreSQL 15 cluster on each database host, in the host's layout. Replication
 * and everything else is the runbooks' job. Runs inside the host (nsenter), all hosts in parallel.
 */
import { quoteWord as q } from '../shell/quote.js';
import { RHEL_PG_BIN, RHEL_PGDATA } from './host-fs.js';
import { inHost } from './local.js';
import type { DbLayout } from './spec.js';

// --no-sync: durability against a machine crash is worthless in a lab; it saves ~1 s per host.
const DEBIAN = `pg_createcluster 15 main --start -o listen_addresses='*' -- --no-sync >/dev/null`;

// PGDG style: data and config in one directory, started with pg_ctl, no pg_ctlcluster registry.
const RHEL_AS_POSTGRES = [
  `${RHEL_PG_BIN}/initdb -D ${RHEL_PGDATA} --no-sync -A peer --auth-host=scram-sha-256 >/var/lib/pgsql/15/initdb.log`,
  `echo "listen_addresses = '*'" >> ${RHEL_PGDATA}/postgresql.conf`,
  `${RHEL_PG_BIN}/pg_ctl -D ${RHEL_PGDATA} -l /var/lib/pgsql/15/logfile -w start >/dev/null`,
].join(' && ');
const RHEL = `su -s /bin/sh postgres -c ${q(RHEL_AS_POSTGRES)}`;

export async function initPostgres(pid: number, layout: DbLayout): Promise<void> {
  await inHost(pid, layout === 'rhel' ? RHEL : DEBIAN, { timeoutMs: 60_000 });
}

/** Does the server answer a query on the host's local socket? */
export async function postgresAnswers(pid: number): Promise<boolean> {
  const r = await inHost(pid, `su -s /bin/sh postgres -c "psql -XAtc 'select 1'"`, { check: false, timeoutMs: 10_000 });
  return r.code === 0 && r.stdout.trim() === '1';
}
