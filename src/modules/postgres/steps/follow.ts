/**
 * After a failover, every other standby follows the new primary: replay resumed if it was paused
 * (a paused startup process cannot switch timelines), primary_conninfo and primary_slot_name
 * pointed at the new primary (ALTER SYSTEM + reload restarts the WAL receiver), then verified:
 * its WAL receiver streams from the new primary on the new primary's timeline. Reads only the
 * follower and the new primary: the old primary's host may be gone.
 */
import { blocked, change, noop, onHost, stepsFor } from '../../../engine/define.js';
import type { ApplyContext, RunContext, StepDef } from '../../../engine/types.js';
import { type PgStatus, psqlCommand, statusFact } from '../facts.js';
import { planUpstream } from '../ops.js';
import { sql } from '../../../shell/index.js';
import { clusterOf, conninfoFor, connOfLayout, connOfNode, layoutOf, nodeOf } from '../cluster.js';
import { receiverFact } from '../candidate.js';
import { type CandidateParams, candidateHost, followerHosts } from './candidate.js';

export function followNewPrimaryStep<P extends CandidateParams>(id: string): StepDef<P, { self: PgStatus; primary: PgStatus }> {
  const { step } = stepsFor<P>();
  const primaryOf = (ctx: RunContext<P>) => nodeOf(clusterOf(ctx), candidateHost(ctx)[0]!);
  return step({
    id,
    title: 'Every other standby follows the new primary (conninfo, slot, streaming on the new timeline)',
    on: followerHosts,
    become: true,
    when: (ctx) => (ctx.checkMode ? 'follows a promote that --check does not make' : true),
    gather: (ctx) => {
      const p = primaryOf(ctx);
      return { self: statusFact(connOfLayout(layoutOf(ctx))), primary: onHost(p.name, statusFact(connOfNode(p))) };
    },
    plan: (f, ctx) => {
      const c = clusterOf(ctx);
      const p = primaryOf(ctx);
      if (!f.primary.up || f.primary.inRecovery) return blocked(`${p.name} is not the writable primary: nothing to follow`);
      if (!f.self.up) return blocked(`${ctx.host.name} does not answer: ${f.self.error}`);
      if (!f.self.inRecovery) return blocked(`${ctx.host.name} is writable: two primaries`);
      const up = planUpstream(connOfLayout(layoutOf(ctx)), f.self, { conninfo: conninfoFor(c, p, nodeOf(c, ctx.host.name)), slot: nodeOf(c, ctx.host.name).slotName });
      const paused = f.self.replayPause && f.self.replayPause !== 'not paused';
      if (up.kind === 'blocked') return up;
      if (!paused && up.kind === 'noop') return noop(`${up.reason} (${p.name}, timeline ${f.primary.timeline})`);
      const cmds = [...(paused ? [psqlCommand(connOfLayout(layoutOf(ctx)), sql`SELECT pg_wal_replay_resume();`)] : []), ...(up.kind === 'change' ? up.commands : [])];
      const what = [paused ? `resume replay (${f.self.replayPause}: it could not switch to timeline ${f.primary.timeline})` : '', up.kind === 'change' ? `follow ${p.name}: ${up.summary}` : ''].filter(Boolean);
      return change(what.join('; '), cmds);
    },
    verify: {
      converge: true,
      assertions: (ctx) => {
        const p = primaryOf(ctx);
        return [
          {
            name: `${ctx.host.name} streams from ${p.name} on its timeline`,
            timeoutMs: 60_000,
            intervalMs: 500,
            check: async (a: ApplyContext<P>) => {
              const [rx, prim] = [await a.read(receiverFact(connOfLayout(layoutOf(a)))), await a.read(onHost(p.name, statusFact(connOfNode(p))))];
              if (!prim.up) return `${p.name} does not answer`;
              if (!rx) return 'no WAL receiver';
              if (rx.status !== 'streaming') return `WAL receiver ${rx.status}`;
              if (rx.senderHost !== p.address) return `streams from ${rx.senderHost}, not ${p.address}`;
              return rx.receivedTli === prim.timeline ? true : `received timeline ${rx.receivedTli}, ${p.name} is on ${prim.timeline}`;
            },
          },
        ];
      },
    },
  });
}
