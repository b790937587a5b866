/**
 * The labs of the fault-injection tests: interrupt.test.ts on testLab('intr', 5), secrets.test.ts
 * on testLab('secrets', 27) (a lab each: the files run side by side), pg1 + pg2, brought up once
 * and reused (RUNBOOK_LAB_REUSE=1) or made fresh.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { labPaths } from '../../src/lab/index.js';
import type { ConnectionSpec } from '../../src/inventory/types.js';
import { quoteWord } from '../../src/shell/quote.js';
import { inHost, ownLabDown, ownLabUp, testLab, type InHostResult, type LabHostInfo, type OwnLab } from '../support/lab.js';

export const intrLab = testLab('intr', 5);
export const secretsLab = testLab('secrets', 27);
export const cli = new URL('../../bin/runbook.js', import.meta.url).pathname;

export type IntrLab = OwnLab;

export const intrUp = (lab: { name: string; subnet: string } = intrLab): Promise<IntrLab> => ownLabUp(lab, { hosts: 'pg1=db,pg2=db' });
export const intrDown = ownLabDown;

export function specOf(h: LabHostInfo): ConnectionSpec {
  const paths = labPaths(h.lab);
  return { name: h.name, address: h.address, port: 22, user: 'ops', privateKeyFile: paths.clientKey, knownHostsFile: paths.knownHosts, become: true };
}

export interface Run {
  code: number;
  out: string;
  ms: number;
}

/** The compiled CLI as a child process. */
export function runbook(args: string[], env: Record<string, string> = {}, timeoutMs = 600_000, cwd?: string): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { ...(cwd ? { cwd } : {}), encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20, env: { ...process.env, CI: '1', FORCE_COLOR: '0', ...env } }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, out: `${stdout}\n${stderr}`, ms: Date.now() - started });
    });
  });
}

/** The CLI started in the background: for a signal or a kill -9 mid-run. */
export function startRunbook(args: string[], env: Record<string, string> = {}, cwd?: string): { child: ChildProcess; output: () => string; done: Promise<Run> } {
  const started = Date.now();
  let out = '';
  const child = spawn(process.execPath, [cli, ...args], { ...(cwd ? { cwd } : {}), stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: '1', FORCE_COLOR: '0', ...env } });
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<Run>((resolve) =>
    child.on('close', (code, signal) => resolve({ code: code ?? (signal === 'SIGKILL' ? 137 : -1), out, ms: Date.now() - started })),
  );
  return { child, output: () => out, done };
}

export async function waitUntil(what: string, f: () => Promise<boolean> | boolean, ms = 60_000, every = 200): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** Processes on a host whose command line matches an ERE (pgrep inside the host's PID namespace). */
export async function processes(h: LabHostInfo, pattern: string): Promise<string[]> {
  const r: InHostResult = await inHost(h, `pgrep -a -f ${quoteWord(pattern)} | grep -v pgrep || true`);
  return r.stdout.split('\n').filter((l) => l.trim());
}

export const psql = (h: LabHostInfo, query: string) =>
  inHost(h, `su -s /bin/sh postgres -c 'cd / && psql -XAtq -v ON_ERROR_STOP=1 -c "$0"' ${quoteWord(query)}`);

export async function value(h: LabHostInfo, query: string): Promise<string> {
  const r = await psql(h, query);
  if (r.code !== 0) throw new Error(`${h.name}: ${query}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Every process on the host: PID, session, command line. */
export async function processTable(h: LabHostInfo): Promise<Array<{ pid: number; sid: number; args: string }>> {
  const r = await inHost(h, 'ps -eo pid=,sid=,args=');
  return r.stdout
    .split('\n')
    .map((l) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => Boolean(m))
    .map((m) => ({ pid: Number(m[1]), sid: Number(m[2]), args: m[3]! }));
}

/** Sessions of detached jobs still running on the host (their supervisors' PIDs). */
export async function runningJobs(h: LabHostInfo): Promise<Map<number, string>> {
  const r = await inHost(h, 'for d in /var/lib/runbook/jobs/*/; do [ -f "$d/pid" ] && [ ! -f "$d/exit" ] && kill -0 "$(cat "$d/pid")" 2>/dev/null && echo "$(cat "$d/pid") $(basename "$d")"; done; true');
  return new Map(r.stdout.split('\n').filter(Boolean).map((l) => [Number(l.split(' ')[0]), l.split(' ')[1]!] as [number, string]));
}

/**
 * Processes that were not there in `baseline` and are neither PostgreSQL's own (postmaster,
 * backends, walsenders) nor part of a running recorded detached job: what a run left behind.
 */
export async function strays(h: LabHostInfo, baseline: Set<number>): Promise<string[]> {
  const jobs = await runningJobs(h);
  return (await processTable(h))
    .filter((p) => !baseline.has(p.pid) && !jobs.has(p.sid))
    .filter((p) => !/^(postgres:|\/usr\/lib\/postgresql\/)/.test(p.args) && !/^(ps -eo|\/bin\/sh -c ps -eo|sshd: \[accepted\]|sshd: \[net\])/.test(p.args))
    .map((p) => `${p.pid} (sid ${p.sid}) ${p.args}`);
}

/** Runs `script` in the host with SECRET in its environment (never in a file or an argv). */
export function inHostWithSecret(h: LabHostInfo, script: string, secretValue: string): Promise<InHostResult> {
  return new Promise((resolve) => {
    execFile('nsenter', ['-t', String(h.pid), '-m', '-u', '-i', '-n', '-p', '/bin/sh', '-c', script], { cwd: '/', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', SECRET: secretValue }, encoding: 'utf8', timeout: 300_000, maxBuffer: 16 << 20 }, (error, stdout, stderr) =>
      resolve({ stdout, stderr, code: error ? (typeof error.code === 'number' ? error.code : 1) : 0 }),
    );
  });
}

/** An `ip route add blackhole` in the root namespace: the controller loses the host; undone by the returned function. */
export async function blackhole(address: string): Promise<() => Promise<void>> {
  const ip = (...a: string[]) => new Promise<void>((resolve, reject) => execFile('ip', a, (e) => (e ? reject(e) : resolve())));
  await ip('route', 'add', 'blackhole', `${address}/32`);
  return async () => ip('route', 'del', 'blackhole', `${address}/32`).catch(() => undefined);
}
