/**
 * failback: bring the intended primary back. Rejoin it as a standby of the current primary
 * (pg_rewind, or a re-clone when rewind cannot), then a planned switchover with zero-loss gates
 * and a marker row, then rejoin the other node the same way. The end state is the original
 * topology, verified. On a healthy cluster every step is ok and nothing changes.
 */
import { param } from '../src/index.js';
import { clusterOf, pgParams } from '../src/modules/postgres/index.js';
import { definePgRunbook, docs } from '../src/modules/postgres/index.js';
import { type CloneParams, cloneParamProblems, cloneParams, cloneStep } from '../src/modules/postgres/index.js';
import { clusterHosts, layoutStep } from '../src/modules/postgres/index.js';
import { slotsStep } from '../src/modules/postgres/index.js';
import { rewindStep } from '../src/modules/postgres/index.js';
import { standbySteps } from '../src/modules/postgres/index.js';
import { markersEverywhereStep, switchoverStep } from '../src/modules/postgres/index.js';
import { failbackGuardStep } from '../src/modules/postgres/index.js';
import { type SyncParams, syncParams, syncStep } from '../src/modules/postgres/index.js';
import { ledgerSteps } from '../src/modules/postgres/index.js';
import { vipSteps, vipSwitchoverRouting } from '../src/modules/vip/index.js';
import { catchUpStep, directionSteps, findStep, stopStep } from '../src/modules/filesync/index.js';

export const params = {
  ...pgParams,
  ...cloneParams,
  ...syncParams,
  accept_data_loss: param.boolean({
    description: 'let the rejoin discard commits that exist only on the rejoining node (its ledger is kept first); or --approve <prefix>-ledger',
    default: false,
  }),
};

type P = CloneParams & SyncParams & { accept_data_loss: boolean };

export { docs };

/** The node the file sync comes from again after the failback: the intended primary. */
const back = (ctx: Parameters<typeof clusterOf>[0]) => clusterOf(ctx).intendedPrimary.name;

/** Rejoin every node that is not the primary nor a standby of it: rewind, else re-clone, then standby checks. */
function rejoin(prefix: string) {
  return [
    slotsStep<P>(`${prefix}-slots`),
    // Before anything is discarded: where the node left the primary's history, and what it wrote since.
    ...ledgerSteps<P>(prefix, clusterHosts),
    rewindStep<P>(`${prefix}-rewind`, clusterHosts),
    cloneStep<P>(`${prefix}-clone`, clusterHosts, () => ({ explicitTarget: false, allowPristine: false, reclone: false })),
    ...standbySteps<P>(`${prefix}-standby`, clusterHosts),
  ];
}

export default definePgRunbook({
  id: 'failback',
  description: 'Rejoin the old primary (pg_rewind or re-clone), planned switchover back with zero-loss gates, original topology verified',
  params,
  validate: (p: P) => cloneParamProblems(p),
  steps: [
    layoutStep<P>(),
    failbackGuardStep<P>('failback-guard'),
    ...rejoin('rejoin'),
    // File sync, seed 003's order: stop it, bring the primary-to-be's files up to date from the
    // current source, switch over, catch up what came in meanwhile, sync in the original direction.
    findStep<P>('filesync-find', clusterHosts, back),
    stopStep<P>('filesync-stop', clusterHosts, back),
    catchUpStep<P>('filesync-catch-up', back),
    // The VIP moves as part of the switchover (released on the old primary right before its stop).
    switchoverStep<P>('switchover', (ctx) => (ctx.params.vip ? vipSwitchoverRouting(ctx.params.vip) : undefined)),
    catchUpStep<P>('filesync-catch-up-final', back),
    // The new primary's standby rejoins only next: until then it must not wait on it (unless strict).
    syncStep<P>('switchover-synchronous', clusterHosts),
    ...rejoin('rejoin-old'),
    markersEverywhereStep<P>('zero-loss'),
    syncStep<P>('synchronous', clusterHosts),
    // keepalived moves the VIP with the role (only the writable node passes its check): verify it followed.
    ...vipSteps<P>({ nodes: clusterHosts, vip: (p) => p.vip }),
    ...directionSteps<P>('filesync-back', clusterHosts),
  ],
});
