/**
 * The drill's real workload: pgbench (TPC-B-like, several clients) against the service address,
 * beside the probe. pgbench's clients abort when their server goes away and do not reconnect, so
 * the workload runs pgbench in short rounds, back to back, and starts the next round as soon as
 * the service answers again. What counts as acknowledged is pgbench's per-transaction log: a line
 * is written only after the transaction's END returned, so it survives a round that pgbench ends
 * early (its summary does not). Each TPC-B transaction inserts one pgbench_history row, which the
 * drill counts on the final primary: rows ≥ acknowledged always; more rows only from transactions
 * whose connection died with their END in flight (not acknowledged, may have committed), at most
 * one per client of a round that did not end cleanly.
 */
import { spawn } from 'node:child_process';
import { access, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Secret } from '../shell/secret.js';
import { perSecond } from './measures.js';

export const WORKLOAD_DB = 'runbook_drill';

export interface WorkloadTarget {
  host: string;
  port: number;
  user: string;
  password: Secret;
  database: string;
}

export interface WorkloadRound {
  startedAt: number;
  endedAt: number;
  exitCode: number;
  /** Transactions in the per-transaction log that completed (acknowledged). */
  committed: number;
  /** "number of transactions actually processed" of pgbench's summary (absent when it printed none). */
  summaryCommitted?: number;
  failed: number;
  abortedClients: number;
  /** Transactions that may have committed without an acknowledgement: one per client that stopped mid-way. */
  inFlight: number;
  /** First error line, when the round did not run to its end. */
  error?: string;
}

export interface WorkloadResult {
  tool: 'pgbench';
  clients: number;
  /** --workload pgbench:C@TPS: pgbench --rate (transactions per second over all clients). */
  rate?: number;
  rounds: number;
  /** Transactions acknowledged to pgbench (their END returned; per-transaction log), over every round. */
  committed: number;
  /** The same from pgbench's summaries, for comparison (a round ended early prints none). */
  summary_committed: number;
  /**
   * Transactions whose connection died while they ran (clients aborted, rounds ended early): not
   * acknowledged, but their END may have committed. pgbench_history may hold up to this many more
   * rows than `committed`, never fewer.
   */
  in_flight_at_abort: number;
  /** Transactions pgbench counted as failed (serialization/deadlock), over every round. */
  failed: number;
  /** Clients that aborted (their server went away mid-transaction). */
  aborted_clients: number;
  /** Rounds that could not connect at all (the service was down). */
  refused_rounds: number;
  /** [epoch second, committed transactions in it]. */
  per_second: Array<[number, number]>;
  /** Filled in by the drill from the final primary. */
  history_rows?: number;
  /** committed − history_rows when positive: acknowledged transactions that are not there. */
  lost?: number;
  /** history_rows − committed when positive: commits whose acknowledgement never arrived. */
  unacknowledged_present?: number;
  /** The rounds, for the report: when, how each ended, what it counted. */
  round_log?: Array<{ at: number; ms: number; exit: number; acknowledged: number; summary: number | null; aborted: number; error?: string }>;
}

export interface WorkloadSpec {
  clients: number;
  /** Transactions per second over all clients (pgbench --rate); flat out when absent. */
  rate?: number;
}

/** "pgbench[:CLIENTS][@TPS]" → clients (default 4) and rate; undefined for anything else. */
export function parseWorkloadSpec(spec: string): WorkloadSpec | undefined {
  const m = /^pgbench(?::(\d{1,3}))?(?:@(\d{1,6}))?$/.exec(spec.trim());
  if (!m) return undefined;
  const clients = m[1] ? Number(m[1]) : 4;
  if (clients < 1 || clients > 100) return undefined;
  if (m[2] === undefined) return { clients };
  const rate = Number(m[2]);
  return rate >= 1 ? { clients, rate } : undefined;
}

/** pgbench's summary: committed ("actually processed"; undefined without a summary), failed, and aborted clients. */
export function parsePgbenchOutput(stdout: string, stderr: string): { committed: number | undefined; failed: number; abortedClients: number } {
  const num = (re: RegExp): number => Number(re.exec(stdout)?.[1] ?? 0);
  const processed = /number of transactions actually processed:\s*(\d+)/.exec(stdout);
  return {
    committed: processed ? Number(processed[1]) : undefined,
    failed: num(/number of failed transactions:\s*(\d+)/),
    // pgbench 14+ also says "client N script S aborted in command C query Q" (a query's error).
    abortedClients: (stderr.match(/client \d+ (?:script \d+ )?aborted/g) ?? []).length,
  };
}

