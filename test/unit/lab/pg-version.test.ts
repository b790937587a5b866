/** The lab's --pg-version: spec, per-host mounts, and the package's symlinks re-made without its install script. */
import { mkdirSync, mkdtempSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hostMounts } from '../../../src/lab/host-fs.js';
import { describeLabPg, hydrateSymlinks, pgServerDir } from '../../../src/lab/pg-server.js';
import { buildSpec, labPgMajor, sameShape } from '../../../src/lab/spec.js';

describe('lab --pg-version', () => {
  it('defaults to 15; labs made before the option count as 15; a change of major is another shape', () => {
    const v15 = buildSpec({ name: 'x', hosts: 'pg1=db,nfs1=nfs' }, '10.231.5');
    const v13 = buildSpec({ name: 'x', hosts: 'pg1=db,nfs1=nfs', pgVersion: '13' }, '10.231.5');
    expect(v15.pgVersion).toBe('15');
    expect(labPgMajor({})).toBe('15');
    expect(sameShape(v15, { ...v15, pgVersion: undefined })).toBe(true);
    expect(sameShape(v15, v13)).toBe(false);
    expect(() => buildSpec({ name: 'x', pgVersion: '12' }, '10.231.5')).toThrow('--pg-version 12: one of 13, 14, 15, 16, 17');
  });

  it('Debian layout: only database hosts of another major get the /usr/lib/postgresql overlay', () => {
    const spec = buildSpec({ name: 'x', hosts: 'pg1=db,nfs1=nfs', pgVersion: '17' }, '10.231.5');
    const [db, nfs] = spec.hosts;
    const targets = (s: typeof spec, h: typeof db) => hostMounts(s, h!, '/h').map((m) => m.target);
    expect(targets(spec, db)).toContain('/usr/lib/postgresql');
    expect(targets(spec, nfs)).not.toContain('/usr/lib/postgresql');
    const v15 = buildSpec({ name: 'x', hosts: 'pg1=db' }, '10.231.5');
    expect(targets(v15, v15.hosts[0])).not.toContain('/usr/lib/postgresql');
    // RHEL overlays all of /usr already; /usr/pgsql-17 is made there.
    const rhel = buildSpec({ name: 'x', hosts: 'pg1=db', layout: 'rhel', pgVersion: '17' }, '10.231.5');
    expect(hostMounts(rhel, rhel.hosts[0]!, '/h').map((m) => m.target)).toEqual(expect.arrayContaining(['/usr', '/var/lib']));
    expect(pgServerDir('15')).toBe('/usr/lib/postgresql/15');
    expect(describeLabPg('13')).toContain('no pg_rewind 13');
  });

  it("hydrateSymlinks re-makes pg-symlinks.json's links relative to their directory, and leaves existing files", () => {
    const pkg = mkdtempSync(join(tmpdir(), 'rb-pgpkg-'));
    mkdirSync(join(pkg, 'native', 'lib'), { recursive: true });
    writeFileSync(join(pkg, 'native', 'lib', 'libpq.so.5.13'), '');
    writeFileSync(join(pkg, 'native', 'lib', 'libz.so'), 'real file');
    writeFileSync(
      join(pkg, 'native', 'pg-symlinks.json'),
      JSON.stringify([
        { source: 'native/lib/libpq.so.5.13', target: 'native/lib/libpq.so.5' },
        { source: 'native/lib/libz.so.1', target: 'native/lib/libz.so' },
      ]),
    );
    expect(hydrateSymlinks(pkg)).toBe(1);
    expect(readlinkSync(join(pkg, 'native', 'lib', 'libpq.so.5'))).toBe('libpq.so.5.13');
  });
});
