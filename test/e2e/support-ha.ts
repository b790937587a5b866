/**
 * What the HA fault tests of issue 12 share (ha-*.test.ts, each on a 3-node lab of its own):
 * bringing the lab up with a streaming cluster, the CLI, psql inside hosts (nsenter, not SSH),
 * blackhole routes that are always removed, a writable-node sampler and a writer inside a host.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { labDown, labPaths, labUp, readState } from '../../src/lab/index.js';
import { nsenterArgv } from '../../src/lab/local.js';
import { PSQL_BIN } from '../../src/modules/postgres/facts.js';
import { quoteWord } from '../../src/shell/quote.js';
import { inHost, testLab, type InHostResult, type LabHostInfo } from '../support/lab.js';

export const cli = new URL('../../bin/runbook.js', import.meta.url).pathname;
export const PASSWORD = 'ha-Repl:pw\\1';
export const DATA = '/var/lib/postgresql/15/main';

export interface Run {
  code: number;
  out: string;
  ms: number;
}

export interface HaLab {
  name: string;
  subnet: string;
  inventory: string;
  host: Record<string, LabHostInfo>;
  broughtUp: boolean;
  /** Every route added through blackhole(), removed by clearBlackholes() (also on failure). */
  routes: Array<{ where: 'root' | string; cidr: string }>;
}

/** A lab of its own: by default the 3-node cluster of issue 12; `hosts` / `layout` as `lab up` takes them. */
export async function haUp(base: string, k: number, o: { hosts?: string; layout?: 'debian' | 'rhel' } = {}): Promise<HaLab> {
  const { name, subnet } = testLab(base, k);
  const reuse = process.env.RUNBOOK_LAB_REUSE === '1' && readState(name);
  if (!reuse) {
    await labDown({ name });
    await labUp({ name, subnet, hosts: o.hosts ?? 'pg1=db,pg2=db,pg3=db,nfs1=nfs', ...(o.layout ? { layout: o.layout } : {}) });
  }
  const state = readState(name)!;
  const host: Record<string, LabHostInfo> = {};
  for (const h of state.spec.hosts) host[h.name] = { ...h, lab: name, pid: state.hosts[h.name]!.init.pid };
  return { name, subnet, inventory: labPaths(name).inventory, host, broughtUp: !reuse, routes: [] };
}

export async function haDown(l: HaLab | undefined): Promise<void> {
  if (!l) return;
  await clearBlackholes(l);
  if (l.broughtUp && process.env.RUNBOOK_LAB_KEEP !== '1') await labDown({ name: l.name });
}

export function runbook(l: HaLab, ...args: string[]): Promise<Run> {
  const started = Date.now();
  const [verb, ...rest] = args[0] === 'run' ? args : ['run', ...args];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cli, verb!, ...rest, '-i', l.inventory, '--secret', 'replication_password=env:PGREPL_PW'],
      { encoding: 'utf8', timeout: 600_000, maxBuffer: 64 << 20, env: { ...process.env, CI: '1', PGREPL_PW: PASSWORD } },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, out: `${stdout}\n${stderr}`, ms: Date.now() - started });
      },
    );
  });
}

export function psql(l: HaLab, h: string, query: string): Promise<InHostResult> {
  return inHost(l.host[h]!, `su -s /bin/sh postgres -c 'cd / && psql -XAtq -v ON_ERROR_STOP=1 -c "$0"' ${quoteWord(query)}`);
}

export async function value(l: HaLab, h: string, query: string): Promise<string> {
  const r = await psql(l, h, query);
  if (r.code !== 0) throw new Error(`${h}: ${query}: ${r.stderr}`);
  return r.stdout.trim();
}

