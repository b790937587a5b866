/**
 * Waiting for something to come up: a TCP port or a command that succeeds. Assertions for
 * StepDef.verify (polled with interval and timeout by the engine), and a `waitFor` helper for apply.
 */
import type { ApplyContext, Assertion } from '../engine/types.js';
import { commandSucceeds, tcpListening } from './system.js';
import type { Command } from '../shell/command.js';
import { poll } from '../engine/poll.js';

export interface WaitOptions {
  intervalMs?: number;
  timeoutMs?: number;
}

export function portListening<P>(port: number, o: WaitOptions = {}): Assertion<P> {
  return { name: `port ${port} is listening`, ...o, check: async (ctx) => ((await ctx.read(tcpListening(port))) ? true : `nothing listens on port ${port}`) };
}

export function commandPasses<P>(command: Command, o: WaitOptions & { become?: boolean | string; name?: string } = {}): Assertion<P> {
  const name = o.name ?? `${command.toString()} succeeds`;
  return {
    name,
    ...(o.intervalMs !== undefined ? { intervalMs: o.intervalMs } : {}),
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
    check: async (ctx) => ((await ctx.read(commandSucceeds(command, o.become))) ? true : `${command.toString()} does not succeed yet`),
  };
}

/** Poll an assertion inside apply; throws with the last reason on timeout. */
export async function waitFor<P>(ctx: ApplyContext<P>, a: Assertion<P>): Promise<void> {
  const r = await poll(
    async () => {
      const v = await a.check(ctx);
      return v === true ? { done: true } : { wait: v };
    },
    { intervalMs: a.intervalMs ?? 1000, timeoutMs: a.timeoutMs ?? 30_000, onWait: (w) => ctx.log(`waiting: ${a.name}: ${w}`) },
  );
  if ('timedOut' in r) throw new Error(`timed out waiting: ${a.name}: ${r.timedOut}`);
}
