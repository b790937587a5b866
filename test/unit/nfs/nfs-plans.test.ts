import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { raw } from '../../../src/shell/index.js';
import { parseFuser, parseMount, parseNfsHost } from '../../../src/modules/nfs/facts.js';
import {
  chooseBackend,
  exportsFilePath,
  fstabLineRegexp,
  ganeshaExportId,
  isValidClient,
  kernelClientUnavailable,
  libnfsUrl,
  missingKernelExports,
  parseExportfs,
  parseOptions,
  planKernelExportActive,
  planMount,
  shareSpec,
  validateNfs,
  planUnmount,
  renderFstabLine,
  renderGaneshaExport,
  renderKernelExports,
  probeContent,
  probeReadCommand,
  probeWriteCommand,
  parseProbeRead,
  planProbe,
  shareProblems,
  startOrReloadGanesha,
  type ShareSpec,
} from '../../../src/modules/nfs/nfs.js';

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/nfs/${name}`, import.meta.url), 'utf8');

const spec: ShareSpec = {
  name: 'share',
  exportPath: '/srv/share',
  mountPoint: '/mnt/share',
  exportOptions: ['rw', 'sync', 'root_squash'],
  mountOptions: [],
  clients: ['10.231.0.11', '10.231.0.12'],
  serverAddress: '10.231.0.13',
};

describe('host facts and backend choice', () => {
  it('the lab host: no kernel NFS, ganesha chosen, mount reported unavailable with the reason', () => {
    const host = parseNfsHost(fixture('host-lab.txt'));
    expect(host.kernel).toEqual({ clientFs: false, serverFs: false, clientModule: false, serverModule: false });
    expect(host.init).toBe('none');
    const b = chooseBackend('auto', host);
    expect(b).toMatchObject({ backend: 'ganesha' });
    expect('why' in b && b.why).toMatch(/kernel nfsd unusable: the kernel has no nfsd/);
    expect(chooseBackend('kernel', host)).toEqual({ blocked: expect.stringMatching(/^backend=kernel: the kernel has no nfsd/) });
    expect(kernelClientUnavailable(host.kernel)).toMatch(/no nfs\/nfs4 in \/proc\/filesystems/);
  });

  it('a host with kernel nfsd: auto picks the kernel; without ganesha, ganesha is refused', () => {
    const host = parseNfsHost(fixture('host-kernel-nfs.txt'));
    expect(host.kernel.serverFs && host.kernel.clientFs).toBe(true);
    expect(host.init).toBe('systemd');
    expect(chooseBackend('auto', host)).toMatchObject({ backend: 'kernel' });
    expect(chooseBackend('ganesha', host)).toEqual({ blocked: 'backend=ganesha: nfs-ganesha is not installed' });
    expect(kernelClientUnavailable(host.kernel)).toBeUndefined();
  });

  it('a module on disk counts: the kernel loads it on first use', () => {
    const host = parseNfsHost('filesystems=ext4\nmodules=nfs nfsd\ntool.exportfs=/usr/sbin/exportfs\n');
    expect(chooseBackend('auto', host)).toMatchObject({ backend: 'kernel' });
    expect(kernelClientUnavailable(host.kernel)).toBeUndefined();
  });

  it('neither backend: blocked with both reasons', () => {
    const r = chooseBackend('auto', parseNfsHost('filesystems=ext4\n'));
    expect(r).toEqual({ blocked: expect.stringContaining('nfs-ganesha is not installed') });
  });
});

describe('kernel nfsd', () => {
  it('renders one managed exports line with every client and its options', () => {
    expect(exportsFilePath('share')).toBe('/etc/exports.d/share.exports');
    expect(renderKernelExports(spec)).toBe(
      '# Managed by runbook (share share); edits are overwritten.\n' +
        '/srv/share 10.231.0.11(rw,sync,root_squash,no_subtree_check) 10.231.0.12(rw,sync,root_squash,no_subtree_check)\n',
    );
  });

  it('keeps an explicit subtree_check', () => {
    expect(renderKernelExports({ ...spec, exportOptions: ['ro', 'subtree_check'] })).toContain('10.231.0.11(ro,subtree_check) ');
  });

  it('parses exportfs -v, wrapped long paths included, and finds missing clients', () => {
    const entries = parseExportfs(fixture('exportfs-v.txt'));
    expect(entries).toHaveLength(3);
    expect(entries[2]).toEqual({ path: '/srv/a/very/long/exported/path/name', client: '10.0.0.0/24', options: expect.arrayContaining(['ro', 'root_squash']) });
    expect(missingKernelExports(entries, spec)).toEqual([]);
    expect(missingKernelExports(entries, { ...spec, clients: ['10.231.0.11', '10.231.0.14'] })).toEqual(['10.231.0.14']);
  });
});

describe('nfs-ganesha', () => {
  it('renders an EXPORT block: VFS, clients only, squash and access from the options', () => {
    const block = renderGaneshaExport(spec);
    expect(block).toContain(`Export_Id = ${ganeshaExportId('share')};`);
    expect(block).toContain('Path = "/srv/share";');
    expect(block).toContain('Pseudo = "/srv/share";');
    expect(block).toMatch(/FSAL \{ Name = VFS; \}/);
    expect(block).toMatch(/ {4}Access_Type = None;/);
    expect(block).toMatch(/CLIENT \{\n {8}Clients = 10\.231\.0\.11, 10\.231\.0\.12;\n {8}Access_Type = RW;/);
    expect(block).toContain('Squash = Root_Squash;');
    expect(renderGaneshaExport({ ...spec, exportOptions: ['ro', 'no_root_squash', 'anonuid=70'] })).toMatch(/Squash = No_Root_Squash;[\s\S]*Anonymous_Uid = 70;[\s\S]*Access_Type = RO;/);
  });

  it('export ids are stable and differ between shares', () => {
    expect(ganeshaExportId('share')).toBe(ganeshaExportId('share'));
    expect(ganeshaExportId('share')).not.toBe(ganeshaExportId('backups'));
    expect(ganeshaExportId('x')).toBeGreaterThanOrEqual(1000);
  });

  it('starts ganesha as a process without an init system, reloads a running one with SIGHUP', () => {
    expect(startOrReloadGanesha('none', undefined, '/run/ganesha/ganesha.pid').toString()).toBe(
      'mkdir -p /var/log/ganesha /run/ganesha && setsid ganesha.nfsd -f /etc/ganesha/ganesha.conf -p /run/ganesha/ganesha.pid -L /var/log/ganesha/ganesha.log </dev/null',
    );
    expect(startOrReloadGanesha('none', 321, '/run/ganesha/ganesha.pid').toString()).toBe('kill -HUP 321');
    expect(startOrReloadGanesha('systemd', 321, '/x').toString()).toBe('systemctl reload-or-restart nfs-ganesha');
  });
});

describe('client', () => {
  it('fstab line is hard, _netdev, nofail plus the extra options, once each', () => {
    expect(renderFstabLine(spec)).toBe('10.231.0.13:/srv/share /mnt/share nfs hard,_netdev,nofail 0 0');
    expect(renderFstabLine({ ...spec, mountOptions: ['vers=4.2', 'hard', 'noatime'] })).toBe('10.231.0.13:/srv/share /mnt/share nfs hard,_netdev,nofail,vers=4.2,noatime 0 0');
    expect(renderFstabLine({ ...spec, serverAddress: 'fd00::13' })).toMatch(/^\[fd00::13\]:\/srv\/share /);
  });

  it('the fstab regexp finds our line and a hand-written one, not other mount points', () => {
    const re = fstabLineRegexp('/mnt/share');
    expect(re.test(renderFstabLine(spec))).toBe(true);
    expect(re.test('nfs1:/data0  /mnt/share  nfs4 ro,sync 0 0')).toBe(true);
    expect(re.test('nfs1:/data0 /mnt/share2 nfs ro 0 0')).toBe(false);
    expect(re.test('/dev/sda1 /mnt/share ext4 defaults 0 0')).toBe(false);
  });

  it('mount: mkdir + mount from fstab; noop when mounted; blocked over something else', () => {
    const fresh = planMount(parseMount('/mnt/share', 'directory=no\n'), spec);
    expect(fresh.kind === 'change' && fresh.commands.map(String)).toEqual(['mkdir -p /mnt/share', 'mount /mnt/share']);
    expect(planMount(parseMount('/mnt/share', 'directory=yes\nsource=10.231.0.13:/srv/share\nfstype=nfs4\n'), spec).kind).toBe('noop');
    const other = planMount(parseMount('/mnt/share', 'directory=yes\nsource=/dev/sdb1\nfstype=ext4\n'), spec);
    expect(other).toEqual({ kind: 'blocked', reason: '/mnt/share already has /dev/sdb1 (ext4) mounted; unmount it first' });
  });

  it('unmount: refuses while in use (names the users), lazy only with force, noop when not mounted', () => {
    const mounted = parseMount('/mnt/share', 'directory=yes\nsource=10.231.0.13:/srv/share\nfstype=nfs\n');
    const users = parseFuser(fixture('fuser-vm.stderr'));
    // The kernel's own "mount" row has no pid and is not a user.
    expect(users).toEqual([
      { user: 'postgres', pid: 4242, command: 'bash' },
      { user: 'postgres', pid: 4300, command: 'postgres' },
    ]);
    const busy = planUnmount(mounted, users, false);
    expect(busy.kind).toBe('blocked');
    expect(busy.kind === 'blocked' && busy.reason).toMatch(/in use by bash \(pid 4242, postgres\), postgres \(pid 4300, postgres\): stop them, or pass force=true/);
    const forced = planUnmount(mounted, users, true);
    expect(forced.kind === 'change' && forced.commands.map(String)).toEqual(['umount -l /mnt/share']);
    const idle = planUnmount(mounted, [], false);
    expect(idle.kind === 'change' && idle.commands.map(String)).toEqual(['umount /mnt/share']);
    expect(planUnmount(parseMount('/mnt/share', 'directory=yes\n'), [], false).kind).toBe('noop');
  });

  it('write/read probe: read through libnfs or the mount; written as the service user when missing', () => {
    expect(libnfsUrl('10.231.0.13', '/srv/share/.runbook-probe-pg1')).toBe('nfs://10.231.0.13/srv/share/.runbook-probe-pg1?version=3');
    expect(probeReadCommand('libnfs', spec, 'pg1').toString()).toBe("nfs-cat 'nfs://10.231.0.13/srv/share/.runbook-probe-pg1?version=3'");
    expect(probeReadCommand('mount', spec, 'pg1').toString()).toBe('cat /mnt/share/.runbook-probe-pg1');
    const write = probeWriteCommand('libnfs', spec, 'pg1', 'postgres').toString();
    expect(write.startsWith("cd / && runuser -u postgres -- sh -c ")).toBe(true);
    expect(write).toContain('nfs-cp "$l" ');
    expect(write).toContain('nfs://10.231.0.13/srv/share/.runbook-probe-pg1?version=3');
    const expected = probeContent('pg1', 'postgres');
    expect(parseProbeRead(expected, '', 0, expected)).toEqual({ kind: 'same' });
    expect(parseProbeRead('runbook write/read probe fr', '', 0, expected)).toEqual({ kind: 'different', content: 'runbook write/read probe fr' });
    const missing = parseProbeRead('', 'Failed to open nfs://10.231.0.13/srv/share/.runbook-probe-pg1: NFS: Lookup of /.runbook-probe-pg1 failed with NFS3ERR_NOENT(-2)\n', 1, expected);
    expect(missing).toEqual({ kind: 'missing' });
    expect(parseProbeRead('', 'Failed to mount nfs share : mount/mnt call failed with "RPC error: Mount failed with error MNT3ERR_ACCES(13)"\n', 1, expected)).toMatchObject({ kind: 'error', message: expect.stringContaining('MNT3ERR_ACCES') });
    const how = 'through libnfs';
    expect(planProbe({ kind: 'same' }, how, raw('w'), 'postgres')).toEqual({ kind: 'noop', reason: 'the probe written by postgres reads back identical through libnfs' });
    expect(planProbe(missing, how, raw('w'), 'postgres')).toMatchObject({ kind: 'change', commands: [raw('w')] });
    expect(planProbe({ kind: 'different', content: 'x' }, how, raw('w'), 'postgres').kind).toBe('blocked');
  });
});

describe('bad input is refused before anything changes', () => {
  it('accepts addresses, networks and host names', () => {
    for (const c of ['10.231.0.11', '10.231.0.0/24', 'pg1', 'db-1.example.com', 'fd00::1']) expect(isValidClient(c), c).toBe(true);
  });

  it('refuses what is neither', () => {
    for (const c of ['10.231.0.300', '10.1.2', '10.0.0.0/33', 'pg1;reboot', 'a b', '-rf', 'pg_1', '', '10.0.0.1/24/1']) expect(isValidClient(c), c).toBe(false);
  });

  it('lists every problem at once', () => {
    const problems = shareProblems({
      ...spec,
      exportPath: 'srv/share',
      mountPoint: '/mnt/my share',
      exportOptions: parseOptions('rw,ro,bogus'),
      mountOptions: ['soft'],
      clients: ['10.231.0.11', 'not a host'],
    });
    expect(problems).toEqual([
      'export path "srv/share" is not an absolute path',
      `mount point "/mnt/my share" holds a space or one of , ( ) " ' # ; { } \\ =`,
      expect.stringMatching(/^export option "bogus" is not one of/),
      'export options: rw and ro together',
      'mount option soft: the share is always mounted hard (a soft mount can lose writes)',
      'client "not a host" is not an address, a network or a host name',
    ]);
    expect(shareProblems(spec)).toEqual([]);
    expect(shareProblems({ ...spec, clients: [] })).toEqual(['no clients: give a client group with hosts, or client addresses']);
    expect(shareProblems({ ...spec, exportPath: '/srv/../etc' })).toEqual(['export path "/srv/../etc" contains ..']);
  });
});

