/**
 * The cluster as it really is, from each node's own answer to pg_is_in_recovery() — never from
 * the inventory. Pure: statuses in, roles and the safety verdicts out.
 */
import { onHost, perHost } from '../../engine/define.js';
import type { Fact, FactGroup } from '../../engine/types.js';
import { type PgStatus, statusFact } from './facts.js';
import { type PgCluster, type PgNode, connOfNode, parseConninfo } from './cluster.js';

export type Statuses = Record<string, PgStatus>;

/** One fact per node, each read on that node's host: a typed record by node name (`f.status.pg1`). */
export function eachNode<T>(nodes: PgNode[], f: (n: PgNode) => Fact<T>): FactGroup<Record<string, T>> {
  return perHost(nodes, (n) => n.name, (n) => onHost(n.name, f(n)));
}

/** Every node's status, each read on its own host: `gather: (ctx) => ({ status: clusterStatus(c) })`. */
export function clusterStatus(cluster: PgCluster): FactGroup<Statuses> {
  return eachNode(cluster.nodes, (n) => statusFact(connOfNode(n)));
}

export interface Topology {
  /** Nodes that answer and are not in recovery. */
  writable: PgNode[];
  /** Nodes that answer and are in recovery. */
  inRecovery: PgNode[];
  down: PgNode[];
  /** The one writable node, when there is exactly one. */
  primary: PgNode | undefined;
}

export function topology(cluster: PgCluster, statuses: Statuses): Topology {
  const writable = cluster.nodes.filter((n) => statuses[n.name]?.up && !(statuses[n.name] as { inRecovery: boolean }).inRecovery);
  const inRecovery = cluster.nodes.filter((n) => statuses[n.name]?.up && (statuses[n.name] as { inRecovery: boolean }).inRecovery);
  const down = cluster.nodes.filter((n) => !statuses[n.name]?.up);
  return { writable, inRecovery, down, primary: writable.length === 1 ? writable[0] : undefined };
}

export function names(nodes: PgNode[]): string {
  return nodes.map((n) => n.name).join(', ');
}

/** The refusal no flag overrides: two writable nodes is split brain. */
export function splitBrain(t: Topology): string | undefined {
  if (t.writable.length > 1)
    return `${names(t.writable)} are all writable (pg_is_in_recovery() = f): split brain. Refusing to act; stop the node whose writes you give up, then run failback`;
  return undefined;
}

/** Is `node` a standby of `primary` by its own configuration (primary_conninfo host)? */
export function followsPrimary(status: PgStatus | undefined, primary: PgNode): boolean {
  if (!status?.up || !status.inRecovery) return false;
  const host = parseConninfo(status.primaryConninfo).host;
  return host === primary.address || host === primary.name;
}

/** A stand-alone server nobody uses yet (fresh initdb): the one writable node setup may clone over. */
export function isPristine(s: PgStatus): boolean {
  return s.up && !s.inRecovery && s.userDatabases.length === 0 && s.userTables === 0 && s.clients === 0;
}
