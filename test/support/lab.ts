/**
 * The lab from a test's side: which labs the e2e run uses, where their inventories are, how to
 * reach a host over SSH (a ConnectionSpec for the project's transport), and how to look inside a
 * host *independently* of SSH (nsenter into its namespaces) to check what a runbook did.
 *
 * test/e2e/global-setup.ts brings the labs up (or reuses them with RUNBOOK_LAB_REUSE=1); tests
 * only read them. A test that breaks a lab on purpose brings up its own with `--name`.
 */
import { execFile } from 'node:child_process';
import type { ConnectionSpec } from '../../src/inventory/types.js';
import { quoteWord } from '../../src/shell/quote.js';
import { labDown, labPaths, labUp, nsenterArgv, readState, type LabHost, type LabState } from '../../src/lab/index.js';

/**
 * RUNBOOK_TEST_SLOT=N (1-7) gives a whole test run labs of its own, so two runs of the suite (two
 * checkouts, two helpers) never share or tear down each other's: lab names end in `-sN` and every
 * subnet moves to 10.231.(32N+k).0/24. Slot 0 (the default) keeps the plain names.
 */
export const testSlot = (() => {
  const n = Number(process.env.RUNBOOK_TEST_SLOT ?? 0);
  if (!Number.isInteger(n) || n < 0 || n > 7) throw new Error(`RUNBOOK_TEST_SLOT=${process.env.RUNBOOK_TEST_SLOT}: an integer 0-7`);
  return n;
})();

/**
 * A test lab: `base` names it, `k` (0-31, one per e2e lab, fixed so that labs brought up at the same
 * moment never race for a free subnet) places it. Each file's header comment names its k; grep
 * `testLab(` for the ones taken.
 */
export function testLab(base: string, k: number): { name: string; subnet: string } {
  if (!Number.isInteger(k) || k < 0 || k > 31) throw new Error(`testLab(${base}, ${k}): k is 0-31`);
  return { name: testSlot ? `${base}-s${testSlot}` : base, subnet: `10.231.${32 * testSlot + k}.0/24` };
}

/** The labs of an e2e run: the Debian layout and the RHEL layout. Same env as global-setup.ts. */
// Not the demo's `lab` (10.231.0.0/24): `npm run demo` leaves it up, and `npm test` right after
// must neither refuse nor take it down.
export const labSpecs = {
  debian: { ...testLab('e2e-lab', 20), ...(process.env.RUNBOOK_LAB_NAME ? { name: process.env.RUNBOOK_LAB_NAME } : {}) },
  rhel: { ...testLab('e2e-rhel', 21), ...(process.env.RUNBOOK_LAB_RHEL_NAME ? { name: process.env.RUNBOOK_LAB_RHEL_NAME } : {}) },
} as const;
export const labNames = { debian: labSpecs.debian.name, rhel: labSpecs.rhel.name } as const;
export type LabLayout = keyof typeof labNames;

/** The generated inventory of a lab that is up (in its state dir; paths inside are absolute). */
export function labInventoryPath(layout: LabLayout = 'debian'): string {
  return labPaths(labNames[layout]).inventory;
}

export function labState(layout: LabLayout = 'debian'): LabState {
  const name = labNames[layout];
  const state = readState(name);
  if (!state) throw new Error(`lab ${name} is not up: run the e2e project (global setup) or \`runbook lab up --name ${name}\``);
  return state;
}

export interface LabHostInfo extends LabHost {
  lab: string;
  /** The host's PID 1 as seen from here: the handle for nsenter. */
  pid: number;
}

export function labHost(host: string, layout: LabLayout = 'debian'): LabHostInfo {
  const state = labState(layout);
  const spec = state.spec.hosts.find((h) => h.name === host);
  const recorded = state.hosts[host];
  if (!spec || !recorded) throw new Error(`lab ${state.spec.name} has no host ${host}`);
  return { ...spec, lab: state.spec.name, pid: recorded.init.pid };
}

export function labHosts(layout: LabLayout = 'debian'): LabHostInfo[] {
  return labState(layout).spec.hosts.map((h) => labHost(h.name, layout));
}

/** How the transport reaches a lab host: as ops with become (default), host-key checking on. */
export function labConnectionSpec(host: string | LabHostInfo, opts: { layout?: LabLayout; user?: string } = {}): ConnectionSpec {
  const info = typeof host === 'string' ? labHost(host, opts.layout) : host;
  const paths = labPaths(info.lab);
  return {
    name: info.name,
    address: info.address,
    port: 22,
    user: opts.user ?? 'ops',
    privateKeyFile: paths.clientKey,
    knownHostsFile: paths.knownHosts,
    become: (opts.user ?? 'ops') !== 'root',
  };
}

export interface InHostResult {
  stdout: string;
  stderr: string;
  code: number;
}

/**
 * Runs a shell script as root inside a host through nsenter, not SSH: for checks that must not
 * depend on the code under test. Never throws on a non-zero exit; read `code`.
 */
export function inHost(host: string | LabHostInfo, script: string, layout?: LabLayout): Promise<InHostResult> {
  const info = typeof host === 'string' ? labHost(host, layout) : host;
  const argv = nsenterArgv(info.pid, ['/bin/sh', '-c', script]);
  return new Promise((resolve) => {
    execFile(
      argv[0]!,
      argv.slice(1),
      { cwd: '/', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', HOME: '/root' }, encoding: 'utf8', timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ stdout, stderr, code });
      },
    );
  });
}

/** Runs SQL as postgres on a database host's local socket (via nsenter); returns psql's -At output. */
export async function psqlInHost(host: string | LabHostInfo, query: string, layout?: LabLayout): Promise<InHostResult> {
  // the query arrives as $0 of postgres's shell: quoted once, never re-parsed
  return inHost(host, `su -s /bin/sh postgres -c 'psql -XAt -v ON_ERROR_STOP=1 -c "$0"' ${quoteWord(query)}`, layout);
}

/** A lab a test file brings up for itself (testLab): its inventory, its hosts, whether it owns it. */
export interface OwnLab {
  name: string;
  inventory: string;
  host: Record<string, LabHostInfo>;
  broughtUp: boolean;
}

/**
 * Brings the file's own lab up fresh (a leftover of a crashed run is taken down first), or with
 * RUNBOOK_LAB_REUSE=1 uses it as it is when it is up.
 */
export async function ownLabUp(lab: { name: string; subnet: string }, o: { hosts?: string; layout?: LabLayout } = {}): Promise<OwnLab> {
  let broughtUp = false;
  if (!(process.env.RUNBOOK_LAB_REUSE === '1' && readState(lab.name))) {
    await labDown({ name: lab.name });
    await labUp({ name: lab.name, subnet: lab.subnet, layout: o.layout ?? 'debian', ...(o.hosts ? { hosts: o.hosts } : {}) });
    broughtUp = true;
  }
  const state = readState(lab.name)!;
  const host: Record<string, LabHostInfo> = {};
  for (const h of state.spec.hosts) host[h.name] = { ...h, lab: lab.name, pid: state.hosts[h.name]!.init.pid };
  return { name: lab.name, inventory: labPaths(lab.name).inventory, host, broughtUp };
}

/** Takes down a lab ownLabUp brought up (not a reused one; RUNBOOK_LAB_KEEP=1 keeps it). */
export async function ownLabDown(l: OwnLab | undefined): Promise<void> {
  if (l?.broughtUp && process.env.RUNBOOK_LAB_KEEP !== '1') await labDown({ name: l.name });
}
