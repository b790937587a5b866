/**
 * The lab: real hosts on one machine, built from Linux namespaces (see ../../../shared notes and
 * host-init.ts). up / down / status for the CLI, the e2e global setup, the demo and the benchmark.
 *
 * RHEL layout (`--layout rhel`), what differs from a real RHEL/PGDG box: the binaries are Debian's
 * PostgreSQL 15 (exposed at /usr/pgsql-15/bin by a symlink, `pg_config` still names Debian paths and
 * the default socket directory is /var/run/postgresql); there is no systemd, so no
 * `systemctl … postgresql-15` (control with `pg_ctl -D /var/lib/pgsql/15/data`); there is no
 * dnf/rpm; /etc/os-release and /etc/redhat-release are written to say RHEL 9.4 so os-based
 * detection agrees with the layout; postgresql-common's cluster tools (pg_lsclusters,
 * pg_ctlcluster, …) are hidden.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { BadInputError } from '../errors.js';
import { teardown } from './cleanup.js';
import { buildAccounts, prepareHostFs } from './host-fs.js';
import { startHost, tcpOpen, waitForSshd } from './host-init.js';
import { renderInventory } from './inventory.js';
import { ensureClientKey, hostPublicKey, writeKnownHosts } from './keys.js';
import { checkSubnetFree, createNetwork, listNetworkObjects } from './network.js';
import { run } from './local.js';
import { initPostgres } from './postgres.js';
import { requirePackages, requireRoot } from './preflight.js';
import { buildSpec, labName, labPgMajor, labTag, PRESETS, sameShape, type LabSpec } from './spec.js';
import { describeLabPg, ensurePgServer } from './pg-server.js';
import { isAlive, labPaths, listLabs, readState, withLock, writeState, type LabState } from './state.js';

export { labPaths, listLabs, readState, STATE_ROOT, type LabState } from './state.js';
export { names, labPgMajor, type LabSpec, type LabHost } from './spec.js';
export { describeLabPg, ensurePgServer, LAB_PG_MAJORS } from './pg-server.js';
export { nsenterArgv } from './local.js';

export interface UpOptions {
  name?: string;
  subnet?: string;
  /** "pg1=db,pg2=db,nfs1=nfs" or a count of plain hosts. */
  hosts?: string;
  layout?: string;
  /** PostgreSQL major of the database hosts: 15 (Debian's) or 13, 14, 16, 17 (pg-server.ts). */
  pgVersion?: string;
}

export type Log = (line: string) => void;
const quiet: Log = () => {};

export interface UpResult {
  state: LabState;
  alreadyUp: boolean;
  ms: number;
}

/** Hosts started at once by `lab up`. */
const START_WAVE = 25;

export async function labUp(opts: UpOptions = {}, log: Log = quiet): Promise<UpResult> {
  requireRoot('up');
  requirePackages();
  const name = labName(opts.name);
  const started = Date.now();
  return withLock(name, async () => {
    const existing = readState(name);
    // rebuilding after a crash keeps the lab's shape unless told otherwise
    const previous = existing && {
      hosts: existing.spec.hosts.map((h) => `${h.name}=${h.role}`).join(','),
      layout: existing.spec.layout,
      pgVersion: labPgMajor(existing.spec),
    };
    const spec = buildSpec({ ...previous, ...definedOnly(opts), name }, defaultNet(name, existing));
    if (existing) {
      if (await isHealthy(existing)) {
        const explicit = opts.subnet !== undefined || opts.hosts !== undefined || opts.layout !== undefined || opts.pgVersion !== undefined;
        if (explicit && !sameShape(existing.spec, spec)) {
          throw new BadInputError(`lab ${name} is up with other hosts, subnet, layout or PostgreSQL version; run \`runbook lab down --name ${name}\` first`);
        }
        log(`lab ${name} is already up`);
        return { state: existing, alreadyUp: true, ms: Date.now() - started };
      }
      log(`lab ${name}: cleaning up what a previous run left`);
    }
    // Before anything is built: a failed download leaves nothing to tear down.
    if (spec.hosts.some((h) => h.role === 'db')) await ensurePgServer(labPgMajor(spec), log);
    await cleanupStale(existing ?? { spec }, log);
    try {
      const state = await build(spec, log);
      return { state, alreadyUp: false, ms: Date.now() - started };
    } catch (error) {
      // a half-built lab is worse than none: take down what was made, report the first error
      await teardown(spec, readState(name)).catch(() => {});
      throw error;
    }
  });
}

