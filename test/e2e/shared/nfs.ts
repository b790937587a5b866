/**
 * enable-nfs-sharing / disable-nfs-sharing on the lab: nfs-ganesha on nfs1, pg1 and pg2 as
 * clients. The lab's kernel has no NFS client, so the mount must be reported skipped with that
 * reason, and the data path is proven with libnfs from the clients. Runs the compiled CLI
 * (`npm run build` first). Checks go through nsenter (test/support/lab.ts), not the code under test.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { inHost, labHost } from '../../support/lab.js';

const inventory = inject('labInventory');
const cli = new URL('../../../bin/runbook.js', import.meta.url).pathname;

function run(runbook: string, ...args: string[]): { code: number; out: string } {
  const r = spawnSync(process.execPath, [cli, 'run', runbook, '-i', inventory, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, CI: '1' } });
  return { code: r.status ?? -1, out: `${r.stdout}\n${r.stderr}` };
}

const sh = async (host: string, script: string) => {
  const r = await inHost(host, script);
  return { ...r, stdout: r.stdout.trim() };
};

describe.skipIf(!inventory)('enable-nfs-sharing with nfs-ganesha', () => {
  let url: string;
  const testFile = `e2e-${randomBytes(4).toString('hex')}.bin`;

  beforeAll(async () => {
    url = `nfs://${labHost('nfs1').address}/srv/share`;
    // Start from a clean server and clients, whatever an earlier run left.
    expect(run('disable-nfs-sharing', '--yes').code).toBe(0);
  });

  afterAll(async () => {
    await sh('nfs1', `rm -f /srv/share/${testFile}`);
    run('disable-nfs-sharing', '--yes');
  });

  it('exports, writes the fstab lines, and reports the kernel-only steps skipped with the reason', async () => {
    const r = run('enable-nfs-sharing', '--yes');
    expect(r.code, r.out).toBe(0);
    for (const host of ['pg1', 'pg2']) {
      expect(r.out).toMatch(new RegExp(`${host}: skipped: this kernel has no NFS client \\(no nfs/nfs4 in /proc/filesystems`));
      expect(r.out).toMatch(new RegExp(`${host}: (changed|ok): .*through libnfs \\(nfs-cp, nfs-cat; NFSv3\\), not a mount`));
      expect((await sh(host, 'cat /etc/fstab')).stdout).toContain(`${labHost('nfs1').address}:/srv/share /mnt/share nfs hard,_netdev,nofail 0 0`);
    }
    expect(r.out).toMatch(/nfs1: skipped: kernel nfsd not usable here: the kernel has no nfsd/);
    const conf = (await sh('nfs1', 'cat /etc/ganesha/ganesha.conf')).stdout;
    expect(conf).toMatch(/Graceless = true;/);
    expect(conf).toMatch(new RegExp(`Clients = ${labHost('pg1').address}, ${labHost('pg2').address};`));
    expect((await sh('nfs1', 'pgrep -x ganesha.nfsd && pgrep -x rpcbind')).code).toBe(0);
  });

  it('a file pg1 writes over NFS reads back with identical bytes on nfs1 and on pg2 over NFS', async () => {
    const w = await sh('pg1', `cd / && head -c 200000 /dev/urandom > /tmp/${testFile} && chmod 644 /tmp/${testFile} && su -s /bin/sh postgres -c 'nfs-cp /tmp/${testFile} "${url}/${testFile}?version=3" >/dev/null' && sha256sum < /tmp/${testFile}`);
    expect(w.code, w.stderr).toBe(0);
    const local = await sh('nfs1', `sha256sum < /srv/share/${testFile}; stat -c %U /srv/share/${testFile}`);
    const remote = await sh('pg2', `cd / && su -s /bin/sh postgres -c 'nfs-cat "${url}/${testFile}?version=3"' | sha256sum`);
    expect(local.stdout.split('\n')).toEqual([w.stdout, 'postgres']);
    expect(remote.stdout).toBe(w.stdout);
    await sh('pg1', `rm -f /tmp/${testFile}`);
  });

  it('a second run in check mode finds nothing to change', () => {
    const r = run('enable-nfs-sharing', '--check');
    expect(r.code, r.out).toBe(0);
    expect(r.out).not.toMatch(/would change/);
  });

  it('refuses bad input before any host is touched', async () => {
    const before = (await sh('pg1', 'cat /etc/fstab')).stdout;
    const relative = run('enable-nfs-sharing', '--yes', '-e', 'exportPath=srv/share', '-e', 'clientAddresses=10.0.0.300,app;reboot');
    expect(relative.code).toBe(2);
    expect(relative.out).toContain('export path "srv/share" is not an absolute path');
    expect(relative.out).toContain('client "10.0.0.300" is not an address, a network or a host name');
    expect(relative.out).toContain('client "app;reboot" is not an address');
    // A path missing on the server is a check that does not hold: exit 4 with the evidence, no host changes.
    const missing = run('enable-nfs-sharing', '--yes', '-e', 'exportPath=/srv/nope', '-e', 'mountPoint=/mnt/nope');
    expect(missing.code, missing.out).toBe(4);
    expect(missing.out).toMatch(/verification failed: the export path is a directory on the server: export path \/srv\/nope does not exist on nfs1/);
    // A guard is still a guard: a backend this server cannot run blocks, exit 8.
    const guard = run('enable-nfs-sharing', '--yes', '-e', 'backend=kernel');
    expect(guard.code, guard.out).toBe(8);
    expect(guard.out).toContain('backend=kernel: ');
    expect((await sh('pg1', 'cat /etc/fstab')).stdout).toBe(before);
    expect((await sh('nfs1', 'cat /etc/ganesha/ganesha.conf')).stdout).not.toContain('/srv/nope');
  });

  it('disabling removes the export and the fstab lines', async () => {
    const r = run('disable-nfs-sharing', '--yes');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/pg1: skipped: this kernel has no NFS client/);
    expect((await sh('nfs1', 'cat /etc/ganesha/ganesha.conf')).stdout).not.toMatch(/^EXPORT \{|nfs share share/m);
    for (const host of ['pg1', 'pg2']) expect((await sh(host, 'cat /etc/fstab')).stdout).not.toMatch(/ nfs /);
    // The export is gone from the running server too: mounting is refused.
    const ls = await sh('pg2', `cd / && nfs-ls "${url}?version=3"`);
    expect(ls.code).not.toBe(0);
    expect(`${ls.stdout}${ls.stderr}`).toMatch(/MNT3ERR_ACCES|Permission denied/);
    expect(run('disable-nfs-sharing', '--check').code).toBe(0);
  });
});
