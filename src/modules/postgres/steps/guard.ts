/** Guards that read reality before a runbook acts: the intended primary must really be the writable node. */
import { blocked, noop, stepsFor } from '../../../engine/define.js';
import type { StepDef } from '../../../engine/types.js';
import { type PgParams, clusterOf } from '../cluster.js';
import { intendedPrimaryHost } from './inspect.js';
import { type Statuses, clusterStatus, isPristine, names, topology } from '../topology.js';

/**
 * setup-warm-standby builds FROM the intended primary: it must answer and be writable, and any
 * other writable node must be a pristine stand-alone server (fresh initdb) — else it is a primary
 * with data, and the inventory or the cluster is not what the operator thinks.
 */
export function intendedPrimaryWritableStep<P extends PgParams>(id: string, advice: string): StepDef<P, { status: Statuses }> {
  const { step } = stepsFor<P>();
  return step({
    id,
    title: 'Guard: the intended primary is the writable node (read from the servers, not the inventory)',
    on: intendedPrimaryHost,
    become: true,
    gather: (ctx) => ({ status: clusterStatus(clusterOf(ctx)) }),
    plan: (f, ctx) => {
      const c = clusterOf(ctx);
      const statuses = f.status;
      const me = statuses[c.intendedPrimary.name]!;
      const t = topology(c, statuses);
      if (!me.up) return blocked(`${c.intendedPrimary.name} (intended primary) does not answer: ${me.error}`);
      const others = t.writable.filter((n) => n.name !== c.intendedPrimary.name);
      if (me.inRecovery)
        return blocked(`${c.intendedPrimary.name} is in recovery; the writable node is ${names(t.writable) || 'none'}. ${advice}`);
      const busy = others.filter((n) => !isPristine(statuses[n.name]!));
      if (busy.length) return blocked(`${names(busy)} are writable too and hold data or clients: two primaries. Refusing; decide which one to keep`);
      return noop(`${c.intendedPrimary.name} is writable${others.length ? `; ${names(others)} pristine stand-alone (to be cloned)` : ''}`);
    },
  });
}

/** failback acts only with exactly one writable node: never with two (split brain) or none (run failover). */
export function failbackGuardStep<P extends PgParams>(id: string): StepDef<P, { status: Statuses }> {
  const { step } = stepsFor<P>();
  return step({
    id,
    title: 'Guard: exactly one writable node (read from the servers)',
    on: intendedPrimaryHost,
    become: true,
    gather: (ctx) => ({ status: clusterStatus(clusterOf(ctx)) }),
    plan: (f, ctx) => {
      const c = clusterOf(ctx);
      const t = topology(c, f.status);
      if (t.writable.length > 1) return blocked(`${names(t.writable)} are all writable: split brain. Stop the node whose writes you give up (its writes after the divergence are lost to pg_rewind), then run failback again`);
      if (!t.primary) return blocked(`no writable node (down: ${names(t.down) || 'none'}; in recovery: ${names(t.inRecovery) || 'none'}): run failover first`);
      return noop(`${t.primary.name} is the writable node${t.primary.intendedPrimary ? ' (the intended primary)' : `; ${c.intendedPrimary.name} comes back`}`);
    },
  });
}
