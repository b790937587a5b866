/**
 * The inventory contract of the PostgreSQL runbooks (docs/inventory-contract.md): a cluster is a
 * group of hosts, one of them the *intended* primary. The inventory never says which node is the
 * primary *now*; steps read that from the servers (pg_is_in_recovery()).
 */
import type { HostView, RunContext, StepContext } from '../../engine/types.js';
import { param } from '../../engine/define.js';
import type { Secret } from '../../shell/secret.js';
import { conninfoString } from '../../shell/config-text.js';
import type { PgConn } from './facts.js';
import type { PgLayout } from './layout.js';

/** Params every PostgreSQL runbook takes. */
export const pgParams = {
  cluster_group: param.string({ description: 'inventory group of the cluster nodes', default: 'postgres' }),
  replication_user: param.string({ description: 'role used for streaming replication and pg_rewind', default: 'replicator' }),
  replication_password: param.secret({ description: 'password of the replication role (--secret replication_password=env:VAR, or a secret inventory var)' }),
  vip: param.string({ description: 'optional service address that follows the primary (managed by the VIP steps, not here)' }),
};

export interface PgParams {
  cluster_group: string;
  replication_user: string;
  replication_password: Secret | undefined;
  vip: string | undefined;
}

export interface PgNode {
  name: string;
  /** How the other nodes reach it (ansible_host or the name). */
  address: string;
  port: number;
  /** application_name it uses as a standby (var pg_application_name, default the host name). */
  applicationName: string;
  /** Slot the primary keeps for it (var pg_slot_name, default the sanitized host name). */
  slotName: string;
  intendedPrimary: boolean;
  vars: Record<string, unknown>;
}

export interface PgCluster {
  group: string;
  nodes: PgNode[];
  intendedPrimary: PgNode;
  replicationUser: string;
  password: Secret | undefined;
}

/** A slot name PostgreSQL accepts: [a-z0-9_], at most 63 characters. */
export function sanitizeSlotName(name: string): string {
  const s = name.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 63);
  return s === '' ? 'standby' : s;
}

function varString(vars: Record<string, unknown>, key: string): string | undefined {
  const v = vars[key];
  return v === undefined || v === null || v === '' ? undefined : String(v);
}

/**
 * Resolve the cluster from the inventory, or the list of problems (for RunbookDef.validate).
 * Intended primary: a `pg_primary` var (the nodes must agree), else the one node in a group
 * `pg_primary`, else the first host of the group.
 */
