/**
 * failover's fence step: every peer that is not a running standby must be proven unable to take
 * writes before the promote (../fence.ts decides). Healthy standbys are never fenced: they follow
 * the new primary afterwards. The decision is part of the plan, so an `unknown` old primary stops
 * the run (exit 8) before anything changes.
 */
import { blocked, change, noop, onHost, perHost, stepsFor } from '../../../engine/define.js';
import { type Action, execOn, localCommand, waitUntil } from '../../../engine/actions.js';
import type { ApplyContext, FactMap, RunContext, StepContext, StepDef } from '../../../engine/types.js';
import { dataDirFact, type DataDirState, layoutFact } from '../layout-facts.js';
import { peerViewFact } from '../facts.js';
import { type PgNode, clusterOf, nodeOf, peersOf } from '../cluster.js';
import { fenceCommand, stopCommand } from '../control.js';
import type { PgLayout } from '../layout.js';
import { APPROVE_UNFENCED, type FenceDecision, type SshView, classifyPort, decideFence, fenceCommandFor, fenceInvocation } from '../fence.js';
import { failoverVerdict, type FailoverParams, type GuardFacts, guardFacts } from './promote.js';
import { candidateHost } from './candidate.js';

/** State key on the candidate: each peer's layout, or why its SSH did not answer. */
export const PEER_SSH = 'pg.peer_ssh';
type PeerSsh = Record<string, { layout: PgLayout } | { unreachable: string }>;

type Unreachable = { unreachable: string };
/** Each peer's layout (or why there is none), or why SSH did not answer. */
interface PeerLayoutFacts {
  layout: Record<string, PgLayout | string | Unreachable>;
}

/** Every peer's layout over SSH; unreachable is a value. */
function peerLayoutFacts(ctx: StepContext<FailoverParams>): FactMap<PeerLayoutFacts> {
  const unreachable = (reason: string): Unreachable => ({ unreachable: reason });
  return { layout: perHost(peersOf(clusterOf(ctx), ctx.host.name), (n) => n.name, (n) => onHost(n.name, layoutFact(n.vars), unreachable)) };
}

function rememberPeerSsh(f: PeerLayoutFacts): { [PEER_SSH]: PeerSsh } {
  const out: PeerSsh = {};
  for (const [name, v] of Object.entries(f.layout)) {
    if (typeof v === 'string') out[name] = { unreachable: `layout: ${v}` };
    else if ('unreachable' in v) out[name] = v;
    else out[name] = { layout: v };
  }
  return { [PEER_SSH]: out };
}

/** Peers SSH did not reach, per run (keyed by its params object, as the candidate choice). */
const sshUnreachable = new WeakMap<object, Set<string>>();

/**
 * The cluster's nodes less those SSH could not reach at the fence probe: for the steps after the
 * promote that need every node's host (a file sync's direction). The old primary, fenced without
 * SSH, is left for failback, which sets its direction once it answers again.
 */
export function sshReachableNodes<P extends FailoverParams>(ctx: RunContext<P>): string[] {
  const gone = sshUnreachable.get(ctx.params as object);
  return clusterOf(ctx).nodes.map((n) => n.name).filter((n) => !gone?.has(n));
}

/** Which peers answer SSH, and their layouts (the fence step reads pg_ctl status with them). */
export function peerSshStep<P extends FailoverParams>(): StepDef<P, PeerLayoutFacts> {
  const { step } = stepsFor<P>();
  return step({
    id: 'fence-probe',
    title: 'Reach every peer over SSH (an unreachable host is evidence of nothing)',
    on: candidateHost,
    become: true,
    gather: peerLayoutFacts,
    plan: (f) => {
      const s = rememberPeerSsh(f)[PEER_SSH];
      return noop(Object.entries(s).map(([n, v]) => `${n}: ${'layout' in v ? 'SSH ok' : `SSH unreachable (${v.unreachable})`}`).join('; ') || 'no peers');
    },
    remember: (f, ctx) => {
      const r = rememberPeerSsh(f);
      sshUnreachable.set(ctx.params as object, new Set(Object.entries(r[PEER_SSH]).filter(([, v]) => 'unreachable' in v).map(([n]) => n)));
      return r;
    },
  });
}

function sshViewOf(ssh: PeerSsh[string] | undefined, dd: DataDirState | Unreachable | undefined): SshView {
  if (!ssh) return { reachable: false, reason: 'not probed' };
  if ('unreachable' in ssh) return { reachable: false, reason: ssh.unreachable };
  if (!dd) return { reachable: false, reason: 'not probed' };
  if ('unreachable' in dd) return { reachable: false, reason: dd.unreachable };
  return { reachable: true, running: dd.running, hasCluster: Boolean(dd.pgVersion), standbySignal: dd.standbySignal };
}

interface FencePlanItem extends Record<string, unknown> {
  node: string;
  decision: FenceDecision;
}

/** The guard's facts and each SSH-reachable peer's data directory (or why SSH stopped answering since). */
interface FenceFacts extends GuardFacts {
  dd: Record<string, DataDirState | Unreachable>;
}

