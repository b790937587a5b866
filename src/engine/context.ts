/** Everything a running step needs, built once per run by run.ts (or by tests). */
import { createHash } from 'node:crypto';
import type { Command, CommandPart } from '../shell/command.js';
import type { ExecOptions, ExecResult, HostConnection } from '../transport/types.js';
import { InterruptedError } from '../errors.js';
import type { Executor } from './gather.js';
import type { HostView, RunContext } from './types.js';
import type { ActionView } from './actions.js';
import type { Alongside, RunLockHooks } from './alongside.js';

export interface Approvals {
  /** --yes: every confirmation approved. */
  all: boolean;
  /** --approve STEP_ID. */
  steps: Set<string>;
}

export interface EngineOptions {
  checkMode: boolean;
  diff: boolean;
  forks: number;
  /** --step: ask before every changing step. */
  stepMode: boolean;
  approvals: Approvals;
  tags?: string[];
  skipTags?: string[];
  /** Delay between retries (tests shorten it). */
  retryDelayMs?: number;
}

/** Set by SIGINT/SIGTERM: no new remote command starts once it is set. */
export class Interrupt {
  readonly #abort = new AbortController();
  /** Aborted on interrupt: local operations (spawned programs) stop with it. */
  readonly signal: AbortSignal = this.#abort.signal;
  get interrupted(): boolean {
    return this.signal.aborted;
  }
  set interrupted(v: boolean) {
    if (v && !this.signal.aborted) this.#abort.abort();
  }
  check(): void {
    if (this.interrupted) throw new InterruptedError();
  }
}

/** A failed connect is remembered this long (steps on a dead host fail at once), then tried again. */
const RECONNECT_AFTER_MS = 5_000;

/** Remote execution for the engine: one connection per host, opened on first use. */
export class HostPool implements Executor {
  readonly #conns = new Map<string, Promise<HostConnection>>();
  readonly #failedAt = new Map<string, number>();
  constructor(
    private readonly connect: (host: string) => Promise<HostConnection>,
    private readonly interrupt: Interrupt,
  ) {}

