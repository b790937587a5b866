/**
 * The drill's real workload: pgbench (TPC-B-like, several clients) against the service address,
 * beside the probe. pgbench's clients abort when their server goes away and do not reconnect, so
 * the workload runs pgbench in short rounds, back to back, and starts the next round as soon as
 * the service answers again. Its own counters (committed, failed, aborted clients) are summed;
 * each committed TPC-B transaction inserts one pgbench_history row, which the drill counts on
 * the final primary. Per-second counts come from pgbench's aggregated transaction log.
 */
import { spawn } from 'node:child_process';
import { access, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Secret } from '../shell/secret.js';

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
  committed: number;
  failed: number;
  abortedClients: number;
  /** First error line, when the round did not run to its end. */
  error?: string;
}

export interface WorkloadResult {
  tool: 'pgbench';
  clients: number;
  rounds: number;
  /** Transactions pgbench saw committed (acknowledged), over every round. */
  committed: number;
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
}

/** "pgbench[:clients]" → clients; undefined for anything else. */
export function parseWorkloadSpec(spec: string): { clients: number } | undefined {
  const m = /^pgbench(?::(\d{1,3}))?$/.exec(spec.trim());
  if (!m) return undefined;
  const clients = m[1] ? Number(m[1]) : 4;
  return clients >= 1 && clients <= 100 ? { clients } : undefined;
}

/** pgbench's summary: committed ("actually processed"), failed, and aborted clients. */
export function parsePgbenchOutput(stdout: string, stderr: string): { committed: number; failed: number; abortedClients: number } {
  const num = (re: RegExp): number => Number(re.exec(stdout)?.[1] ?? 0);
  return {
    committed: num(/number of transactions actually processed:\s*(\d+)/),
    failed: num(/number of failed transactions:\s*(\d+)/),
    // pgbench 14+ also says "client N script S aborted in command C query Q" (a query's error).
    abortedClients: (stderr.match(/client \d+ (?:script \d+ )?aborted/g) ?? []).length,
  };
}

/** Lines of `--aggregate-interval=1` logs: interval start (epoch s) and transactions in it. */
export function parseAggregateLog(text: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const line of text.split('\n')) {
    const [start, count] = line.trim().split(/\s+/);
    if (start && count && /^\d+$/.test(start) && /^\d+$/.test(count)) out.push([Number(start), Number(count)]);
  }
  return out;
}

export function sumPerSecond(series: ReadonlyArray<readonly [number, number]>): Array<[number, number]> {
  const by = new Map<number, number>();
  for (const [t, n] of series) by.set(t, (by.get(t) ?? 0) + n);
  return [...by.entries()].sort((a, b) => a[0] - b[0]);
}

/** Compare pgbench's count with what the final primary holds. */
export function withHistory(r: WorkloadResult, historyRows: number): WorkloadResult {
  return {
    ...r,
    history_rows: historyRows,
    lost: Math.max(0, r.committed - historyRows),
    unacknowledged_present: Math.max(0, historyRows - r.committed),
  };
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
    return {
      tool: 'pgbench',
      clients: this.clients,
      rounds: this.rounds.length,
      committed: this.committed,
      failed: this.rounds.reduce((s, r) => s + r.failed, 0),
      aborted_clients: this.rounds.reduce((s, r) => s + r.abortedClients, 0),
      refused_rounds: this.rounds.filter((r) => r.committed === 0 && r.exitCode !== 0).length,
      per_second: sumPerSecond(this.#series),
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
        '-l', '--aggregate-interval=1', `--log-prefix=${prefix}`, conninfo(this.target),
      ];
      const r = await runPgbench(this.bin, args, this.target.password, this.#dir);
      const counts = parsePgbenchOutput(r.stdout, r.stderr);
      const round: WorkloadRound = { startedAt, endedAt: Date.now(), exitCode: r.code, ...counts };
      if (r.code !== 0) round.error = lastLine(r.stderr);
      this.rounds.push(round);
      for (const f of (await readdir(this.#dir)).filter((x) => x.startsWith(`${prefix}.`))) {
        this.#series.push(...parseAggregateLog(await readFile(join(this.#dir, f), 'utf8')));
        await rm(join(this.#dir, f), { force: true });
      }
      // Could not connect: the service is down; try again soon, without spinning.
      if (r.code !== 0 && counts.committed === 0) await new Promise((res) => setTimeout(res, 300));
    }
  }
}