describe('kernel nfsd plan from exportfs -v, and runbook validation', () => {
  const entries = parseExportfs(fixture('exportfs-v.txt'));

  it('exportfs -ra only when a client is missing or exported with other options', () => {
    expect(planKernelExportActive(entries, spec, true)).toEqual({ kind: 'noop', reason: 'exportfs -v shows /srv/share for 10.231.0.11, 10.231.0.12' });
    const ro = planKernelExportActive(entries, { ...spec, exportOptions: ['ro'] }, true);
    expect(ro).toMatchObject({ kind: 'change', summary: 'exportfs -ra: 10.231.0.11, 10.231.0.12 not exported as wanted' });
    expect(ro.kind === 'change' && ro.commands.map(String)).toEqual(['exportfs -ra']);
    expect(planKernelExportActive(entries, spec, false)).toMatchObject({ kind: 'change', summary: 'exportfs -ra: /srv/share is still exported' });
    expect(planKernelExportActive([], spec, false).kind).toBe('noop');
  });

  it('validate: one server, a sane owner and user, plus every share problem', () => {
    const host = (name: string, address: string) => ({ name, address, vars: {}, groups: [] });
    const groups: Record<string, ReturnType<typeof host>[]> = {
      nfs_servers: [host('nfs1', '10.231.0.13')],
      postgres: [host('pg1', '10.231.0.11'), host('pg2', '10.231.0.12')],
    };
    const ctx = { params: {} as never, hosts: [], checkMode: false, now: () => new Date(), select: (p: string) => groups[p] ?? [] };
    const params = { name: 'share', exportPath: '/srv/share', mountPoint: '/mnt/share', options: 'rw,sync', mountOptions: '', owner: 'postgres', user: 'postgres', servers: 'nfs_servers', clients: 'postgres', clientAddresses: [], backend: 'auto' };
    expect(validateNfs(params, ctx)).toEqual([]);
    expect(shareSpec(params, ctx)).toMatchObject({ clients: ['10.231.0.11', '10.231.0.12'], serverAddress: '10.231.0.13' });
    expect(validateNfs({ ...params, servers: 'postgres', owner: 'post gres', user: '-x' }, ctx)).toEqual([
      'servers "postgres" must match exactly one host, matches 2 (pg1, pg2)',
      'owner "post gres" is not a user[:group] name or uid[:gid]',
      'user "-x" is not a user name',
    ]);
  });
});
