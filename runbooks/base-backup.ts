/**
 * base-backup: clone or re-clone standbys from the CURRENT primary (read from the servers).
 * Never on a writable node, whatever the flags; the old data dir is moved aside, not deleted.
 */
import { param, type RunContext } from '../src/index.js';
import { pgParams, resolveCluster } from '../src/modules/postgres/index.js';
import { definePgRunbook, docs } from '../src/modules/postgres/index.js';
import { type CloneParams, cloneParamProblems, cloneParams, cloneStep } from '../src/modules/postgres/index.js';
import { clusterHosts, layoutStep } from '../src/modules/postgres/index.js';
import { slotsStep } from '../src/modules/postgres/index.js';
import { standbySteps } from '../src/modules/postgres/index.js';

export const params = {
  ...pgParams,
  target: param.list({ description: 'nodes to (re-)clone; default: every node that is not a healthy standby of the current primary' }),
  reclone: param.boolean({ description: 're-clone even a healthy standby', default: false }),
  ...cloneParams,
};

type P = CloneParams & { target: string[] | undefined; reclone: boolean };

export { docs };

/** The targets, or every node (the current primary then plans a no-op as the source). */
function targets(ctx: RunContext<P>): string[] {
  return ctx.params.target?.length ? ctx.params.target : clusterHosts(ctx);
}

export default definePgRunbook({
  id: 'base-backup',
  description: 'Clone or re-clone standbys from the current primary with pg_basebackup (never a writable node)',
  params,
  validate: (p: P, ctx) => {
    const c = resolveCluster(ctx, p);
    const unknown = Array.isArray(c) ? [] : (p.target ?? []).filter((t) => !c.nodes.some((n) => n.name === t)).map((t) => `target ${t} is not a node of ${c.group}`);
    return [...unknown, ...cloneParamProblems(p)];
  },
  steps: [
    layoutStep<P>(),
    slotsStep<P>('pg-slots'),
    cloneStep<P>('clone-standby', targets, (p) => ({ explicitTarget: Boolean(p.target?.length), allowPristine: false, reclone: p.reclone })),
    ...standbySteps<P>('standby', targets),
  ],
});
