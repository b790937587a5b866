/**
 * setup-file-sync: keep directories in step from the current primary's host to the other nodes
 * (seeds 001, 003, 004). Each target pulls with rsync over SSH, with a key of its own that the
 * source's authorized_keys restricts to `rrsync -ro PATH` from that target's address (no pty, no
 * forwarding); on a schedule (a systemd timer where systemd runs, cron otherwise) under flock, so
 * two pulls never overlap. The source is the writable PostgreSQL node read from the servers, or
 * -e sync_source=HOST (refused when another node is the writable one). A file written on a target
 * is reported and kept, not overwritten, unless -e delete=true (a mirror: rsync --delete).
 * Verified by a probe file: written on the source, it must arrive on every target within one
 * interval with its bytes and mode.
 */
import { defineRunbook, param, stepsFor } from '../src/index.js';
import type { ParamsOf, RunContext } from '../src/index.js';
import { validateSync, type SyncDef } from '../src/modules/filesync/index.js';
import { definitionStep, directionSteps, keptStep, keysStep, peersReadStep, probeHandler, sourceStep, toolsStep } from '../src/modules/filesync/index.js';

const params = {
  name: param.string({ description: 'name of the sync (files, keys and the schedule are named after it)', default: 'files' }),
  paths: param.list({ description: 'absolute directories to keep in step, e.g. -e paths=/srv/uploads,/srv/databases', default: [] }),
  exclude: param.list({ description: 'rsync exclude patterns, e.g. -e exclude=log/,*.tmp', default: [] }),
  delete: param.boolean({ description: 'mirror: delete on the targets what the source no longer has, overwrite files written there (rsync --delete)', default: false }),
  interval: param.number({ description: 'seconds between pulls (cron: divides 60, or whole minutes/hours)', default: 60 }),
  sync_source: param.string({ description: 'the node to sync from; default: the writable PostgreSQL node, read from the servers' }),
  cluster_group: param.string({ description: 'inventory group of the nodes', default: 'postgres' }),
};
type P = ParamsOf<typeof params>;
const { phase } = stepsFor<P>();

const nodes = (ctx: RunContext<P>) => ctx.select(ctx.params.cluster_group).map((h) => h.name);
const def = (p: P): SyncDef => ({ name: p.name, paths: p.paths.map((x) => x.replace(/(.)\/+$/, '$1')), exclude: p.exclude, delete: p.delete, interval: p.interval });

export default defineRunbook({
  id: 'setup-file-sync',
  description: 'rsync over SSH from the current primary to the other nodes: restricted keys, schedule, lock, verified',
  params,
  validate: (p, ctx) => {
    const problems = validateSync(def(p));
    const n = ctx.select(p.cluster_group);
    if (n.length < 2) problems.push(`cluster_group ${p.cluster_group} must hold at least two hosts, holds ${n.length}`);
    if (p.sync_source && !n.some((h) => h.name === p.sync_source)) problems.push(`sync_source ${p.sync_source} is not a host of ${p.cluster_group}`);
    return problems;
  },
  anyErrorsFatal: true,
  hosts: 'postgres',
  steps: [
    phase('check', [toolsStep<P>('filesync-tools', nodes), sourceStep<P>('filesync-source', nodes, def, (p) => p.sync_source)]),
    phase('definition', [keysStep<P>('filesync-keys', nodes), peersReadStep<P>('filesync-peers', nodes), definitionStep<P>('filesync-definition', nodes)]),
    phase('direction', directionSteps<P>('filesync', nodes, { probe: true })),
    phase('report', [keptStep<P>('filesync-kept', nodes)]),
  ],
  handlers: [probeHandler<P>('filesync-probe')],
});
