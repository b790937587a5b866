/**
 * The drill's own eyes on the cluster, over the project's SSH transport: each node's layout and
 * status, replication, slots, and who holds the VIP. Reads only; never trusts a runbook's report.
 */
import type { Fact } from '../engine/types.js';
import { addressesFact } from '../modules/vip/facts.js';
import { layoutFact } from '../modules/postgres/layout-facts.js';
import { parseRows, psqlCommand, replicationFact, slotsFact, statusFact, walReceiverFact, type PgStatus, type PgSender, type PgSlot, type PgWalReceiver } from '../modules/postgres/facts.js';
import { sql } from '../shell/sql.js';
import type { ReplicationMode } from './budget.js';
import { connOfLayout } from '../modules/postgres/cluster.js';
import type { PgLayout } from '../modules/postgres/layout.js';
import type { Command } from '../shell/command.js';
import type { ExecOptions, ExecResult, HostConnection, Transport } from '../transport/types.js';
import type { ConnectionSpec } from '../inventory/types.js';

export interface NodeSnapshot {
  host: string;
  status: PgStatus | { up: false; error: string };
  holdsVip: boolean;
  /** The host could not be reached over SSH (partitioned, down). */
  unreachable?: string;
}

export class ClusterReader {
  readonly #layouts = new Map<string, PgLayout>();
  readonly #connections = new Map<string, Promise<HostConnection>>();

  constructor(
    readonly transport: Transport,
    readonly specs: Map<string, ConnectionSpec>,
    readonly vars: Map<string, Record<string, unknown>>,
    readonly vip: string | undefined,
  ) {}

  async exec(host: string, command: Command, options: ExecOptions = {}): Promise<ExecResult> {
    return (await this.#connect(host)).exec(command, { timeoutSec: 60, ...options });
  }

  async read<T>(host: string, fact: Fact<T>, timeoutSec?: number): Promise<T> {
    return fact.parse(await this.exec(host, fact.command, { become: fact.become, ...(timeoutSec ? { timeoutSec } : {}) }));
  }

  async layout(host: string): Promise<PgLayout> {
    const known = this.#layouts.get(host);
    if (known) return known;
    const layout = await this.read(host, layoutFact(this.vars.get(host) ?? {}));
    if (typeof layout === 'string') throw new Error(`${host}: cannot tell the PostgreSQL layout: ${layout}`);
    this.#layouts.set(host, layout);
    return layout;
  }

  async status(host: string, timeoutSec?: number): Promise<PgStatus> {
    return this.read(host, statusFact(connOfLayout(await this.layout(host))), timeoutSec);
  }

  /** What the primary's settings promise: synchronous standbys and synchronous_commit. */
  async replicationMode(host: string): Promise<ReplicationMode> {
    const q = sql`SELECT current_setting('synchronous_standby_names'), current_setting('synchronous_commit'),
  coalesce((SELECT string_agg(application_name, ',') FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')), '');`;
    const r = await this.exec(host, psqlCommand(connOfLayout(await this.layout(host)), q), { become: true, check: true });
    const [names, commit, sync] = parseRows(r.stdout)[0] ?? [];
    return { synchronous_standby_names: names ?? '', synchronous_commit: commit ?? '', sync_standbys: (sync ?? '').split(',').filter(Boolean) };
  }

  async senders(host: string): Promise<PgSender[]> {
    return (await this.read(host, replicationFact(connOfLayout(await this.layout(host))))) ?? [];
  }

  async slots(host: string): Promise<PgSlot[]> {
    return (await this.read(host, slotsFact(connOfLayout(await this.layout(host))))) ?? [];
  }

  async walReceiver(host: string): Promise<PgWalReceiver | null> {
    return this.read(host, walReceiverFact(connOfLayout(await this.layout(host))));
  }

  /** Every node at once; an unreachable node is a snapshot too, not an exception. */
  async snapshot(hosts: string[]): Promise<NodeSnapshot[]> {
    return Promise.all(
      hosts.map(async (host): Promise<NodeSnapshot> => {
        try {
          const [status, addrs] = await Promise.all([
            this.status(host),
            this.vip ? this.read(host, addressesFact) : Promise.resolve([]),
          ]);
          return { host, status, holdsVip: addrs.some((a) => a.address === this.vip) };
        } catch (error) {
          this.#connections.delete(host);
          const reason = error instanceof Error ? error.message : String(error);
          return { host, status: { up: false, error: reason }, holdsVip: false, unreachable: reason };
        }
      }),
    );
  }

  /** Forget a host's connection (after a partition heals, the old one is dead). */
  forget(host: string): void {
    const c = this.#connections.get(host);
    this.#connections.delete(host);
    void c?.then((conn) => conn.close()).catch(() => undefined);
  }

  async #connect(host: string): Promise<HostConnection> {
    let c = this.#connections.get(host);
    if (!c) {
      const spec = this.specs.get(host);
      if (!spec) throw new Error(`${host} is not in the inventory`);
      c = this.transport.connect(spec);
      c.catch(() => this.#connections.delete(host));
      this.#connections.set(host, c);
    }
    return c;
  }
}

export function writable(snapshots: NodeSnapshot[]): NodeSnapshot[] {
  return snapshots.filter((s) => s.status.up && !s.status.inRecovery);
}
