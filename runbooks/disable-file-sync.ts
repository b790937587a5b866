/**
 * disable-file-sync: stop and remove a file sync everywhere: the timer or cron file (waiting for a
 * pull that is running), the restricted key entries in authorized_keys, the keys, conf, script,
 * lock and state. The synced files themselves stay where they are.
 */
import { defineRunbook, param, stepsFor } from '../src/index.js';
import type { ParamsOf, RunContext } from '../src/index.js';
import { validateSync } from '../src/modules/filesync/index.js';
import { removeSteps } from '../src/modules/filesync/index.js';

const params = {
  name: param.string({ description: 'name of the sync to remove', default: 'files' }),
  cluster_group: param.string({ description: 'inventory group of the nodes', default: 'postgres' }),
};
type P = ParamsOf<typeof params>;
const { phase } = stepsFor<P>();
const nodes = (ctx: RunContext<P>) => ctx.select(ctx.params.cluster_group).map((h) => h.name);

export default defineRunbook({
  id: 'disable-file-sync',
  description: 'Remove a file sync: schedule, restricted key entries, keys, locks and state (the files stay)',
  params,
  validate: (p) => validateSync({ name: p.name, paths: ['/x'], exclude: [], delete: false, interval: 60 }),
  hosts: 'postgres',
  steps: [phase('remove', removeSteps<P>('filesync', nodes, (p) => [p.name]))],
});