/**
 * pgbench's per-transaction log ("client_id transaction_no time script_no time_epoch time_us
 * [schedule_lag] [retries]"): the transactions that completed, per epoch second of their end. A
 * numeric `time` is a completed transaction; "failed" and "skipped" are not.
 */
export function parseTransactionLog(text: string): { committed: number; perSecond: Array<[number, number]> } {
  const by = new Map<number, number>();
  let committed = 0;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6 || !/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[4]!)) continue;
    committed++;
    const t = Number(f[4]);
    by.set(t, (by.get(t) ?? 0) + 1);
  }
  return { committed, perSecond: [...by.entries()].sort((a, b) => a[0] - b[0]) };
}

/**
 * How many transactions of a round may have committed unacknowledged: none when it ended cleanly;
 * one per aborted client when pgbench printed its summary; every client when it printed none but
 * had run transactions (it ended early; any client may have been mid-way).
 */
export function inFlightBound(r: { exitCode: number; summaryCommitted?: number; abortedClients: number; committed: number }, clients: number): number {
  if (r.exitCode === 0) return 0;
  if (r.summaryCommitted !== undefined) return Math.min(clients, r.abortedClients);
  return r.committed > 0 || r.abortedClients > 0 ? clients : 0;
}

/** Compare pgbench's acknowledged count with what the final primary holds. */
export function withHistory(r: WorkloadResult, historyRows: number): WorkloadResult {
  return {
    ...r,
    history_rows: historyRows,
    lost: Math.max(0, r.committed - historyRows),
    unacknowledged_present: Math.max(0, historyRows - r.committed),
  };
}

/** The comparison in words, for the report and the log: what is acknowledged, what is there, and what explains a difference. */
export function describeHistory(w: WorkloadResult): string {
  if (w.history_rows === undefined) return `pgbench: ${w.committed} acknowledged; pgbench_history not read`;
  const extra = w.unacknowledged_present ?? 0;
  const head = `pgbench: ${w.committed} acknowledged, pgbench_history ${w.history_rows} rows on the final primary`;
  if ((w.lost ?? 0) > 0) return `${head}: ${w.lost} acknowledged transactions are missing`;
  if (extra === 0) return `${head}: every acknowledged transaction is there, nothing more`;
  const unexplained = extra - w.in_flight_at_abort;
  return `${head}: every acknowledged transaction is there, and ${extra} more rows from transactions in flight when their connection died (not acknowledged, committed anyway; at most ${w.in_flight_at_abort} possible)${
    unexplained > 0 ? ` — ${unexplained} more than that: something else wrote to pgbench_history, or the count is wrong` : ''
  }`;
}

/** pgbench on this machine: PATH, then Debian's and PGDG's server directories. */
export async function findPgbench(): Promise<string | undefined> {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/lib/postgresql/17/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/15/bin', '/usr/pgsql-15/bin'];
  for (const d of dirs) {
    try {
      await access(join(d, 'pgbench'));
      return join(d, 'pgbench');
    } catch {
      /* next */
    }
  }
  return undefined;
}

/**
 * A libpq conninfo for pgbench's dbname argument: short connect timeout and TCP timeouts, so a
 * partitioned server shows up as aborted clients within seconds, not after TCP's 15 minutes.
 * No password: it goes in PGPASSWORD, never in argv.
 */
