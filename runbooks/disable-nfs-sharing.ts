/**
 * disable-nfs-sharing: clients show who uses the mount, unmount (lazy only with force=true),
 * drop the fstab line; the server drops the export (kernel exports file + exportfs, or the
 * ganesha EXPORT block + reload) and the write/read probe files.
 */
import { defineRunbook, stepsFor, param, noop, change, fact } from '../src/index.js';
import { file, lineInFile, managedBlock } from '../src/index.js';
import { mountFact, mountUsersFact } from '../src/modules/nfs/index.js';
import { raw, sh } from '../src/index.js';
import {
  kernelExportsActiveStep,
  GANESHA_CONF,
  exportsFilePath,
  fstabLineRegexp,
  ganeshaReloadHandler,
  nfsCheckSteps,
  nfsParams,
  onClients,
  onServers,
  planUnmount,
  validateNfs,
  whenBackend,
  whenKernelClient,
  type NfsParams,
} from '../src/modules/nfs/index.js';

const params = {
  ...nfsParams,
  force: param.boolean({ description: 'unmount lazily even while processes use the share', default: false }),
};
type P = NfsParams & { force: boolean };
const { step, phase } = stepsFor<P>();

export default defineRunbook({
  id: 'disable-nfs-sharing',
  description: 'Unmount an NFS share on the clients and remove the export from the server',
  params,
  validate: validateNfs,
  anyErrorsFatal: true,
  steps: [
    phase('check', nfsCheckSteps('disable')),
    phase('clients', [
      step({
        id: 'nfs-unmount',
        title: 'Unmount (refused while in use, unless force=true)',
        on: onClients,
        become: true,
        when: whenKernelClient,
        gather: (ctx) => ({ mount: mountFact(ctx.params.mountPoint), users: mountUsersFact(ctx.params.mountPoint) }),
        plan: (f, ctx) => planUnmount(f.mount, f.users, ctx.params.force),
      }),
      step({
        id: 'nfs-fstab-absent',
        title: 'Remove the fstab line',
        on: onClients,
        become: true,
        operation: (ctx) => lineInFile({ path: '/etc/fstab', regexp: fstabLineRegexp(ctx.params.mountPoint), state: 'absent' }),
      }),
    ]),
    phase('server', [
      step({
        id: 'nfs-ganesha-export-absent',
        title: 'nfs-ganesha: remove the EXPORT block',
        on: onServers,
        become: true,
        when: whenBackend('ganesha', 'disable'),
        operation: (ctx) => managedBlock({ path: GANESHA_CONF, marker: `nfs share ${ctx.params.name}`, block: '', state: 'absent' }),
        notify: ['nfs-ganesha-reload'],
      }),
      step({
        id: 'nfs-kernel-exports-absent',
        title: 'Kernel nfsd: remove the exports file',
        on: onServers,
        become: true,
        when: whenBackend('kernel', 'disable'),
        operation: (ctx) => file({ path: exportsFilePath(ctx.params.name), state: 'absent' }),
      }),
      kernelExportsActiveStep('disable'),
      step({
        id: 'nfs-probe-files-absent',
        title: 'Remove the write/read probe files',
        on: onServers,
        become: true,
        gather: (ctx) => ({
          probes: fact({
            name: 'nfs.probe-files',
            command: sh`cd ${ctx.params.exportPath} 2>/dev/null && ${raw(`for f in .runbook-probe-*; do [ -e "$f" ] && echo "$f"; done; true`)}`,
            parse: (r) => r.stdout.split('\n').filter(Boolean),
          }),
        }),
        plan: (f, ctx) =>
          f.probes.length
            ? change(`remove ${f.probes.join(', ')}`, [sh`cd ${ctx.params.exportPath} && rm -f -- ${f.probes}`])
            : noop('no probe files'),
      }),
    ]),
  ],
  handlers: [ganeshaReloadHandler()],
});