  /** A connection that died is made again (a detached job is reattached to over the new one). */
  async connection(host: string): Promise<HostConnection> {
    let c = this.#conns.get(host);
    if (c) {
      const existing = await c.catch(() => undefined);
      const retry = existing ? existing.lost : Date.now() - (this.#failedAt.get(host) ?? Date.now()) > RECONNECT_AFTER_MS;
      if (retry && this.#conns.get(host) === c) c = undefined;
    }
    if (!c) {
      c = this.connect(host);
      this.#conns.set(host, c);
      this.#failedAt.delete(host);
      c.catch(() => this.#failedAt.set(host, Date.now()));
    }
    return c;
  }

  async exec(host: string, command: Command, options?: ExecOptions): Promise<ExecResult> {
    this.interrupt.check();
    return (await this.connection(host)).exec(command, options);
  }

  async closeAll(): Promise<void> {
    await Promise.allSettled([...this.#conns.values()].map(async (c) => (await c).close()));
    this.#conns.clear();
  }
}

/** How old a read made ahead for a check may be when the check starts (else it reads afresh). */
export const AHEAD_MAX_AGE_MS = 5_000;

/**
 * Per-run cache of raw fact results for the check stage: key = host, become user, command text.
 * Conservative by design (a stale plan is far worse than a repeated read):
 * - anything applied anywhere clears the whole cache, at the start and at the end of the apply,
 *   and nothing is served or stored while any apply is in flight (a change on one host can change
 *   what another host reports: replication, NFS mounts);
 * - a read that started before a clear is not stored;
 * - facts with `cache: false` are never reused (a `readAhead` one is served once, from the prefetch); a command holding secrets is keyed by a digest of
 *   its secrets' values (never the values: two commands differing only in a secret differ);
 * - verification re-gathers, retries' re-gathers, ApplyContext.read and polling bypass it, except
 *   for reads made for a check ahead of its step (riding along, see alongside.ts): each served
 *   once, to the one host's step it was read for, and only if nothing applied since it was read.
 */
export class FactCache {
  readonly #entries = new Map<string, ExecResult>();
  readonly #ahead = new Map<string, { result: ExecResult; at: number }>();
  #generation = 0;
  #applying = 0;
  hits = 0;

  static key(host: string, become: boolean | string | undefined, command: Command): string | undefined {
    const text = command.hasSecrets ? keyText(command) : command.toString();
    return `${host}\0${become === undefined || become === false ? '' : String(become)}\0${text}`;
  }

  /** A token for store(): the cache's generation when a read starts. */
  get generation(): number {
    return this.#generation;
  }

  get(key: string): ExecResult | undefined {
    if (this.#applying > 0) return undefined;
    const r = this.#entries.get(key);
    if (r) this.hits++;
    return r ? { ...r } : undefined;
  }

  /** get(), and the entry is gone: a read-ahead value is served once. */
  take(key: string): ExecResult | undefined {
    const r = this.get(key);
    if (r) this.#entries.delete(key);
    return r;
  }

  /** Whether `key` would be served (no hit counted): a prefetch skips what is there. */
  has(key: string): boolean {
    return this.#applying === 0 && this.#entries.has(key);
  }

  store(key: string, result: ExecResult, generation: number): void {
    if (this.#applying > 0 || generation !== this.#generation) return;
    this.#entries.set(key, { ...result });
  }

  /** A read made ahead for `forHost`'s next check (probes too): see takeAhead. */
  storeAhead(forHost: string, key: string, result: ExecResult, generation: number): void {
    if (this.#applying > 0 || generation !== this.#generation) return;
    this.#ahead.set(`${forHost}\0${key}`, { result: { ...result }, at: Date.now() });
  }

  /**
   * The read made ahead for `forHost`'s check, once; none once anything applied since it was read,
   * nor when it is older than AHEAD_MAX_AGE_MS (another host's poll kept the next check waiting).
   */
  takeAhead(forHost: string, key: string, now = Date.now()): ExecResult | undefined {
    if (this.#applying > 0) return undefined;
    const k = `${forHost}\0${key}`;
    const r = this.#ahead.get(k);
    this.#ahead.delete(k);
    return r && now - r.at <= AHEAD_MAX_AGE_MS ? { ...r.result } : undefined;
  }

  /** What get() would serve, without counting a hit or taking a read-ahead value (a look ahead at a plan). */
  peek(key: string): ExecResult | undefined {
    if (this.#applying > 0) return undefined;
    const r = this.#entries.get(key);
    return r ? { ...r } : undefined;
  }

  clear(): void {
    this.#generation++;
    this.#entries.clear();
    this.#ahead.clear();
  }

  /** Around every apply (and everything it runs): clears before and after, blocks caching meanwhile. */
  async applying<T>(fn: () => Promise<T>): Promise<T> {
    this.#applying++;
    this.clear();
    try {
      return await fn();
    } finally {
      this.#applying--;
      this.clear();
    }
  }
}

/** A command's cache key text with each secret as a digest of its value (toString masks them all alike). */
function keyText(command: Command): string {
  const part = (p: CommandPart) => ('text' in p ? p.text : `\0secret:${createHash('sha256').update(p.secret.reveal()).digest('hex')}\0`);
  const line = command.parts.map(part).join('');
  return command.stdin ? `${line}\0stdin\0${command.stdin.map(part).join('')}` : line;
}

export interface Engine<P = any> {
  run: RunContext<P>;
  pool: Executor;
  /** Facts read by earlier checks of this run (absent: no caching). */
  factCache?: FactCache;
  options: EngineOptions;
  interrupt: Interrupt;
  /** Per-host memory of StepDef.remember. */
  state: Map<string, Record<string, unknown>>;
  /**
   * Per host, the state an earlier run of this runbook ended with (state-memo.ts): only to guess
   * which facts to read ahead; no step ever sees it.
   */
  stateGuess?: Map<string, Record<string, unknown>>;
  hostByName(name: string): HostView;
  /** Called before each action of an apply starts (the journal records it). */
  onAction?: (e: ActionStarted) => void;
  /** Called when a step's change is planned on a host, before the confirmation (the journal records it). */
  onPlanned?: (e: { stepId: string; host: string; summary: string; actions: ActionView[]; ownApply?: boolean }) => void;
  /** step@host pairs that would change, in check mode (a failing read-only check after them is "not verified"). */
  wouldChange?: Set<string>;
  /** What rides along with the reads of the check step being run (alongside.ts); set by the scheduler. */
  alongside?: Alongside;
  /** The run lock, while the run holds one (not in --check): its release may ride on a host's last read. */
  runLock?: RunLockHooks;
}

/** An action about to start: as planned (`action`), and for a `later` command the text it resolved to. */
export interface ActionStarted {
  stepId: string;
  host: string;
  handler?: boolean;
  action: ActionView;
  resolved?: string;
}
