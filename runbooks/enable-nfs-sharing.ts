/**
 * enable-nfs-sharing: the server exports a path to the clients, the clients mount it, and each
 * client proves it can write and read the share as the service user. Seeds 002/003.
 *
 * Server backends: kernel nfsd (/etc/exports.d/NAME.exports + exportfs) or nfs-ganesha (an EXPORT
 * block + rpcbind), detected or chosen with backend=. Where the kernel has no NFS client (read
 * from /proc/filesystems) the mount is skipped with that reason, and the write/read test goes
 * through libnfs (nfs-cp / nfs-cat) instead; it says so.
 */
import { defineRunbook, stepsFor } from '../src/index.js';
import type { StepContext } from '../src/index.js';
import { file, directory, lineInFile, managedBlock } from '../src/index.js';
import { service } from '../src/index.js';
import { mountFact } from '../src/modules/nfs/index.js';
import {
  kernelExportsActiveStep,
  GANESHA_CONF,
  GANESHA_CORE_BLOCK,
  exportsFilePath,
  fstabLineRegexp,
  ganeshaReloadHandler,
  ganeshaService,
  nfsCheckSteps,
  nfsParams,
  nfsState,
  onClients,
  onServers,
  planMount,
  renderFstabLine,
  renderGaneshaExport,
  renderKernelExports,
  rpcbindService,
  shareProbeFact,
  planProbe,
  probeWriteCommand,
  shareSpec,
  validateNfs,
  whenBackend,
  whenKernelClient,
  type NfsParams,
} from '../src/modules/nfs/index.js';

const { step, phase } = stepsFor<NfsParams>();
const via = (ctx: StepContext<NfsParams>) => (nfsState(ctx).nfsNoKernelClient ? 'libnfs' : 'mount');
const ganeshaBlockMarker = (name: string) => `nfs share ${name}`;

export default defineRunbook({
  id: 'enable-nfs-sharing',
  description: 'Export a path from an NFS server (kernel nfsd or nfs-ganesha) and mount it on the clients',
  params: nfsParams,
  validate: validateNfs,
  // A blocked check (say, the export path missing on the server) stops every host before any change.
  anyErrorsFatal: true,
  steps: [
    phase('check', nfsCheckSteps('enable')),
    phase('server', [
      step({
        id: 'nfs-export-owner',
        title: 'Owner of the exported directory',
        on: onServers,
        become: true,
        when: (ctx) => (ctx.params.owner ? true : 'owner="" leaves the owner as it is'),
        operation: (ctx) => {
          const [owner, group] = ctx.params.owner.split(':');
          return directory({ path: ctx.params.exportPath, owner: owner!, ...(group ? { group } : {}) });
        },
      }),
      step({
        id: 'nfs-kernel-exports-file',
        title: 'Kernel nfsd: managed exports file',
        on: onServers,
        become: true,
        when: whenBackend('kernel', 'enable'),
        operation: (ctx) => file({ path: exportsFilePath(ctx.params.name), content: renderKernelExports(shareSpec(ctx.params, ctx)), mode: '0644' }),
      }),
      kernelExportsActiveStep('enable'),
      step({
        id: 'nfs-ganesha-core',
        title: 'nfs-ganesha: no grace period on (re)start',
        on: onServers,
        become: true,
        when: whenBackend('ganesha', 'enable'),
        operation: () => managedBlock({ path: GANESHA_CONF, marker: 'nfs-ganesha core', block: GANESHA_CORE_BLOCK }),
        notify: ['nfs-ganesha-reload'],
      }),
      step({
        id: 'nfs-ganesha-export',
        title: 'nfs-ganesha: EXPORT block',
        on: onServers,
        become: true,
        when: whenBackend('ganesha', 'enable'),
        operation: (ctx) => managedBlock({ path: GANESHA_CONF, marker: ganeshaBlockMarker(ctx.params.name), block: renderGaneshaExport(shareSpec(ctx.params, ctx)) }),
        notify: ['nfs-ganesha-reload'],
      }),
      step({
        id: 'nfs-rpcbind',
        title: 'rpcbind running (ganesha registers NFSv3 with it)',
        on: onServers,
        become: true,
        when: whenBackend('ganesha', 'enable'),
        operation: (ctx) => service(rpcbindService(nfsState(ctx).nfsInit ?? 'none')),
      }),
      step({
        id: 'nfs-ganesha-running',
        title: 'nfs-ganesha running',
        on: onServers,
        become: true,
        when: whenBackend('ganesha', 'enable'),
        operation: (ctx) => service(ganeshaService(nfsState(ctx).nfsInit ?? 'none')),
      }),
    ]),
    phase('clients', [
      step({
        id: 'nfs-fstab',
        title: 'fstab line (hard, _netdev, nofail)',
        on: onClients,
        become: true,
        operation: (ctx) => {
          const spec = shareSpec(ctx.params, ctx);
          return lineInFile({ path: '/etc/fstab', line: renderFstabLine(spec), regexp: fstabLineRegexp(spec.mountPoint) });
        },
      }),
      step({
        id: 'nfs-mount',
        title: 'Mount the share',
        on: onClients,
        become: true,
        when: whenKernelClient,
        gather: (ctx) => ({ mount: mountFact(ctx.params.mountPoint) }),
        plan: (f, ctx) => planMount(f.mount, shareSpec(ctx.params, ctx)),
      }),
      step({
        id: 'nfs-write-read',
        title: 'Write and read the share as the service user',
        on: onClients,
        become: true,
        // ganesha may still be registering with rpcbind right after its start.
        retries: 2,
        gather: (ctx) => ({ probe: shareProbeFact(shareSpec(ctx.params, ctx), ctx.host.name, via(ctx), ctx.params.user) }),
        plan: (f, ctx) => {
          const why = nfsState(ctx).nfsNoKernelClient;
          const how = why ? `through libnfs (nfs-cp, nfs-cat; NFSv3), not a mount: ${why}` : 'through the kernel mount';
          return planProbe(f.probe, how, probeWriteCommand(via(ctx), shareSpec(ctx.params, ctx), ctx.host.name, ctx.params.user), ctx.params.user);
        },
      }),
    ]),
  ],
  handlers: [ganeshaReloadHandler()],
});
