/**
 * One changing run per cluster: a run that may change hosts takes a lock on each of them, a file
 * /var/lib/runbook/lock (JSON: run id, runbook, owner, controller host, PID, start, lease) written
 * with O_EXCL under flock(1). A second run refuses before any step, naming the holder and how to
 * break the lock. A lock is stale when its process is gone (same controller) or its lease expired
 * (the holder renews it every LEASE_RENEW_MS). See docs/locks.md.
 */
import { hostname, userInfo } from 'node:os';
import { ExitCode, RunbookError, UnreachableError } from '../errors.js';
import type { Executor } from '../engine/gather.js';
import { type Command, sh } from '../shell/command.js';
import type { ExecResult } from '../transport/types.js';

export const LOCK_FILE = '/var/lib/runbook/lock';
const MUTEX = '/var/lib/runbook/.lock.mutex';
export const LEASE_MS = 120_000;
export const LEASE_RENEW_MS = 30_000;
/** attemptAll: how often, and how far apart, a run holding its first host retries the others. */
const RACE_RETRIES = 10;
const RACE_RETRY_MS = 200;
/** A run started by an outer run that holds the lock (the drill) names it here: see docs/locks.md. */
export const LOCK_ENV = 'RUNBOOK_LOCK_HELD';

export interface LockHolder {
  runId: string;
  runbook: string;
  owner: string;
  controller: string;
  pid: number;
  startedAt: string;
  leaseUntil: string;
}

export class LockedError extends RunbookError {
  constructor(
    message: string,
    readonly holder: LockHolder,
  ) {
    super(message, ExitCode.locked);
  }
}

export function lockHolder(runId: string, runbook: string, now = Date.now()): LockHolder {
  return {
    runId,
    runbook,
    owner: safeUser(),
    controller: hostname(),
    pid: process.pid,
    startedAt: new Date(now).toISOString(),
    leaseUntil: new Date(now + LEASE_MS).toISOString(),
  };
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? 'unknown');
  }
}

export function parseHolder(text: string): LockHolder | null {
  try {
    const v = JSON.parse(text.trim()) as Partial<LockHolder>;
    if (typeof v.runId !== 'string' || typeof v.pid !== 'number') return null;
    return {
      runId: v.runId,
      runbook: String(v.runbook ?? '?'),
      owner: String(v.owner ?? '?'),
      controller: String(v.controller ?? '?'),
      pid: v.pid,
      startedAt: String(v.startedAt ?? ''),
      leaseUntil: String(v.leaseUntil ?? ''),
    };
  } catch {
    return null;
  }
}

