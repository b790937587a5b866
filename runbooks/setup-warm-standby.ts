/**
 * setup-warm-standby: primary-side configuration on every node (so failback works later), then
 * clone each standby from the intended primary and verify it streams. Idempotent: a second run
 * changes nothing.
 */
import { param } from '../src/index.js';
import { pgParams } from '../src/modules/postgres/index.js';
import { definePgRunbook, docs } from '../src/modules/postgres/index.js';
import { type CloneParams, cloneParamProblems, cloneParams, cloneStep } from '../src/modules/postgres/index.js';
import { intendedPrimaryWritableStep } from '../src/modules/postgres/index.js';
import { clusterHosts, layoutStep } from '../src/modules/postgres/index.js';
import { type ReplicationSettingsParams, archiveVerifyStep, primaryConfigSteps, settingsProblems } from '../src/modules/postgres/index.js';
import { syncParams, syncStep } from '../src/modules/postgres/index.js';
import { standbySteps } from '../src/modules/postgres/index.js';

export const params = {
  ...pgParams,
  wal_keep_size: param.string({ description: 'wal_keep_size on every node', default: '256MB' }),
  max_slot_wal_keep_size: param.string({ description: 'max_slot_wal_keep_size: WAL an abandoned slot may pin', default: '2GB' }),
  wal_archive_dir: param.string({ description: 'optional WAL archive directory (local or an NFS mount): basic_archive from 15, a temp-sync-link archive_command before; never overwrites a different file' }),
  wal_archive_shared: param.boolean({ description: 'wal_archive_dir is one shared mount on every node: standbys get a restore_command from it (else none: they could not read it)', default: false }),
  ...syncParams,
  ...cloneParams,
};

type P = ReplicationSettingsParams & CloneParams;

export { docs };

export default definePgRunbook({
  id: 'setup-warm-standby',
  description: 'Streaming replication: primary-side config on every node, standbys cloned from the intended primary, verified',
  params,
  validate: (p: P, ctx) => {
    let hosts: ReturnType<typeof ctx.select> = [];
    try {
      hosts = ctx.select(p.cluster_group);
    } catch {
      // the cluster validation reports a bad group
    }
    return [...settingsProblems(p, hosts), ...cloneParamProblems(p)];
  },
  steps: [
    layoutStep<P>(),
    intendedPrimaryWritableStep<P>('guard-intended-primary', 'Run failback to restore the intended topology, or fix pg_primary in the inventory.'),
    ...primaryConfigSteps<P>(),
    cloneStep<P>('clone-standby', clusterHosts, () => ({ explicitTarget: false, allowPristine: true, reclone: false })),
    ...standbySteps<P>('standby', clusterHosts),
    archiveVerifyStep<P>('wal-archive-verify'),
    syncStep<P>('pg-synchronous', clusterHosts),
  ],
});
