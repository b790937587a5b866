/**
 * What the write probe needs on the cluster: a login role with a password made for this drill, a
 * probe table on the primary (it replicates), and a pg_hba entry on every node for the address the
 * drill connects from — the address each node sees in $SSH_CLIENT, so no guess is needed.
 */
import { randomBytes } from 'node:crypto';
import { psqlCommand } from '../modules/postgres/facts.js';
import { connOfLayout } from '../modules/postgres/cluster.js';
import { blockCommand } from '../core/file-ops.js';
import { sql } from '../shell/sql.js';
import { raw } from '../shell/command.js';
import { Secret, secret } from '../shell/secret.js';
import { scramVerifier } from '../modules/postgres/scram.js';
import type { ClusterReader } from './cluster-reader.js';
import { WORKLOAD_DB } from './workload.js';

export const PROBE_ROLE = 'runbook_drill';
export const PROBE_TABLE = 'runbook_drill_probe';
const HBA_BLOCK = 'drill-probe';

export async function clientAddressSeenBy(reader: ClusterReader, host: string): Promise<string> {
  const r = await reader.exec(host, raw('echo "$SSH_CLIENT"'), { check: true });
  const address = r.stdout.trim().split(/\s+/)[0];
  if (!address) throw new Error(`${host}: cannot tell the drill's client address ($SSH_CLIENT is empty)`);
  return address;
}

/** Role, table and pg_hba entries; returns the probe's password (a secret, new every drill, stored as a SCRAM verifier). */
export async function prepareProbe(reader: ClusterReader, primary: string, nodes: string[]): Promise<Secret> {
  const password = secret(randomBytes(18).toString('base64url'), 'drill probe password');
  // Each node's pg_hba on its own connection, side by side: a round trip each, not one after the other.
  await Promise.all(nodes.map(async (host) => {
    const layout = await reader.layout(host);
    const status = await reader.status(host);
    const hbaFile = status.up ? status.hbaFile : `${layout.configDir}/pg_hba.conf`;
    const address = await clientAddressSeenBy(reader, host);
    const mask = address.includes(':') ? '128' : '32';
    const block = `host postgres,${WORKLOAD_DB} ${PROBE_ROLE} ${address}/${mask} scram-sha-256`;
    const edit = blockCommand({ path: hbaFile, marker: HBA_BLOCK, block, insert: 'top', mode: '0640', owner: 'postgres', group: 'postgres' }, true, true);
    await reader.exec(host, edit, { become: true, check: true });
    if (status.up) await reader.exec(host, psqlCommand(connOfLayout(layout), sql`SELECT pg_reload_conf()`), { become: true, check: true });
  }));
  const conn = connOfLayout(await reader.layout(primary));
  // The server gets a SCRAM verifier, never the password: no statement or log line holds it.
  const verifier = new Secret(scramVerifier(password.reveal()), 'drill probe password (SCRAM verifier)', false);
  const setup = sql`DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${PROBE_ROLE}) THEN CREATE ROLE ${sql.ident(PROBE_ROLE)} LOGIN; END IF;
END $$;
ALTER ROLE ${sql.ident(PROBE_ROLE)} PASSWORD ${verifier};
CREATE TABLE IF NOT EXISTS ${sql.ident(PROBE_TABLE)} (id bigint PRIMARY KEY, client_sent_at timestamptz, server_at timestamptz DEFAULT now());
TRUNCATE ${sql.ident(PROBE_TABLE)};
GRANT SELECT, INSERT ON ${sql.ident(PROBE_TABLE)} TO ${sql.ident(PROBE_ROLE)};`;
  await reader.exec(primary, psqlCommand(conn, setup), { become: true, check: true });
  return password;
}

/** The workload's own database, owned by the probe role (pgbench -i then runs as that role). */
export async function prepareWorkloadDb(reader: ClusterReader, primary: string): Promise<void> {
  const conn = connOfLayout(await reader.layout(primary));
  const q = sql`SELECT format('CREATE DATABASE %I OWNER %I', ${WORKLOAD_DB}::text, ${PROBE_ROLE}::text) WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = ${WORKLOAD_DB})
\\gexec`;
  await reader.exec(primary, psqlCommand(conn, q), { become: true, check: true });
}

/** Probe ids present on a node. */
export async function probeIdsOn(reader: ClusterReader, host: string): Promise<Set<number>> {
  const conn = connOfLayout(await reader.layout(host));
  const r = await reader.exec(host, psqlCommand(conn, sql`SELECT id FROM ${sql.ident(PROBE_TABLE)} ORDER BY id`), { become: true, check: true });
  return new Set(r.stdout.split(/[\x1e\n]/).map((s) => s.trim()).filter(Boolean).map(Number));
}