/** Why a held lock is stale, or undefined when it is live. Pure: the caller says what it sees. */
export function staleReason(h: LockHolder, o: { now: number; controller: string; pidAlive: (pid: number) => boolean }): string | undefined {
  if (h.controller === o.controller && !o.pidAlive(h.pid)) return `its process ${h.pid} on ${h.controller} is gone`;
  const lease = Date.parse(h.leaseUntil);
  if (!Number.isFinite(lease)) return 'it has no readable lease';
  if (lease < o.now) return `its lease expired at ${h.leaseUntil}`;
  return undefined;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function describeHolder(h: LockHolder): string {
  return `run ${h.runId} (${h.runbook}, ${h.owner}@${h.controller} PID ${h.pid}, since ${h.startedAt})`;
}

const serialised = (body: Command): Command =>
  sh`mkdir -p /var/lib/runbook && exec 9>${MUTEX} && flock -w 10 9 || { echo 'cannot take' ${MUTEX} >&2; exit 90; }
f=${LOCK_FILE}
${body}`;

/** Take the lock for `me` (or renew it when it is already ours); prints `held` + the holder's JSON otherwise. */
export function acquireCommand(me: LockHolder, o: { breakRunId?: string; reentrantRunId?: string } = {}): Command {
  const json = JSON.stringify(me);
  const mine = [me.runId, o.reentrantRunId].filter((x): x is string => Boolean(x));
  const removable = o.breakRunId ? [o.breakRunId] : [];
  return serialised(sh`cur=$(cat "$f" 2>/dev/null)
id=$(printf '%s' "$cur" | sed -n 's/.*"runId":"\\([^"]*\\)".*/\\1/p')
for m in ${mine}; do [ -n "$cur" ] && [ "$id" = "$m" ] && { [ "$m" = ${me.runId} ] && printf '%s\\n' ${json} > "$f"; echo "acquired $m"; exit 0; }; done
for b in ${removable.length ? removable : ['']}; do [ -n "$b" ] && [ "$id" = "$b" ] && mv -f "$f" "$f.broken" && cur=; done
if [ -z "$cur" ]; then rm -f "$f"; printf '%s\\n' ${json} > "$f" && { echo "acquired ${me.runId}"; exit 0; }; fi
echo held
printf '%s\\n' "$cur"`);
}

/** Remove the lock only if `runId` still holds it. */
export function releaseCommand(runId: string): Command {
  return serialised(sh`grep -q ${`"runId":"${runId}"`} "$f" 2>/dev/null && rm -f "$f"; true`);
}

export interface HostLockOutcome {
  host: string;
  /** acquired: ours now; reentrant: held by the outer run named in RUNBOOK_LOCK_HELD; held: someone else's. */
  state: 'acquired' | 'reentrant' | 'held' | 'unreachable';
  holder?: LockHolder;
  note?: string;
}

export interface AcquireOptions {
  /** --break-lock RUN_ID: remove that run's lock first. */
  breakRunId?: string;
  /** The outer run that holds the lock (RUNBOOK_LOCK_HELD): its lock counts as ours and stays. */
  heldBy?: string;
  log?: (line: string) => void;
  /**
   * Runs the lock command on every host at once and gives each host's own result: the engine
   * sends it at the head of the run's first batch of reads on each host (one round trip for both).
   * Without it, hosts are tried one after another (by plain execs).
   */
  attemptAll?: (command: Command, hosts: string[]) => Map<string, Promise<ExecResult>>;
}

/**
 * The lock of one run on a set of hosts. `acquire` takes it on every reachable host (an unreachable
 * host cannot be changed either; it is reported), refusing with LockedError when another live run
 * holds any of them — after releasing what it took, so a refused run leaves nothing behind.
 */
export class ClusterLock {
  #timer: NodeJS.Timeout | undefined;
  #taken: string[] = [];
  /** Hosts whose lock a release sent along with the run's last reads removed (releasedOn). */
  #early: string[] = [];
  #retaking: Promise<void> | undefined;

  private constructor(
    private readonly pool: Executor,
    readonly me: LockHolder,
    private readonly o: AcquireOptions,
  ) {}

  get hosts(): readonly string[] {
    return this.#taken;
  }

  static async acquire(pool: Executor, hosts: string[], me: LockHolder, o: AcquireOptions = {}): Promise<ClusterLock> {
    const lock = new ClusterLock(pool, me, o);
    // Without `attemptAll`: one host at a time, in name order: of two runs racing for the same
    // hosts, the one that takes the first host wins and the other is refused there. With it (the
    // lock travels with the run's first reads) all hosts are tried at once, and the same rule
    // holds by a retry: a run that holds its first host (name order) tries again, a few times, the
    // hosts another live run holds (that run, refused at the first host, is releasing them).
    const retried: HostLockOutcome[] = [];
    const sorted = [...hosts].sort();
    const sent = o.attemptAll?.(lock.#command(o.breakRunId), sorted);
    const tryOne = async (h: string) => {
      let out = await lock.#tryHost(h, o.breakRunId, sent?.get(h));
      // A stale lock (dead process, expired lease) is broken once, with a note.
      const why = out.state === 'held' && out.holder ? staleReason(out.holder, { now: Date.now(), controller: me.controller, pidAlive }) : undefined;
      if (why && out.holder) {
        o.log?.(`${out.host}: breaking the stale lock of ${describeHolder(out.holder)}: ${why}`);
        out = await lock.#tryHost(out.host, out.holder.runId);
      }
      retried.push(out);
      if (out.state === 'acquired') lock.#taken.push(h);
      return out;
    };
    if (sent) {
      const settled = await Promise.allSettled(sorted.map(tryOne));
      const failed = settled.find((x): x is PromiseRejectedResult => x.status === 'rejected');
      if (failed) {
        await lock.release();
        throw failed.reason;
      }
      retried.sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
      const firstHeld = retried[0]?.state === 'acquired' || retried[0]?.state === 'reentrant';
      for (let i = 0; firstHeld && i < RACE_RETRIES && retried.some((x) => x.state === 'held'); i++) {
        await new Promise((r) => setTimeout(r, RACE_RETRY_MS));
        for (const [k, x] of retried.entries())
          if (x.state === 'held') {
            const again = await lock.#tryHost(x.host, o.breakRunId);
            retried[k] = again;
            if (again.state === 'acquired') lock.#taken.push(x.host);
          }
      }
    } else
      for (const h of sorted) {
        if ((await tryOne(h)).state === 'held') break;
      }
    const held = retried.filter((x) => x.state === 'held');
    if (held.length) {
      await lock.release();
      const first = held[0]!.holder;
      const who = first ? describeHolder(first) : 'another run';
      const where = held.map((x) => x.host).join(', ');
      throw new LockedError(
        `${where}: locked by ${who}: another run is changing this cluster. No host was changed. ` +
          `Wait for it to end, or, if it is dead: --break-lock ${first?.runId ?? 'RUN_ID'}`,
        first ?? lockHolder('?', '?'),
      );
    }
    for (const x of retried) if (x.state === 'unreachable') o.log?.(`${x.host}: not locked (unreachable: ${x.note})`);
    lock.#timer = setInterval(() => void lock.#renew(), LEASE_RENEW_MS);
    lock.#timer.unref();
    return lock;
  }

  #command(breakRunId?: string): Command {
    return acquireCommand(this.me, { ...(breakRunId ? { breakRunId } : {}), ...(this.o.heldBy ? { reentrantRunId: this.o.heldBy } : {}) });
  }

  /** One try on `host`: by a plain exec, or through `sent` (the lock already on its way in a batch). */
  async #tryHost(host: string, breakRunId?: string, sent?: Promise<ExecResult>): Promise<HostLockOutcome> {
    try {
      const r = await (sent ?? this.pool.exec(host, this.#command(breakRunId), { become: true, timeoutSec: 30 }));
      if (r.exitCode !== 0) return { host, state: 'unreachable', note: `lock command failed (exit ${r.exitCode}): ${r.stderr.trim()}` };
      const m = /^acquired (.*)$/m.exec(r.stdout);
      if (m) return { host, state: m[1] === this.me.runId ? 'acquired' : 'reentrant' };
      const holder = parseHolder(r.stdout.replace(/^held\n/, '')) ?? undefined;
      return { host, state: 'held', ...(holder ? { holder } : {}) };
    } catch (error) {
      if (error instanceof UnreachableError) return { host, state: 'unreachable', note: error.reason };
      throw error;
    }
  }

  async #renew(): Promise<void> {
    this.me.leaseUntil = new Date(Date.now() + LEASE_MS).toISOString();
    await Promise.allSettled(this.#taken.map((h) => this.pool.exec(h, acquireCommand(this.me), { become: true, timeoutSec: 30 })));
  }

  /** The command that releases our lock on `host` (to send with other work), while we hold it there. */
  releaseCommandFor(host: string): Command | undefined {
    return this.#taken.includes(host) ? releaseCommand(this.me.runId) : undefined;
  }

  /**
   * The release sent with other work on `host` came back: with exit 0 the host is no longer ours
   * (not renewed, not released again; `retake` takes it back). Otherwise it stays ours and
   * release() removes it at the end, as always.
   */
  releasedOn(host: string, result: ExecResult): void {
    if (result.exitCode !== 0 || !this.#taken.includes(host)) return;
    this.#taken = this.#taken.filter((h) => h !== host);
    this.#early.push(host);
  }

  /**
   * Take the lock again on the hosts released early (before anything applies there after all).
   * Refuses with LockedError, keeping what it took, when another live run took a host meanwhile.
   */
  retake(): Promise<void> {
    if (this.#early.length) {
      const hosts = this.#early;
      this.#early = [];
      this.#retaking = this.#retakeHosts(hosts);
    }
    // Every apply waits for the same retake (and meets its refusal).
    return this.#retaking ?? Promise.resolve();
  }

  async #retakeHosts(hosts: string[]): Promise<void> {
    for (const h of hosts) {
      const out = await this.#tryHost(h);
      if (out.state === 'acquired') this.#taken.push(h);
      else if (out.state === 'held')
        throw new LockedError(`${h}: locked by ${out.holder ? describeHolder(out.holder) : 'another run'} since this run released it; nothing more is changed`, out.holder ?? lockHolder('?', '?'));
    }
  }

  /** Remove our lock from every host that has it (best effort: an unreachable host's lease expires). */
  async release(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    const taken = this.#taken;
    this.#taken = [];
    await Promise.allSettled(taken.map((h) => this.pool.exec(h, releaseCommand(this.me.runId), { become: true, timeoutSec: 30 })));
  }
}
