/**
 * failover: promote a standby when the primary is lost or must be abandoned. The candidate is
 * chosen by data (most advanced healthy standby); the old primary is fenced with evidence (SSH +
 * pg_ctl status, port refused, or fence_command) and the run refuses (exit 8) while it may still
 * take writes, unless --approve promote-unfenced; it refuses while the old primary is reachable and
 * writable unless -e force=true. Promote once replay caught up, CHECKPOINT, reset the upstream,
 * slots for the others, verify; every other standby then follows the new primary.
 */
import { param } from '../src/index.js';
import { pgParams } from '../src/modules/postgres/index.js';
import { definePgRunbook, docs } from '../src/modules/postgres/index.js';
import { layoutStep } from '../src/modules/postgres/index.js';
import { slotsStep } from '../src/modules/postgres/index.js';
import { candidateAndFollowers, candidateHost, chooseCandidateStep } from '../src/modules/postgres/index.js';
import { fenceStep, peerSshStep, sshReachableNodes } from '../src/modules/postgres/index.js';
import { followNewPrimaryStep } from '../src/modules/postgres/index.js';
import { type FailoverParams, failoverGuardStep, promoteStep, verifyPrimaryStep } from '../src/modules/postgres/index.js';
import { resetUpstreamStep } from '../src/modules/postgres/index.js';
import { type SyncParams, syncParams, syncStep } from '../src/modules/postgres/index.js';
import { vipSteps } from '../src/modules/vip/index.js';
import { directionSteps, findStep } from '../src/modules/filesync/index.js';

export const params = {
  ...pgParams,
  candidate: param.string({ description: 'node to promote; default: the most advanced healthy standby (ties: the higher pg_priority var)' }),
  max_lag_on_failover: param.string({ description: 'refuse a candidate further behind than this (bytes, or 16MB/1GB), unless --approve candidate:NODE', default: '16MB' }),
  ...syncParams,
  force: param.boolean({ description: 'promote even though the old primary is reachable and writable (it is fenced first, with its own confirmation)', default: false }),
  fence_command: param.string({
    description:
      'shell line run on the controller as /bin/sh -c "$fence_command" runbook-fence HOST ADDRESS to fence an old primary SSH cannot reach (exit 0: it can no longer take writes); default: the inventory var fence_command',
  }),
};

type P = FailoverParams & SyncParams;

export { docs };

export default definePgRunbook({
  id: 'failover',
  description: 'Promote the most advanced healthy standby: fence the old primary with evidence, promote, CHECKPOINT, verify; the other standbys follow',
  params,
  // A candidate that names no node would select no host and "succeed" doing nothing.
  validate: (p: P, ctx) => {
    let nodes: string[];
    try {
      nodes = ctx.select(p.cluster_group).map((h) => h.name);
    } catch {
      return []; // the cluster validation reports a bad group
    }
    return p.candidate !== undefined && !nodes.includes(p.candidate) ? [`candidate ${JSON.stringify(p.candidate)} is not a node of ${p.cluster_group} (${nodes.join(', ')})`] : [];
  },
  // Steps run on the candidate (and the standbys that follow it): the old primary's host may be
  // gone; it is judged over the network and over SSH, where an unreachable host is a value.
  steps: [
    chooseCandidateStep<P>(),
    layoutStep<P>(candidateAndFollowers),
    failoverGuardStep<P>(),
    peerSshStep<P>(),
    fenceStep<P>(),
    promoteStep<P>(),
    resetUpstreamStep<P>('new-primary-upstream', candidateHost),
    // Before any write: a new primary whose standbys are gone must not wait on them (unless strict).
    syncStep<P>('new-primary-synchronous', candidateHost),
    { ...slotsStep<P>('slots-on-new-primary'), on: candidateHost },
    verifyPrimaryStep<P>(),
    followNewPrimaryStep<P>('standbys-follow'),
    // The standbys that follow now stream: synchronous again over them.
    syncStep<P>('synchronous-after-follow', candidateHost),
    // keepalived moves the VIP (only the writable node passes its check): verify it followed, on the
    // nodes that answer (the fenced old primary may be gone).
    ...vipSteps<P>({ nodes: candidateAndFollowers, vip: (p) => p.vip }),
    // A file sync (setup-file-sync) now runs from the new primary: the others pull from it. The old
    // primary is included when SSH reaches it (it must stop serving and start pulling); fenced
    // without SSH it is left out (an unreachable host would end a successful failover with exit 5),
    // and failback sets its direction.
    findStep<P>('filesync-find', sshReachableNodes, (ctx) => candidateHost(ctx)[0]),
    ...directionSteps<P>('filesync', sshReachableNodes),
  ],
});