export function conninfo(t: Omit<WorkloadTarget, 'password'>): string {
  const q = (v: string | number): string => `'${String(v).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  return [
    `host=${q(t.host)}`, `port=${q(t.port)}`, `user=${q(t.user)}`, `dbname=${q(t.database)}`,
    'connect_timeout=2', 'keepalives_idle=2', 'keepalives_interval=1', 'keepalives_count=2', 'tcp_user_timeout=4000',
    'application_name=runbook-drill-workload',
  ].join(' ');
}

interface Spawned {
  code: number;
  stdout: string;
  stderr: string;
}

function runPgbench(bin: string, args: string[], password: Secret, cwd: string): Promise<Spawned> {
  return new Promise((resolve) => {
    const child = spawn(bin, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PGPASSWORD: password.reveal(), PGCONNECT_TIMEOUT: '2' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', (e) => resolve({ code: 127, stdout, stderr: `${stderr}${e.message}` }));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** pgbench -i: the four tables at scale 1, generated server-side. */
export async function initPgbench(bin: string, target: WorkloadTarget): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'runbook-pgbench-'));
  try {
    const r = await runPgbench(bin, ['-i', '-q', '-s', '1', '-I', 'dtGvp', conninfo(target)], target.password, dir);
    if (r.code !== 0) throw new Error(`pgbench -i against ${target.host}:${target.port} failed (exit ${r.code}): ${lastLine(r.stderr)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function lastLine(text: string): string {
  return text.trim().split('\n').filter((l) => l.trim()).pop() ?? '';
}

export class PgbenchWorkload {
  readonly rounds: WorkloadRound[] = [];
  #running = false;
  #loop: Promise<void> | undefined;
  #series: Array<[number, number]> = [];
  #dir: string | undefined;

  constructor(
    readonly bin: string,
    readonly target: WorkloadTarget,
    readonly clients: number,
    readonly rate?: number,
    readonly roundSec = 5,
  ) {}

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  get committed(): number {
    return this.rounds.reduce((s, r) => s + r.committed, 0);
  }

  /** Ends after the round in flight (at most roundSec + the TCP timeouts). */
  async stop(): Promise<WorkloadResult> {
    this.#running = false;
    await this.#loop;
    if (this.#dir) await rm(this.#dir, { recursive: true, force: true });
    const sum = (f: (r: WorkloadRound) => number): number => this.rounds.reduce((s, r) => s + f(r), 0);
    return {
      tool: 'pgbench',
      clients: this.clients,
      ...(this.rate !== undefined ? { rate: this.rate } : {}),
      rounds: this.rounds.length,
      committed: this.committed,
      summary_committed: sum((r) => r.summaryCommitted ?? 0),
      in_flight_at_abort: sum((r) => r.inFlight),
      failed: sum((r) => r.failed),
      aborted_clients: sum((r) => r.abortedClients),
      refused_rounds: this.rounds.filter((r) => r.committed === 0 && r.exitCode !== 0).length,
      per_second: perSecond(this.#series),
      round_log: this.rounds.map((r) => ({
        at: r.startedAt, ms: r.endedAt - r.startedAt, exit: r.exitCode, acknowledged: r.committed, summary: r.summaryCommitted ?? null, aborted: r.abortedClients,
        ...(r.error ? { error: r.error } : {}),
      })),
    };
  }

  async #run(): Promise<void> {
    this.#dir = await mkdtemp(join(tmpdir(), 'runbook-workload-'));
    let n = 0;
    while (this.#running) {
      const prefix = `round${n++}`;
      const startedAt = Date.now();
      const args = [
        '-n', '-c', String(this.clients), '-j', String(Math.min(this.clients, 2)), '-T', String(this.roundSec),
        ...(this.rate !== undefined ? ['--rate', String(this.rate)] : []),
        '-l', `--log-prefix=${prefix}`, conninfo(this.target),
      ];
      const r = await runPgbench(this.bin, args, this.target.password, this.#dir);
      const summary = parsePgbenchOutput(r.stdout, r.stderr);
      let committed = 0;
      for (const f of (await readdir(this.#dir)).filter((x) => x.startsWith(`${prefix}.`))) {
        const log = parseTransactionLog(await readFile(join(this.#dir, f), 'utf8'));
        committed += log.committed;
        this.#series.push(...log.perSecond);
        await rm(join(this.#dir, f), { force: true });
      }
      const round: WorkloadRound = {
        startedAt, endedAt: Date.now(), exitCode: r.code, committed, failed: summary.failed, abortedClients: summary.abortedClients, inFlight: 0,
        ...(summary.committed !== undefined ? { summaryCommitted: summary.committed } : {}),
      };
      round.inFlight = inFlightBound(round, this.clients);
      if (r.code !== 0) round.error = lastLine(r.stderr);
      this.rounds.push(round);
      // Could not connect: the service is down; try again soon, without spinning.
      if (r.code !== 0 && committed === 0) await new Promise((res) => setTimeout(res, 300));
    }
  }
}
