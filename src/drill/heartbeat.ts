/**
 * A line at least every few seconds while a drill phase waits (on a runbook that is silent while
 * it fences, on a partition's deadline…): an operator watching the log must never wonder whether
 * the drill hangs. Every line through `log` resets the clock; the heartbeat says which phase,
 * what it waits for, for how long, and the probe's last acknowledgement.
 */
export class Heartbeat {
  #lastLine = Date.now();
  #timer: NodeJS.Timeout | undefined;
  #phase: { name: string; since: number } | undefined;
  #waitingFor: string | undefined;

  constructor(
    private readonly out: (line: string) => void,
    private readonly status: () => string | undefined = () => undefined,
    readonly everyMs = 5000,
  ) {}

  readonly log = (line: string): void => {
    this.#lastLine = Date.now();
    this.out(line);
  };

  enter(phase: string): void {
    this.#phase = { name: phase, since: Date.now() };
    this.#waitingFor = undefined;
  }

  /** What the current phase waits for now (shown in the next heartbeat). */
  waiting(what: string | undefined): void {
    this.#waitingFor = what;
  }

  leave(): void {
    this.#phase = undefined;
    this.#waitingFor = undefined;
  }

  start(): void {
    this.#timer ??= setInterval(() => this.#tick(), Math.min(1000, this.everyMs / 2));
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    const now = Date.now();
    if (!this.#phase || now - this.#lastLine < this.everyMs) return;
    const secs = ((now - this.#phase.since) / 1000).toFixed(0);
    const status = this.status();
    this.log(`  … ${this.#phase.name}: ${this.#waitingFor ?? 'working'} (${secs} s in this phase)${status ? `; ${status}` : ''}`);
  }
}
