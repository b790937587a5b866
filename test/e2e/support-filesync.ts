/**
 * What the file sync e2e files share (filesync.test.ts, filesync-failover.test.ts, each on a
 * 2-node lab of its own: pg1, pg2, nfs1): the CLI, shell and psql inside hosts (nsenter, not SSH),
 * the sync's traces on the hosts, and waits that poll with generous deadlines (the machine is shared).
 */
import { execFile } from 'node:child_process';
import { labDown, labPaths, labUp, readState } from '../../src/lab/index.js';
import { quoteWord } from '../../src/shell/quote.js';
import { inHost, testLab, type LabHostInfo } from '../support/lab.js';

const cli = new URL('../../bin/runbook.js', import.meta.url).pathname;
export const PASSWORD = 'fsync-e2e-Repl-7';
export const INTERVAL = 10;
export const DIR = '/srv/files';
export const STATE = '/var/lib/runbook/filesync/files';
/** A pull's own time on a loaded machine (two rsyncs over SSH), on top of the interval. */
export const PULL_SLACK_MS = 10_000;

export interface Run {
  code: number;
  out: string;
  ms: number;
}

export interface SyncLab {
  name: string;
  subnet: string;
  inventory: string;
  host: Record<string, LabHostInfo>;
  broughtUp: boolean;
  vip: string;
}

export async function syncLabUp(base: string, k: number): Promise<SyncLab> {
  const { name, subnet } = testLab(base, k);
  const reuse = process.env.RUNBOOK_LAB_REUSE === '1' && readState(name);
  if (!reuse) {
    await labDown({ name });
    await labUp({ name, subnet });
  }
  const state = readState(name)!;
  const host: Record<string, LabHostInfo> = {};
  for (const h of state.spec.hosts) host[h.name] = { ...h, lab: name, pid: state.hosts[h.name]!.init.pid };
  return { name, subnet, inventory: labPaths(name).inventory, host, broughtUp: !reuse, vip: host.pg1!.address.replace(/\.\d+$/, '.100') };
}

export async function syncLabDown(l: SyncLab | undefined): Promise<void> {
  if (l?.broughtUp && process.env.RUNBOOK_LAB_KEEP !== '1') await labDown({ name: l.name });
}

function cmd(args: string[]): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 600_000, maxBuffer: 64 << 20, env: { ...process.env, CI: '1', PGREPL_PW: PASSWORD } }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, out: `${stdout}\n${stderr}`, ms: Date.now() - started });
    });
  });
}

const PG = new Set(['setup-warm-standby', 'failover', 'failback']);
export const run = (l: SyncLab, rb: string, ...args: string[]) => cmd(['run', rb, ...args, '-i', l.inventory, ...(PG.has(rb) ? ['--secret', 'replication_password=env:PGREPL_PW'] : [])]);
export const check = (l: SyncLab, ...args: string[]) => cmd(['check', '-i', l.inventory, ...args]);

export async function sh(l: SyncLab, h: string, script: string): Promise<string> {
  const r = await inHost(l.host[h]!, script);
  if (r.code !== 0) throw new Error(`${h}: ${script}: exit ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}
export const psql = (l: SyncLab, h: string, q: string) => sh(l, h, `su -s /bin/sh postgres -c 'cd / && psql -XAtq -v ON_ERROR_STOP=1 -c "$0"' ${quoteWord(q)}`);

/** Polls f until it holds; returns how long that took. */
export async function eventually(what: string, f: () => Promise<boolean>, ms: number): Promise<number> {
  const started = Date.now();
  while (!(await f())) {
    if (Date.now() - started > ms) throw new Error(`timed out after ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return Date.now() - started;
}

/** sha256 and octal mode of a file on a host, or "absent". */
export const stamp = (l: SyncLab, h: string, path: string) => sh(l, h, `if [ -f ${path} ]; then echo "$(sha256sum ${path} | cut -d' ' -f1) $(stat -c %a ${path})"; else echo absent; fi`);

/** Which hosts hold the sync's schedule and which the source's key entries. */
export async function direction(l: SyncLab): Promise<{ cron: string[]; keys: string[] }> {
  const out: { cron: string[]; keys: string[] } = { cron: [], keys: [] };
  for (const h of ['pg1', 'pg2']) {
    if ((await inHost(l.host[h]!, 'test -f /etc/cron.d/runbook-filesync-files')).code === 0) out.cron.push(h);
    if ((await inHost(l.host[h]!, "grep -q 'BEGIN runbook filesync files' /root/.ssh/authorized_keys")).code === 0) out.keys.push(h);
  }
  return out;
}

/** A file written on `from` must be on `to` within one interval (plus a pull's own time), bytes and mode. */
export async function arrives(l: SyncLab, from: string, to: string, name: string, mode = '604'): Promise<{ ms: number; want: string }> {
  const path = `${DIR}/${name}`;
  await sh(l, from, `printf '%s\\n' ${quoteWord(`${name} from ${from} ${Date.now()}`)} > ${path} && chmod ${mode} ${path}`);
  const want = await stamp(l, from, path);
  const ms = await eventually(`${path} from ${from} on ${to}`, async () => (await stamp(l, to, path)) === want, INTERVAL * 1000 + PULL_SLACK_MS);
  return { ms, want };
}

/**
 * After a direction change: the first pull the *schedule* makes on `h` (cron loads a new file at
 * the next minute), i.e. a status line written after `since` (epoch s). Returns its source address.
 */
export async function scheduledPull(l: SyncLab, h: string, since: number): Promise<string> {
  let source = '';
  await eventually(
    `a scheduled pull on ${h} after ${since}`,
    async () => {
      const m = /^ok (\d+) (\S+)/.exec(await sh(l, h, `cat ${STATE}/status 2>/dev/null || true`));
      if (m && Number(m[1]) >= since) source = m[2]!;
      return source !== '';
    },
    (60 + 2 * INTERVAL) * 1000 + PULL_SLACK_MS,
  );
  return source;
}

/** pg1 primary, pg2 its streaming standby; then the sync pg1 → pg2 of DIR every INTERVAL s. */
export async function setupClusterAndSync(l: SyncLab): Promise<{ standby: Run; sync: Run }> {
  const standby = await run(l, 'setup-warm-standby', '--yes');
  if (standby.code !== 0) return { standby, sync: standby };
  await sh(l, 'pg1', `mkdir -p ${DIR} && echo before > ${DIR}/before.txt`);
  const sync = await run(l, 'setup-file-sync', '--yes', '-e', `paths=${DIR}`, '-e', `interval=${INTERVAL}`, '-e', 'exclude=*.tmp');
  return { standby, sync };
}

export const killPostmaster = (l: SyncLab, h: string) => sh(l, h, 'kill -KILL "$(head -n 1 /var/lib/postgresql/15/main/postmaster.pid)"');
export const pgDown = async (l: SyncLab, h: string) => (await inHost(l.host[h]!, "su -s /bin/sh postgres -c 'pg_isready -q'")).code !== 0;

export interface CheckReport {
  status: string;
  candidate: string | null;
  findings: Array<{ check: string; host: string; status: string; message: string }>;
}
export const parseReport = (out: string): CheckReport => JSON.parse(out.slice(0, out.lastIndexOf('}') + 1)) as CheckReport;
export const criticals = (r: CheckReport) => r.findings.filter((f) => f.status === 'CRITICAL').map((f) => `${f.check}@${f.host}: ${f.message}`).join('\n');