function decisions(f: FenceFacts, ctx: StepContext<FailoverParams>): FencePlanItem[] {
  const c = clusterOf(ctx);
  const ssh = (ctx.state[PEER_SSH] ?? {}) as PeerSsh;
  const views = f.peers;
  return peersOf(c, ctx.host.name).map((n) => {
    const port = classifyPort(views[n.name] ?? { answers: false, error: 'not probed' });
    return {
      node: n.name,
      decision: decideFence({
        node: n.name,
        port,
        ssh: sshViewOf(ssh[n.name], f.dd[n.name]),
        hasFenceCommand: fenceCommandFor(ctx.params.fence_command, n.vars) !== undefined,
        approvedUnfenced: ctx.approvedByName?.(APPROVE_UNFENCED) ?? false,
      }),
    };
  });
}

/** Stop and fence over SSH, then wait for `pg_ctl status` to say no server runs (the evidence). */
function sshFenceActions(peer: PgNode, l: PgLayout): Action[] {
  return [
    execOn(peer.name, stopCommand(l), { become: true }),
    execOn(peer.name, fenceCommand(l), { become: true, note: `standby.signal${l.family === 'debian' ? ', start.conf manual' : ''}${l.ctl === 'systemd' ? ', unit disabled' : ''}` }),
    waitUntil(`${peer.name}: pg_ctl status says no server runs [evidence: down-ssh-pgctl]`, onHost(peer.name, dataDirFact(l)), (d) => (d.running ? 'a server still runs' : true), { intervalMs: 500, timeoutMs: 30_000 }),
  ];
}

function commandFenceActions(peer: PgNode, command: string): Action[] {
  const { argv, env } = fenceInvocation(command, peer.name, peer.address);
  return [localCommand(`fence_command for ${peer.name} [evidence: fence-command]`, argv, { env, timeoutSec: 120 })];
}

export function fenceStep<P extends FailoverParams>(): StepDef<P, FenceFacts> {
  const { step } = stepsFor<P>();
  return step({
    id: 'fence-old-primary',
    title: 'Fence the old primary with evidence (SSH + pg_ctl status, port refused, or fence_command); standbys are left to follow',
    on: candidateHost,
    become: true,
    gather: (ctx) => {
      const ssh = (ctx.state[PEER_SSH] ?? {}) as PeerSsh;
      const reachable = Object.entries(ssh).flatMap(([name, s]) => ('layout' in s ? [{ name, layout: s.layout }] : []));
      const unreachable = (reason: string): Unreachable => ({ unreachable: reason });
      return { ...guardFacts(ctx), dd: perHost(reachable, (r) => r.name, (r) => onHost(r.name, dataDirFact(r.layout), unreachable)) };
    },
    plan: (f, ctx) => {
      const v = failoverVerdict(ctx.host.name, f.self, f.peers, ctx.params.force, true);
      if (v.kind !== 'go') return v.kind === 'blocked' ? blocked(v.reason) : noop(v.reason);
      const items = decisions(f, ctx);
      const data = { fence: Object.fromEntries(items.map((i) => [i.node, { evidence: i.decision.evidence, action: i.decision.action, reason: i.decision.reason }])) };
      const refused = items.filter((i) => i.decision.action === 'refuse');
      if (refused.length) return { ...blocked(refused.map((i) => i.decision.reason).join('; ')), data };
      const todo = items.filter((i) => i.decision.action === 'ssh' || i.decision.action === 'command');
      const said = items.map((i) => `${i.node}: ${i.decision.evidence ?? 'standby'} (${i.decision.reason})`).join('; ');
      if (!todo.length) return { ...noop(said), data };
      const c = clusterOf(ctx);
      const ssh = (ctx.state[PEER_SSH] ?? {}) as PeerSsh;
      const actions = todo.flatMap((i) => {
        const peer = nodeOf(c, i.node);
        const s = ssh[peer.name];
        return i.decision.action === 'ssh' && s && 'layout' in s ? sshFenceActions(peer, s.layout) : commandFenceActions(peer, fenceCommandFor(ctx.params.fence_command, peer.vars)!);
      });
      return change(`fence ${todo.map((i) => `${i.node} (${i.decision.action === 'ssh' ? 'stop over SSH, standby.signal, no start at boot' : 'fence_command'})`).join(', ')}. ${said}`, actions, { data });
    },
    confirm: {
      destructive: true,
      message: (ctx, plan) => `${plan.summary}. ${ctx.params.force ? `force=true: a WRITABLE primary loses its clients and any write not yet replicated to ${ctx.host.name}.` : ''}`,
    },
    verify: {
      // Re-planning a fenced peer over SSH plans the (idempotent) fence again: not a convergence test.
      converge: false,
      assertions: (ctx) =>
        peersOf(clusterOf(ctx), ctx.host.name).map((n) => ({
          name: `${n.name} is not writable`,
          timeoutMs: 20_000,
          check: async (a: ApplyContext<P>) => {
            const v = await a.read(peerViewFact({ port: n.port, host: n.address, user: clusterOf(a).replicationUser }));
            return v.answers && !v.inRecovery ? `${n.name} still answers as writable` : true;
          },
        })),
    },
  });
}
