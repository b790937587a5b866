/**
 * Waiting for something to come up: a TCP port or a command that succeeds. Assertions for
 * StepDef.verify (polled with interval and timeout by the engine), and a `waitFor` helper for apply.
 */
import type { ApplyContext, Assertion } from '../engine/types.js';
import { commandSucceeds, tcpListening } from './system.js';
import type { Command } from '../shell/command.js';

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
  const interval = a.intervalMs ?? 1000;
  const deadline = Date.now() + (a.timeoutMs ?? 30_000);
  for (;;) {
    const r = await a.check(ctx);
    if (r === true) return;
    if (Date.now() + interval > deadline) throw new Error(`timed out waiting: ${a.name}: ${r}`);
    ctx.log(`waiting: ${a.name}: ${r}`);
    await new Promise((res) => setTimeout(res, interval));
  }
}
