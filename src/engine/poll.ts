/** The one polling loop: wait actions, checks, assertions and waitFor all use it. */

export interface PollOptions {
  intervalMs: number;
  /** 0: one attempt. */
  timeoutMs: number;
  /** Called before each wait with the current reason (progress lines). */
  onWait?: (reason: string) => void;
  /** Throws to stop (the run's interrupt). */
  check?: () => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Call `attempt` until it returns `{ done: T }`; at the deadline, the last reason. */
export async function poll<T>(attempt: () => Promise<{ done: T } | { wait: string }>, o: PollOptions): Promise<{ done: T } | { timedOut: string }> {
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    o.check?.();
    const r = await attempt();
    if ('done' in r) return r;
    if (Date.now() + o.intervalMs > deadline) return { timedOut: r.wait };
    o.onWait?.(r.wait);
    await sleep(o.intervalMs);
  }
}
