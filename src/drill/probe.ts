/**
 * The drill's write probe: one INSERT every intervalMs against the service address, each with
 * its client timestamps, acknowledged ids kept locally. A write that fails drops the connection,
 * and the next tick reconnects, so the probe follows the VIP (or the new primary) by itself.
 * Timeouts are short so that a partitioned server shows up as failures, not as one long hang.
 */
import pg from 'pg';
import type { Secret } from '../shell/secret.js';
import type { ProbeSample } from './types.js';

export interface ProbeTarget {
  host: string;
  port: number;
  user: string;
  password: Secret;
  database: string;
  table: string;
}

export interface ProbeOptions {
  intervalMs?: number;
  /** Per connect and per insert. */
  timeoutMs?: number;
}

export class WriteProbe {
  readonly samples: ProbeSample[] = [];
  #client: pg.Client | undefined;
  #running = false;
  #loop: Promise<void> | undefined;
  #nextId = 1;

  constructor(
    readonly target: ProbeTarget,
    readonly options: ProbeOptions = {},
  ) {}

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  /** Stop after the write in flight; returns every sample. */
  async stop(): Promise<ProbeSample[]> {
    this.#running = false;
    await this.#loop;
    await this.#disconnect();
    return this.samples;
  }

  /** Acknowledged writes so far. */
  get acknowledged(): number {
    return this.samples.filter((s) => s.ackAt !== undefined).length;
  }

  async #run(): Promise<void> {
    const interval = this.options.intervalMs ?? 100;
    while (this.#running) {
      const started = Date.now();
      await this.#writeOnce();
      const wait = started + interval - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }

  async #writeOnce(): Promise<void> {
    const sample: ProbeSample = { id: this.#nextId++, sentAt: Date.now() };
    this.samples.push(sample);
    try {
      const client = await this.#connect();
      await client.query({
        text: `INSERT INTO ${pg.escapeIdentifier(this.target.table)} (id, client_sent_at) VALUES ($1, to_timestamp($2 / 1000.0))`,
        values: [sample.id, sample.sentAt],
      });
      sample.ackAt = Date.now();
    } catch (error) {
      sample.error = error instanceof Error ? error.message : String(error);
      await this.#disconnect();
    }
  }

  async #connect(): Promise<pg.Client> {
    if (this.#client) return this.#client;
    const timeout = this.options.timeoutMs ?? 1000;
    const client = new pg.Client({
      host: this.target.host,
      port: this.target.port,
      user: this.target.user,
      password: this.target.password.reveal(),
      database: this.target.database,
      connectionTimeoutMillis: timeout,
      query_timeout: timeout,
      keepAlive: true,
      application_name: 'runbook-drill-probe',
    });
    // A dropped server emits 'error' on an idle client; without a listener it would crash us.
    client.on('error', () => void this.#disconnect());
    try {
      await client.connect();
    } catch (error) {
      void client.end().catch(() => undefined);
      throw error;
    }
    this.#client = client;
    return client;
  }

  async #disconnect(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    if (client) await Promise.race([client.end().catch(() => undefined), new Promise((r) => setTimeout(r, 500))]);
  }
}
