/**
 * The first steps of every pg runbook: which nodes form the cluster, and each node's layout
 * (remembered for the later steps on that host).
 */
import { blocked, noop, stepsFor } from '../../../engine/define.js';
import type { RunContext, StepDef } from '../../../engine/types.js';
import { layoutFact } from '../layout-facts.js';
import { LAYOUT_KEY, type PgParams, clusterOf, resolveCluster } from '../cluster.js';
import { describeLayout, type PgLayout } from '../layout.js';
import { unsupportedReason, versionNumOfMajor } from '../version.js';

/** Host names of the cluster group (the `on` of steps that run on every node). */
export function clusterHosts<P extends PgParams>(ctx: RunContext<P>): string[] {
  const c = resolveCluster(ctx, ctx.params);
  return Array.isArray(c) ? [] : c.nodes.map((n) => n.name);
}

/** The intended primary only. */
export function intendedPrimaryHost<P extends PgParams>(ctx: RunContext<P>): string[] {
  const c = resolveCluster(ctx, ctx.params);
  return Array.isArray(c) ? [] : [c.intendedPrimary.name];
}

/** RunbookDef.validate for every pg runbook. */
export function validateCluster<P extends PgParams>(params: P, ctx: RunContext<P>): string[] {
  const c = resolveCluster(ctx, params);
  return Array.isArray(c) ? c : [];
}

export function layoutStep<P extends PgParams>(on: (ctx: RunContext<P>) => string[] = clusterHosts): StepDef<P, { layout: PgLayout | string }> {
  const { step } = stepsFor<P>();
  return step({
    id: 'pg-layout',
    title: 'Detect the PostgreSQL layout (version, directories, start/stop)',
    on,
    become: true,
    gather: (ctx) => ({ layout: layoutFact(ctx.host.vars) }),
    plan: (f) => layoutPlan(f.layout),
    remember: (f) => (typeof f.layout === 'string' ? {} : { [LAYOUT_KEY]: f.layout }),
  });
}

/**
 * The first step of every pg runbook refuses a host it cannot handle before any step touches
 * anything: an undecidable layout, or a PostgreSQL older than 13 (exit 8, its reason).
 */
export function layoutPlan(layout: PgLayout | string) {
  if (typeof layout === 'string') return blocked(layout);
  const old = unsupportedReason(versionNumOfMajor(layout.version));
  return old ? blocked(`${describeLayout(layout)}: ${old}`) : noop(describeLayout(layout));
}

export { clusterOf };