async function build(spec: LabSpec, log: Log): Promise<LabState> {
  const paths = labPaths(spec.name);
  await checkSubnetFree(spec);
  mkdirSync(paths.clientDir, { recursive: true });
  mkdirSync(paths.hostsDir, { recursive: true });
  const state: LabState = { version: 1, spec, hosts: {}, upAt: new Date().toISOString() };
  writeState(state); // from here on, `lab down` and a later `lab up` can find what to clean
  await run(['mount', '-t', 'tmpfs', '-o', 'mode=0755', `runbook-lab-${spec.name}`, paths.hostsDir]);
  const [clientPub] = await Promise.all([ensureClientKey(paths.clientKey, `runbook-lab-${spec.name}`), createNetwork(spec)]);
  const accounts = buildAccounts();
  for (const host of spec.hosts) prepareHostFs(spec, host, paths.hostDir(host.name), accounts, clientPub);

  log(`lab ${spec.name}: starting ${spec.hosts.length} hosts on ${spec.net}.0/24`);
  // In waves: each host's start-up deadline runs from its own spawn, and 200 spawns issued at once
  // (a fork each, from a busy process) took longer than that deadline on a loaded 2-core machine.
  for (let i = 0; i < spec.hosts.length; i += START_WAVE)
    await Promise.all(
      spec.hosts.slice(i, i + START_WAVE).map(async (host) => {
        state.hosts[host.name] = await startHost(spec, host, paths.hostDir(host.name));
      }),
    );
  writeState(state);
  await Promise.all(spec.hosts.map((h) => waitForSshd(h, paths.hostDir(h.name), state.hosts[h.name]!)));
  writeKnownHosts(paths.knownHosts, spec.hosts.map((host) => ({ host, key: hostPublicKey(paths.hostDir(host.name)) })));
  writeFileSync(paths.inventory, renderInventory(spec));

  const dbHosts = spec.hosts.filter((h) => h.role === 'db');
  if (dbHosts.length) {
    log(`lab ${spec.name}: initialising ${describeLabPg(labPgMajor(spec))} (${spec.layout} layout) on ${dbHosts.map((h) => h.name).join(', ')}`);
    await Promise.all(dbHosts.map((h) => initPostgres(state.hosts[h.name]!.init.pid, spec.layout, labPgMajor(spec))));
  }
  state.upAt = new Date().toISOString();
  writeState(state);
  return state;
}

export interface DownResult {
  wasUp: boolean;
  ms: number;
}

export async function labDown(opts: { name?: string } = {}, log: Log = quiet): Promise<DownResult> {
  requireRoot('down');
  const name = labName(opts.name);
  const started = Date.now();
  return withLock(name, async () => {
    const state = readState(name);
    const leftovers = await listNetworkObjects({ tag: labTag(name) });
    const wasUp = state !== undefined || leftovers.netns.length + leftovers.links.length > 0;
    if (wasUp) await teardown({ name, tag: labTag(name) }, state);
    log(wasUp ? `lab ${name} is down` : `lab ${name} was not up`);
    return { wasUp, ms: Date.now() - started };
  });
}

export interface HostStatus {
  name: string;
  role: string;
  address: string;
  pid?: number;
  running: boolean;
  sshd: boolean;
}

export interface LabStatus {
  name: string;
  up: boolean;
  stateDir: string;
  inventory: string;
  spec?: LabSpec;
  upAt?: string;
  hosts: HostStatus[];
}

export async function labStatus(opts: { name?: string } = {}): Promise<LabStatus> {
  const name = labName(opts.name);
  const paths = labPaths(name);
  const state = readState(name);
  const hosts = await Promise.all(
    (state?.spec.hosts ?? []).map(async (h): Promise<HostStatus> => {
      const running = isAlive(state?.hosts[h.name]?.init);
      return {
        name: h.name,
        role: h.role,
        address: h.address,
        pid: state?.hosts[h.name]?.init.pid,
        running,
        sshd: running && (await tcpOpen(h.address, 22)),
      };
    }),
  );
  return {
    name,
    up: hosts.length > 0 && hosts.every((h) => h.running && h.sshd),
    stateDir: paths.dir,
    inventory: paths.inventory,
    spec: state?.spec,
    upAt: state?.upAt,
    hosts,
  };
}

async function isHealthy(state: LabState): Promise<boolean> {
  const status = await labStatus({ name: state.spec.name });
  return status.up;
}

async function cleanupStale(from: { spec: LabSpec } | LabState, log: Log): Promise<void> {
  const state = 'hosts' in from ? from : undefined;
  const objects = await listNetworkObjects(from.spec);
  if (state || objects.netns.length + objects.links.length > 0) {
    if (!state) log(`lab ${from.spec.name}: removing stale ${[...objects.netns, ...objects.links].join(', ')}`);
    await teardown(from.spec, state);
  }
}

/** Presets have their place (lab 10.231.0, rhel 10.231.1); others keep their last subnet or take a free 10.231.N. */
function defaultNet(name: string, existing: LabState | undefined): string {
  if (existing) return existing.spec.net;
  const preset = PRESETS[name];
  if (preset) return preset.net;
  const taken = new Set([...listLabs().map((n) => readState(n)?.spec.net), ...Object.values(PRESETS).map((p) => p.net)]);
  for (let n = 2; n < 255; n++) if (!taken.has(`10.231.${n}`)) return `10.231.${n}`;
  throw new BadInputError('no free 10.231.N.0/24 subnet left: pass --subnet');
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
