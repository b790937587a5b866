/**
 * "The old primary is gone" as a verdict with evidence (issue 12 point 1). Only three things prove
 * a node cannot take writes: SSH answers and `pg_ctl status` says no postmaster runs, its port
 * refuses connections, or a fence_command succeeded. A timeout, an auth failure, a pg_hba reject or
 * an unreachable host proves nothing: `unknown`, and failover refuses unless the admin approves by
 * name (`--approve promote-unfenced`; `--yes` never covers it).
 *
 * fence_command contract (PROTOCOL.md): an inventory var (postgres group or host) or the param,
 * run on the controller as `/bin/sh -c "$fence_command" runbook-fence HOST ADDRESS`, env
 * RUNBOOK_FENCE_HOST / RUNBOOK_FENCE_ADDRESS; exit 0 means the node can no longer take writes.
 */
import type { PeerView } from './facts.js';

export type FenceEvidence = 'down-ssh-pgctl' | 'refused-port' | 'fence-command' | 'approved-unfenced' | 'unknown';

/** The approval id that lets failover promote while the old primary is `unknown`. */
export const APPROVE_UNFENCED = 'promote-unfenced';

/** What the candidate saw on the node's PostgreSQL port. */
export type PortState = 'writable' | 'recovery' | 'refused' | 'timeout' | 'auth' | 'busy' | 'network' | 'error';

export function classifyPort(v: PeerView): { state: PortState; detail: string } {
  if (v.answers) return { state: v.inRecovery ? 'recovery' : 'writable', detail: v.inRecovery ? 'answers in recovery' : 'answers WRITABLE' };
  const e = v.error;
  const is = (re: RegExp) => re.test(e);
  // Order matters: libpq prints "connection to server at … failed: <reason>".
  if (is(/Connection refused/i)) return { state: 'refused', detail: e };
  if (is(/timeout expired|timed out/i)) return { state: 'timeout', detail: e };
  if (is(/password authentication failed|no pg_hba\.conf entry|authentication failed|no password supplied|pg_hba\.conf rejects/i)) return { state: 'auth', detail: e };
  if (is(/too many clients|remaining connection slots|starting up|shutting down|not yet accepting|in recovery mode/i)) return { state: 'busy', detail: e };
  if (is(/No route to host|Network is unreachable|Invalid argument|could not translate host name|Host is down/i)) return { state: 'network', detail: e };
  return { state: 'error', detail: e };
}

/** What SSH and `pg_ctl status` said about the node (read from the controller). */
export type SshView =
  | { reachable: false; reason: string }
  | { reachable: true; running: boolean; hasCluster: boolean; standbySignal: boolean };

export interface FenceInput {
  node: string;
  port: { state: PortState; detail: string };
  ssh: SshView;
  hasFenceCommand: boolean;
  approvedUnfenced: boolean;
}

/**
 * What to do about one peer before a promote:
 * - `follow`: it answers in recovery, a healthy standby; it is re-pointed, never fenced.
 * - `ssh`: stop it and fence it over SSH (then `pg_ctl status` proves it down).
 * - `command`: run fence_command (its exit 0 is the evidence).
 * - `none`: already proven (port refused) or approved unfenced.
 * - `refuse`: no evidence and no way to get one.
 */
export type FenceDecision =
  | { action: 'follow'; evidence: null; reason: string }
  | { action: 'ssh' | 'command' | 'none'; evidence: Exclude<FenceEvidence, 'unknown'>; reason: string }
  | { action: 'refuse'; evidence: 'unknown'; reason: string };

export function decideFence(i: FenceInput): FenceDecision {
  if (i.port.state === 'recovery') return { action: 'follow', evidence: null, reason: `${i.node} answers in recovery: a standby, it follows the new primary` };
  if (i.ssh.reachable) {
    const what = i.ssh.running ? 'running: stop it' : 'pg_ctl status: no server running';
    return { action: 'ssh', evidence: 'down-ssh-pgctl', reason: `${i.node} answers SSH (${what}); fence it: standby.signal, no start at boot` };
  }
  const unreach = `SSH unreachable (${i.ssh.reason})`;
  if (i.hasFenceCommand) return { action: 'command', evidence: 'fence-command', reason: `${i.node}: ${unreach}, port ${i.port.state}: run fence_command` };
  if (i.port.state === 'refused') return { action: 'none', evidence: 'refused-port', reason: `${i.node}: ${unreach}, but its port refuses connections: no postmaster listens` };
  if (i.approvedUnfenced)
    return { action: 'none', evidence: 'approved-unfenced', reason: `${i.node}: ${unreach}, port ${i.port.state} (${i.port.detail}); promoting unfenced: approved with --approve ${APPROVE_UNFENCED}` };
  return {
    action: 'refuse',
    evidence: 'unknown',
    reason:
      `${i.node} may still be a writable primary: ${unreach}; its port: ${i.port.state} (${i.port.detail}). ` +
      `A timeout, an auth failure or an unreachable host is not proof that it is down. Refusing to promote (two writable nodes). ` +
      `Set fence_command (inventory var or -e fence_command=…) to power it off, or make sure it is off and pass --approve ${APPROVE_UNFENCED}`,
  };
}

/** fence_command for `node`: the param wins over the host's (or its group's) inventory var. */
export function fenceCommandFor(param: string | undefined, vars: Record<string, unknown>): string | undefined {
  const v = param ?? vars.fence_command;
  return typeof v === 'string' && v.trim() !== '' ? v : undefined;
}

/**
 * How fence_command runs on the controller: `/bin/sh -c "$fence_command" runbook-fence HOST ADDRESS`
 * (the node is an argument, never shell text), RUNBOOK_FENCE_HOST / RUNBOOK_FENCE_ADDRESS in the
 * environment, and RUNBOOK_CLI naming the runbook that runs it (the lab's fence calls `lab fence`).
 */
export function fenceInvocation(command: string, host: string, address: string): { argv: string[]; env: Record<string, string> } {
  return {
    argv: ['/bin/sh', '-c', command, 'runbook-fence', host, address],
    env: { RUNBOOK_FENCE_HOST: host, RUNBOOK_FENCE_ADDRESS: address, RUNBOOK_CLI: process.env.RUNBOOK_CLI ?? process.argv[1] ?? 'runbook' },
  };
}