export function resolveCluster(ctx: Pick<RunContext<unknown>, 'select'>, params: PgParams): PgCluster | string[] {
  const errors: string[] = [];
  let hosts: HostView[];
  try {
    hosts = ctx.select(params.cluster_group);
  } catch (e) {
    return [`cluster group ${params.cluster_group}: ${(e as Error).message}`];
  }
  if (hosts.length < 2) return [`cluster group ${params.cluster_group} needs at least 2 hosts, it has ${hosts.length}`];

  const named = new Set(hosts.map((h) => varString(h.vars, 'pg_primary')).filter((v): v is string => v !== undefined));
  let primaryName: string | undefined;
  if (named.size > 1) errors.push(`the nodes of ${params.cluster_group} disagree on pg_primary: ${[...named].join(', ')}`);
  else if (named.size === 1) primaryName = [...named][0];
  else {
    const inGroup = hosts.filter((h) => h.groups.includes('pg_primary'));
    if (inGroup.length > 1) errors.push(`group pg_primary holds several nodes of ${params.cluster_group}: ${inGroup.map((h) => h.name).join(', ')}`);
    primaryName = inGroup[0]?.name ?? hosts[0]!.name;
  }
  if (primaryName !== undefined && !hosts.some((h) => h.name === primaryName))
    errors.push(`pg_primary ${primaryName} is not a host of group ${params.cluster_group} (${hosts.map((h) => h.name).join(', ')})`);

  const nodes: PgNode[] = hosts.map((h) => ({
    name: h.name,
    address: h.address,
    port: Number(varString(h.vars, 'pg_port') ?? 5432),
    applicationName: varString(h.vars, 'pg_application_name') ?? h.name,
    slotName: sanitizeSlotName(varString(h.vars, 'pg_slot_name') ?? h.name),
    intendedPrimary: h.name === primaryName,
    vars: h.vars,
  }));
  const slots = new Map<string, string>();
  for (const n of nodes) {
    const other = slots.get(n.slotName);
    if (other) errors.push(`${n.name} and ${other} would share the replication slot ${n.slotName}: set pg_slot_name on one`);
    slots.set(n.slotName, n.name);
    if (!Number.isInteger(n.port) || n.port <= 0) errors.push(`${n.name}: pg_port must be a port number`);
    // The server keeps printable ASCII only (others become ?) and 63 bytes: a name it would change could never be matched.
    if (!/^[\x20-\x7e]{1,63}$/.test(n.applicationName)) errors.push(`${n.name}: pg_application_name ${JSON.stringify(n.applicationName)} must be 1-63 printable ASCII characters (PostgreSQL replaces others with ?)`);
    // The address goes into pg_hba.conf and conninfo strings: an IP or a host name, nothing that could add a field.
    if (!/^[A-Za-z0-9][A-Za-z0-9.:-]*$/.test(n.address)) errors.push(`${n.name}: address (ansible_host) ${JSON.stringify(n.address)} must be an IP address or a host name`);
  }
  if (!params.replication_password) errors.push('replication_password is required: --secret replication_password=env:VAR, or a secret inventory var replication_password');
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(params.replication_user)) errors.push(`replication_user ${JSON.stringify(params.replication_user)} must be a plain identifier`);
  if (errors.length) return errors;
  return {
    group: params.cluster_group,
    nodes,
    intendedPrimary: nodes.find((n) => n.intendedPrimary)!,
    replicationUser: params.replication_user,
    password: params.replication_password,
  };
}

/** resolveCluster for steps, where validate() has already passed. */
export function clusterOf(ctx: Pick<RunContext<PgParams>, 'select' | 'params'>): PgCluster {
  const c = resolveCluster(ctx, ctx.params);
  if (Array.isArray(c)) throw new Error(c.join('; '));
  return c;
}

export function nodeOf(cluster: PgCluster, name: string): PgNode {
  const n = cluster.nodes.find((x) => x.name === name);
  if (!n) throw new Error(`${name} is not a node of cluster group ${cluster.group}`);
  return n;
}

export function peersOf(cluster: PgCluster, name: string): PgNode[] {
  return cluster.nodes.filter((n) => n.name !== name);
}

/** psql connection to a node from its own host; the bin dir only when the inventory gives it. */
export function connOfNode(n: PgNode): PgConn {
  const bin = varString(n.vars, 'pg_bin_dir');
  return bin ? { port: n.port, bin } : { port: n.port };
}

export function connOfLayout(l: PgLayout): PgConn {
  return { port: l.port, bin: l.binDir };
}

/** What a standby puts in primary_conninfo: no password (it comes from ~postgres/.pgpass). */
export function conninfoFor(cluster: PgCluster, primary: PgNode, standby: PgNode): string {
  return conninfoString(`${standby.name}: primary_conninfo`, [
    ['host', primary.address],
    ['port', primary.port],
    ['user', cluster.replicationUser],
    ['application_name', standby.applicationName],
  ]);
}

/** key=value pairs of a libpq conninfo string (values possibly single-quoted). */
export function parseConninfo(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /\s*([A-Za-z_]+)\s*=\s*('((?:[^'\\]|\\.)*)'|\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) out[m[1]!] = m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : m[2]!;
  return out;
}

/** The state key under which the inspect step leaves each host's layout. */
export const LAYOUT_KEY = 'pg.layout';

export function layoutOf(ctx: Pick<StepContext<unknown>, 'state' | 'host'>): PgLayout {
  const l = ctx.state[LAYOUT_KEY] as PgLayout | undefined;
  if (!l) throw new Error(`${ctx.host.name}: no PostgreSQL layout known (the inspect step did not run on this host)`);
  return l;
}
