/**
 * The faults a drill injects on the primary, and the lab's out-of-band hands (a console, in a
 * real data centre): cutting a host's link, and fencing a host that the network cannot reach.
 */
import { EnvironmentError } from '../errors.js';
import { readState } from '../lab/state.js';
import { names } from '../lab/spec.js';
import { inHost, run } from '../lab/local.js';
import { fenceCommand, stopCommand } from '../modules/postgres/control.js';
import type { PgLayout } from '../modules/postgres/layout.js';
import { sh, type Command } from '../shell/command.js';
import type { FaultKind } from './types.js';

/** What the fault does, for the plan and the log (the exact remote command where there is one). */
export function faultCommand(kind: Exclude<FaultKind, 'partition'>, layout: PgLayout): Command {
  if (kind === 'stop') return stopCommand(layout);
  // SIGKILL of the postmaster: no shutdown checkpoint, children die with it (like a crash).
  return sh`kill -KILL "$(head -n 1 ${`${layout.dataDir}/postmaster.pid`})"`;
}

export function describeFault(kind: FaultKind, host: string): string {
  switch (kind) {
    case 'stop':
      return `clean stop of PostgreSQL on ${host}`;
    case 'kill':
      return `SIGKILL of the postmaster on ${host}`;
    case 'partition':
      return `${host}'s network link set down (lab only)`;
  }
}

/** A lab host, reached from this machine without the network: its veth and its PID 1. */
export class LabHands {
  private constructor(
    readonly labName: string,
    private readonly veths: Map<string, string>,
    private readonly pids: Map<string, number>,
  ) {}

  /** From the inventory's `lab_name` var; undefined when the inventory is not a lab's. */
  static forInventory(labName: unknown): LabHands | undefined {
    if (typeof labName !== 'string') return undefined;
    const state = readState(labName);
    if (!state) throw new EnvironmentError(`lab ${labName} is not up: run \`runbook lab up\` first`);
    const veths = new Map(state.spec.hosts.map((h) => [h.name, names.veth(state.spec, h)]));
    const pids = new Map(Object.entries(state.hosts).map(([h, s]) => [h, s.init.pid]));
    return new LabHands(labName, veths, pids);
  }

  async setLink(host: string, up: boolean): Promise<void> {
    const veth = this.veths.get(host);
    if (!veth) throw new Error(`${host} is not a host of lab ${this.labName}`);
    await run(['ip', 'link', 'set', veth, up ? 'up' : 'down']);
  }

  /** Stop and fence PostgreSQL on a host the network cannot reach (STONITH's role in the lab). */
  async fenceOutOfBand(host: string, layout: PgLayout): Promise<void> {
    const pid = this.pids.get(host);
    if (!pid) throw new Error(`${host} is not a host of lab ${this.labName}`);
    // Commands without secrets display exactly as they go on the wire.
    await inHost(pid, `${stopCommand(layout).toString()} && ${fenceCommand(layout).toString()}`, { check: true, timeoutMs: 120_000 });
  }
}
