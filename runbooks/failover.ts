/**
 * failover: promote a standby when the primary is lost or must be abandoned. Fence first (stop
 * the old primary and keep it from starting as a primary), refuse while it is reachable and
 * writable unless -e force=true, promote once replay caught up, CHECKPOINT, reset the upstream,
 * keep a slot for the old primary's return, verify.
 */
import { param } from '../src/index.js';
import { pgParams } from '../src/modules/postgres/cluster.js';
import { definePgRunbook, docs } from '../src/modules/postgres/runbook.js';
import { clusterHosts, layoutStep } from '../src/modules/postgres/steps/inspect.js';
import { slotsStep } from '../src/modules/postgres/steps/primary.js';
import { type FailoverParams, candidateHost, failoverGuardStep, fenceStep, promoteStep, verifyPrimaryStep } from '../src/modules/postgres/steps/promote.js';
import { resetUpstreamStep } from '../src/modules/postgres/steps/standby.js';
import { vipSteps } from '../src/modules/vip/vip.js';
import { directionSteps, findStep } from '../src/modules/filesync/steps.js';

export const params = {
  ...pgParams,
  candidate: param.string({ description: 'node to promote; default: the first node that is not the intended primary' }),
  force: param.boolean({ description: 'promote even though the old primary is reachable and writable (it is fenced first, with its own confirmation)', default: false }),
};

type P = FailoverParams;

export { docs };

export default definePgRunbook({
  id: 'failover',
  description: 'Promote a standby: fence the old primary, candidate checks, promote, CHECKPOINT, verify',
  params,
  // Every step runs on the candidate only: the old primary's host may be gone; it is judged over
  // the network and fenced through SSH when its host answers.
  steps: [
    layoutStep<P>(candidateHost),
    failoverGuardStep<P>(),
    fenceStep<P>(),
    promoteStep<P>(),
    resetUpstreamStep<P>('new-primary-upstream', candidateHost),
    { ...slotsStep<P>('slot-for-old-primary'), on: candidateHost },
    verifyPrimaryStep<P>(),
    // keepalived moves the VIP by itself (only the writable node passes its check): verify it followed.
    ...vipSteps<P>({ nodes: clusterHosts, vip: (p) => p.vip }),
    // A file sync (setup-file-sync) now runs from the new primary: the others pull from it.
    findStep<P>('filesync-find', clusterHosts, (ctx) => candidateHost(ctx)[0]),
    ...directionSteps<P>('filesync', clusterHosts),
  ],
});
