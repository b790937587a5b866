/**
 * failback's divergence ledger, before the rewind (and the re-clone it may hand over to): where a
 * node that is not a standby of the primary left the primary's history, what WAL it has past that
 * point, and — committed transactions among it — a refusal unless accepted (../ledger.ts). Two
 * steps because the WAL read needs the divergence point the first one finds. Both read only;
 * saving the ledger writes files next to the data dir, never in it.
 */
import { blocked, change, noop, stepsFor } from '../../../engine/define.js';
import { exec } from '../../../engine/actions.js';
import type { FactMap, RunContext, StepContext, StepDef } from '../../../engine/types.js';
import { type PgParams, clusterOf, connOfNode, layoutOf } from '../cluster.js';
import {
  type Divergence,
  type Lineage,
  type WalScan,
  buildLedger,
  decideLedger,
  describeLedger,
  findDivergence,
  ledgerJson,
  ledgerRoot,
  lineageFact,
  localLineageFact,
  saveLedgerCommand,
  walScanFact,
} from '../ledger.js';
import { type Statuses, clusterStatus, eachNode, followsPrimary, topology } from '../topology.js';

export interface LedgerParams extends PgParams {
  accept_data_loss: boolean;
}

type On<P> = (ctx: RunContext<P>) => string[];

const DIVERGENCE = 'pg.divergence';

/** Every node's status and timeline lineage, by node name, and this node's own lineage read from its data dir. */
interface DivergenceFacts {
  status: Statuses;
  lineage: Record<string, Lineage | null>;
  local: Lineage | null;
}

export function divergenceStep<P extends LedgerParams>(id: string, on: On<P>): StepDef<P, DivergenceFacts> {
  const { step } = stepsFor<P>();
  const decide = (f: DivergenceFacts, ctx: StepContext<P>): { divergence: Divergence | null; why: string } => {
    const c = clusterOf(ctx);
    const statuses = f.status;
    const t = topology(c, statuses);
    const me = statuses[ctx.host.name]!;
    if (me.up && !me.inRecovery) return { divergence: null, why: 'writable: not rejoined' };
    if (!t.primary) return { divergence: null, why: 'no single writable node' };
    if (followsPrimary(me, t.primary)) return { divergence: null, why: `a standby of ${t.primary.name}` };
    const primary = f.lineage[t.primary.name];
    const mine = f.local;
    if (!mine) return { divergence: null, why: 'no cluster in the data dir: nothing to lose' };
    if (!primary) return { divergence: { kind: 'unknown', reason: `${t.primary.name}'s timeline history could not be read` }, why: '' };
    return { divergence: findDivergence(mine, primary), why: '' };
  };
  return step({
    id,
    title: 'Divergence point of a former primary (timeline histories)',
    on,
    become: true,
    gather: (ctx) => {
      const c = clusterOf(ctx);
      return { status: clusterStatus(c), lineage: eachNode(c.nodes, (n) => lineageFact(connOfNode(n))), local: localLineageFact(layoutOf(ctx)) };
    },
    plan: (f, ctx) => {
      const d = decide(f, ctx);
      return d.divergence ? { ...noop(d.divergence.reason), data: { divergence: d.divergence } } : noop(d.why);
    },
    remember: (f, ctx) => ({ [DIVERGENCE]: decide(f, ctx).divergence }),
  });
}

/** The approval that covers discarding: `--approve <ledger step id>` or -e accept_data_loss=true. */
function accepted<P extends LedgerParams>(ctx: StepContext<P>, id: string): boolean {
  return ctx.params.accept_data_loss || (ctx.approvedByName?.(id) ?? false);
}

function stamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
}

export function ledgerStep<P extends LedgerParams>(id: string, on: On<P>): StepDef<P, { scan?: WalScan }> {
  const { step } = stepsFor<P>();
  const ledgerOf = (f: { scan?: WalScan }, ctx: StepContext<P>) => {
    const d = ctx.state[DIVERGENCE] as Divergence | null | undefined;
    return d ? buildLedger(ctx.host.name, d, f.scan ?? null) : null;
  };
  const dirOf = (ctx: StepContext<P>) => {
    const d = ctx.state[DIVERGENCE] as Extract<Divergence, { kind: 'at' }>;
    return `${ledgerRoot(layoutOf(ctx))}/${stamp()}-tl${d.tli ?? 0}-${(d.lsn ?? 'unknown').replace('/', '_')}`;
  };
  return step({
    id,
    title: 'Divergence ledger: WAL past the divergence saved and shown; committed writes discarded only when accepted',
    on,
    become: true,
    gather: (ctx): FactMap<{ scan?: WalScan }> => {
      const d = ctx.state[DIVERGENCE] as Divergence | null | undefined;
      return d?.kind === 'at' ? { scan: walScanFact(layoutOf(ctx), d.tli, d.lsn) } : {};
    },
    plan: (f, ctx) => {
      const g = ledgerOf(f, ctx);
      if (!g) return noop('nothing to rejoin');
      const hint = `save what you need, then re-run with -e accept_data_loss=true (or --approve ${id}). Nothing was changed`;
      const v = decideLedger(g, accepted(ctx, id), hint);
      if (v.kind === 'nothing') return { ...noop(v.reason), data: { ledger: ledgerJson(g, '') } };
      if (v.kind === 'refuse') return { ...blocked(v.reason), data: { ledger: ledgerJson(g, '') } };
      // The directory is named once, here: the plan, the confirmation and the report show the one
      // the run then writes.
      const dir = g.divergence.kind === 'at' ? dirOf(ctx) : '';
      const data = { ledger: ledgerJson(g, dir) };
      const summary = `keep the ledger of ${ctx.host.name} in ${ledgerRoot(layoutOf(ctx))}/: ${v.reason}${v.needsApproval ? ' — these writes are discarded by the rejoin (accepted)' : ''}`;
      // Where what is lost is unknown there is nothing to save: the approval alone is the change.
      const save = dir ? [exec(saveLedgerCommand(layoutOf(ctx), g, dir), { note: `ledger ${dir}: wal/, waldump.txt, summary.txt, ledger.json; ${describeLedger(g)}` })] : [];
      return { ...change(summary, save), data };
    },
    confirm: {
      destructive: true,
      message: (ctx, plan) => `${plan.summary}. The rewind or re-clone that follows discards what is listed; the ledger directory keeps the WAL and its summary.`,
    },
    // The ledger is a record, not a state to converge to: the next step discards what it lists.
    verify: { converge: false },
  });
}

/** For runbooks: both steps in order. */
export function ledgerSteps<P extends LedgerParams>(prefix: string, on: On<P>): Array<StepDef<P, any>> {
  return [divergenceStep<P>(`${prefix}-divergence`, on), ledgerStep<P>(`${prefix}-ledger`, on)];
}

