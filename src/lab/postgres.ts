/**
 * A stand-alone PostgreSQL cluster (15, or the lab's --pg-version) on each database host, in the host's layout. Replication
 * and everything else is the runbooks' job. Runs inside the host (nsenter), all hosts in parallel.
 */
import { quoteWord as q } from '../shell/quote.js';
import { rhelPgBin, rhelPgData } from './host-fs.js';
import { inHost } from './local.js';
import type { DbLayout } from './spec.js';

// --no-sync: durability against a machine crash is worthless in a lab; it saves ~1 s per host.
const debian = (major: string) => `pg_createcluster ${q(major)} main --start -o listen_addresses='*' -- --no-sync >/dev/null`;

// PGDG style: data and config in one directory, started with pg_ctl, no pg_ctlcluster registry.
function rhel(major: string): string {
  const [bin, data, home] = [rhelPgBin(major), rhelPgData(major), `/var/lib/pgsql/${major}`];
  const asPostgres = [
    `${bin}/initdb -D ${data} --no-sync -A peer --auth-host=scram-sha-256 >${home}/initdb.log`,
    `echo "listen_addresses = '*'" >> ${data}/postgresql.conf`,
    `${bin}/pg_ctl -D ${data} -l ${home}/logfile -w start >/dev/null`,
  ].join(' && ');
  return `su -s /bin/sh postgres -c ${q(asPostgres)}`;
}

export async function initPostgres(pid: number, layout: DbLayout, major: string): Promise<void> {
  // initdb + first start take ~2 s here, but over a minute on a loaded 2-core machine (seen with 8 labs at once).
  await inHost(pid, layout === 'rhel' ? rhel(major) : debian(major), { timeoutMs: 240_000 });
}

/** Does the server answer a query on the host's local socket? */
export async function postgresAnswers(pid: number): Promise<boolean> {
  const r = await inHost(pid, `su -s /bin/sh postgres -c "echo 'select 1' | psql -XAt"`, { check: false, timeoutMs: 10_000 });
  return r.code === 0 && r.stdout.trim() === '1';
}
