/** Everything a running step needs, built once per run by run.ts (or by tests). */
import type { Command } from '../shell/command.js';
import type { ExecOptions, ExecResult, HostConnection } from '../transport/types.js';
import { InterruptedError } from '../errors.js';
import type { Executor } from './gather.js';
import type { HostView, RunContext } from './types.js';

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
  interrupted = false;
  check(): void {
    if (this.interrupted) throw new InterruptedError();
  }
}

/** Remote execution for the engine: one connection per host, opened on first use. */
export class HostPool implements Executor {
  readonly #conns = new Map<string, Promise<HostConnection>>();
  constructor(
    private readonly connect: (host: string) => Promise<HostConnection>,
    private readonly interrupt: Interrupt,
  ) {}

  connection(host: string): Promise<HostConnection> {
    let c = this.#conns.get(host);
    if (!c) {
      c = this.connect(host);
      this.#conns.set(host, c);
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

export interface Engine<P = any> {
  run: RunContext<P>;
  pool: Executor;
  options: EngineOptions;
  interrupt: Interrupt;
  /** Per-host memory of StepDef.remember. */
  state: Map<string, Record<string, unknown>>;
  hostByName(name: string): HostView;
}
