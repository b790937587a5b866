/**
 * The sync step: on the current primary, synchronous_standby_names as the synchronous option
 * wants it right now (sync.ts decides: ANY 1 over the nodes, suspended when no standby streams
 * unless strict), then pg_stat_replication must show a standby in the quorum. Included by
 * setup-warm-standby (end), failover (right after the promotion, before any test write) and
 * failback (end). Standbys: nothing to do, the setting only matters on a primary.
 */
import { change, noop, param, stepsFor } from '../../../engine/define.js';
import type { RunContext, StepContext, StepDef } from '../../../engine/types.js';
import { sql } from '../../../shell/index.js';
import { type PgParams, clusterOf, connOfLayout, nodeOf } from '../cluster.js';
import { layoutOf } from '../cluster.js';
import { type PgSender, type PgStatus, psqlCommand, replicationFact, statusFact } from '../facts.js';
import { type CurrentSettings, currentSettingsFact, fileValue } from '../settings.js';
import { SYNC_MARKER, SYNC_STRICT_MARKER, planSync, syncWish, type SyncPlan } from '../sync.js';

/** The params of the synchronous option (setup-warm-standby, failover, failback). */
export const syncParams = {
  synchronous: param.string({ description: 'quorum: synchronous_standby_names = ANY 1 (…) over the standbys on the primary; off: asynchronous (default: inventory var pg_synchronous, else what setup recorded in the managed file, else off)', choices: ['off', 'quorum'] }),
  synchronous_strict: param.boolean({ description: 'keep synchronous replication on a primary with no standby streaming: every write waits until one connects, like Patroni synchronous_mode_strict (default: var pg_synchronous_strict, else the recorded choice, else false: suspended so that writes go on)' }),
};

export interface SyncParams {
  synchronous?: string | undefined;
  synchronous_strict?: boolean | undefined;
}

type SyncFacts = { self: PgStatus; senders: PgSender[] | null; cur: CurrentSettings | null };

const setting = (cur: CurrentSettings | null, name: string) => cur?.running.find((r) => r.name === name)?.setting ?? null;

export function syncPlanOf<P extends PgParams & SyncParams>(f: SyncFacts, ctx: StepContext<P>): SyncPlan | { kind: 'standby'; reason: string } {
  if (!f.self.up) return { kind: 'standby', reason: `not running: ${f.self.error}` };
  if (f.self.inRecovery) return { kind: 'standby', reason: 'standby: synchronous_standby_names matters on the primary only' };
  const c = clusterOf(ctx);
  const me = nodeOf(c, ctx.host.name);
  const wish = syncWish(ctx.params.synchronous, me.vars.pg_synchronous, ctx.params.synchronous_strict, me.vars.pg_synchronous_strict, {
    mode: fileValue(f.cur, SYNC_MARKER),
    strict: fileValue(f.cur, SYNC_STRICT_MARKER),
  });
  return planSync(wish, c.nodes, ctx.host.name, { current: setting(f.cur, 'synchronous_standby_names') ?? '', senders: f.senders ?? [] });
}

export function syncStep<P extends PgParams & SyncParams>(id: string, on: (ctx: RunContext<P>) => string[]): StepDef<P, SyncFacts> {
  const { step } = stepsFor<P>();
  const facts = (ctx: StepContext<P>) => {
    const conn = connOfLayout(layoutOf(ctx));
    return { self: statusFact(conn), senders: replicationFact(conn), cur: currentSettingsFact(conn, ['synchronous_standby_names', SYNC_MARKER, SYNC_STRICT_MARKER]) };
  };
  return step({
    id,
    title: 'Synchronous replication on the primary as asked (ANY 1 over the standbys; never blocking a primary left alone unless strict)',
    on,
    become: true,
    gather: facts,
    plan: (f, ctx) => {
      const p = syncPlanOf(f, ctx);
      if (p.kind === 'standby' || p.kind === 'ok') return noop(p.reason);
      if (p.kind === 'wait-sync-state') return change(`wait for pg_stat_replication to show a standby in the quorum (${p.reason})`, []);
      return change(p.reason, [
        psqlCommand(connOfLayout(layoutOf(ctx)), sql`ALTER SYSTEM SET synchronous_standby_names = ${p.value};\nSELECT pg_reload_conf();\nSELECT pg_sleep(0.2);\n`),
      ]);
    },
    verify: {
      converge: false,
      checks: (ctx) => [
        {
          name: 'synchronous_standby_names in force, a standby in the quorum (pg_stat_replication.sync_state)',
          intervalMs: 500,
          timeoutMs: 20_000,
          gather: () => facts(ctx),
          holds: (f: SyncFacts, c: StepContext<P>) => {
            const p = syncPlanOf(f, c);
            return p.kind === 'ok' || p.kind === 'standby' ? { ok: p.reason } : p.reason;
          },
        },
      ],
    },
  });
}
