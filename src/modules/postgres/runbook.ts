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
  return defineRunbook<S>({
    ...rest,
    docs,
    hosts: 'postgres',
    anyErrorsFatal: true,
    validate: (p: PgParams, ctx: RunContext<any>) => [...validateCluster(p, ctx), ...(validate?.(p, ctx) ?? [])],
  } as never);
}
