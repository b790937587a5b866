/**
 * What every PostgreSQL runbook shares: the cluster group as its hosts, the inventory contract as
 * its docs, the cluster validation, and "any error is fatal" (a half-done HA change on one node
 * while the other goes on is how split brains start).
 */
import { defineRunbook } from '../../engine/define.js';
import type { ParamSpecs, RunbookDef, RunContext, StepDef } from '../../engine/types.js';
import type { PgParams } from './cluster.js';
import { inventoryContract } from './docs.js';
import { validateCluster } from './steps/inspect.js';

export const docs = inventoryContract();

export function definePgRunbook<S extends ParamSpecs>(def: {
  id: string;
  description: string;
  params: S;
  steps: Array<StepDef<any, any>>;
  /** Problems beyond the cluster's own (reported together with them). */
  validate?: (params: any, ctx: RunContext<any>) => string[];
}): RunbookDef<any, S> {
  const { validate, ...rest } = def;
  // The pg runbooks' params are typed by their steps (StepDef<P extends PgParams>): the runbook as a whole is RunbookDef<any, S>.
  const pg: RunbookDef<any, S> = {
    ...rest,
    docs,
    hosts: 'postgres',
    anyErrorsFatal: true,
    validate: (p: PgParams, ctx: RunContext<any>) => [...validateCluster(p, ctx), ...(validate?.(p, ctx) ?? [])],
  };
  return defineRunbook<S>(pg);
}