export async function eventually(what: string, f: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** A /32 blackhole to `target` inside host `where`'s netns, or in the root netns (the controller). */
export async function blackhole(l: HaLab, where: 'root' | string, target: string): Promise<void> {
  const cidr = `${l.host[target]!.address}/32`;
  l.routes.push({ where, cidr });
  const r = where === 'root' ? await run(['ip', 'route', 'add', 'blackhole', cidr]) : await inHost(l.host[where]!, `ip route add blackhole ${cidr}`);
  if (r.code !== 0) throw new Error(`blackhole ${cidr} in ${where}: ${r.stderr}`);
}

export async function clearBlackholes(l: HaLab): Promise<void> {
  for (const { where, cidr } of l.routes.splice(0).reverse()) {
    if (where === 'root') await run(['ip', 'route', 'del', 'blackhole', cidr]);
    else await inHost(l.host[where]!, `ip route del blackhole ${cidr}`);
  }
}

function run(argv: string[]): Promise<InHostResult> {
  return new Promise((resolve) =>
    execFile(argv[0]!, argv.slice(1), { encoding: 'utf8' }, (error, stdout, stderr) => resolve({ stdout, stderr, code: error ? (typeof error.code === 'number' ? error.code : 1) : 0 })),
  );
}

/**
 * A shell loop running inside a host until stop() (ended by its process group, which we started).
 * `su -c` puts its command in a new session, out of that group: a command that must die with the
 * loop runs under `su --session-command`.
 */
export class HostLoop {
  readonly child: ChildProcess;
  #out = '';
  readonly #closed: Promise<void>;
  constructor(h: LabHostInfo, script: string) {
    const argv = nsenterArgv(h.pid, ['/bin/sh', '-c', script]);
    this.child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => (this.#out += d.toString()));
    this.child.stderr!.on('data', () => {});
    this.#closed = new Promise((r) => this.child.once('close', () => r()));
  }
  get output(): string {
    return this.#out;
  }
  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }
  async stop(): Promise<string> {
    if (!this.exited && this.child.pid) {
      try {
        process.kill(-this.child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    // Its output up to the end; a process that left the group may still hold the pipe: not waited for.
    await Promise.race([this.#closed, new Promise((r) => setTimeout(r, 5_000))]);
    this.child.stdout!.destroy();
    this.child.stderr!.destroy();
    return this.#out;
  }
}

/**
 * $psql_pg: psql itself as postgres, for loops that run it ten times a second: no su (a PAM
 * session each time) and not Debian's Perl wrapper, whose start-up dominated such a loop.
 */
const AS_POSTGRES_PSQL = `psql_pg="setpriv --reuid=postgres --regid=postgres --init-groups ${PSQL_BIN}"`;

/**
 * Every 100 ms, on each database host (inside it, local socket): is it writable? Lines
 * "<epoch ms> <host> w|r|-". Stops with stop(); `overlaps` finds a moment with two writable nodes.
 */
export class WritableSampler {
  readonly loops: Record<string, HostLoop> = {};
  constructor(l: HaLab, hosts: string[]) {
    for (const h of hosts)
      this.loops[h] = new HostLoop(
        l.host[h]!,
        `cd /; ${AS_POSTGRES_PSQL}; while :; do r=$(echo 'SELECT pg_is_in_recovery()' | $psql_pg -XAtq 2>/dev/null); case "$r" in f) s=w;; t) s=r;; *) s=-;; esac; echo "$(date +%s%3N) ${h} $s"; sleep 0.1; done`,
      );
  }
  async stop(): Promise<Array<{ t: number; host: string; s: string }>> {
    const out: Array<{ t: number; host: string; s: string }> = [];
    for (const loop of Object.values(this.loops))
      for (const line of (await loop.stop()).split('\n')) {
        const [t, host, s] = line.trim().split(' ');
        if (t && host && s) out.push({ t: Number(t), host, s });
      }
    return out.sort((a, b) => a.t - b.t);
  }
}

/**
 * Intervals in which a node was writable: from a `w` sample to its next sample. Two intervals of
 * different nodes that overlap are a moment with two writable nodes.
 */
export function twoWritable(samples: Array<{ t: number; host: string; s: string }>): string[] {
  const byHost = new Map<string, Array<{ t: number; s: string }>>();
  for (const x of samples) (byHost.get(x.host) ?? byHost.set(x.host, []).get(x.host)!).push(x);
  const intervals: Array<{ host: string; from: number; to: number }> = [];
  for (const [host, xs] of byHost)
    xs.forEach((x, i) => {
      if (x.s === 'w') intervals.push({ host, from: x.t, to: xs[i + 1]?.t ?? x.t });
    });
  const bad: string[] = [];
  for (const a of intervals) for (const b of intervals) if (a.host < b.host && a.from < b.to && b.from < a.to) bad.push(`${a.host} ${a.from}-${a.to} and ${b.host} ${b.from}-${b.to}`);
  return bad;
}

/** The inventory as the lab wrote it (for vars the tests rely on). */
export function inventoryText(l: HaLab): string {
  return readFileSync(l.inventory, 'utf8');
}

/** Set up the 3-node streaming cluster (fresh lab: every pristine standby is cloned). */
export async function setupCluster(l: HaLab): Promise<Run> {
  return runbook(l, 'setup-warm-standby', '--yes');
}

export async function killPostmaster(l: HaLab, h: string): Promise<void> {
  const r = await inHost(l.host[h]!, `kill -KILL "$(head -n 1 ${DATA}/postmaster.pid)"`);
  if (r.code !== 0) throw new Error(`kill postmaster on ${h}: ${r.stderr}`);
}

/** A client inside host `h` inserting into `table` (an `id` serial) every 50 ms over the local socket; stop() it. */
export function writer(l: HaLab, h: string, table: string): HostLoop {
  return new HostLoop(l.host[h]!, `cd /; ${AS_POSTGRES_PSQL}; while :; do echo 'INSERT INTO ${table} DEFAULT VALUES RETURNING id' | $psql_pg -XAtq 2>/dev/null; sleep 0.05; done`);
}

/** The ids a writer's client saw acknowledged (one per line); a commit in flight at stop() is not among them. */
export function ackedIds(output: string): number[] {
  return output
    .split('\n')
    .map((x) => x.trim())
    .filter((x) => /^\d+$/.test(x))
    .map(Number);
}
