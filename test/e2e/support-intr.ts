/**
 * The lab of the fault-injection tests (interrupt.test.ts, secrets.test.ts): testLab('intr', 5),
 * pg1 + pg2, brought up once and reused (RUNBOOK_LAB_REUSE=1) or made fresh.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { labDown, labPaths, labUp, readState } from '../../src/lab/index.js';
import type { ConnectionSpec } from '../../src/inventory/types.js';
import { quoteWord } from '../../src/shell/quote.js';
import { inHost, testLab, type InHostResult, type LabHostInfo } from '../support/lab.js';

export const intrLab = testLab('intr', 5);
export const cli = new URL('../../bin/runbook.js', import.meta.url).pathname;

export interface IntrLab {
  inventory: string;
  host: Record<string, LabHostInfo>;
  broughtUp: boolean;
}

export async function intrUp(): Promise<IntrLab> {
  const reuse = process.env.RUNBOOK_LAB_REUSE === '1' && readState(intrLab.name);
  let broughtUp = false;
  if (!reuse) {
    await labDown({ name: intrLab.name });
    await labUp({ name: intrLab.name, subnet: intrLab.subnet, hosts: 'pg1=db,pg2=db' });
    broughtUp = true;
  }
  const state = readState(intrLab.name)!;
  const host: Record<string, LabHostInfo> = {};
  for (const h of state.spec.hosts) host[h.name] = { ...h, lab: intrLab.name, pid: state.hosts[h.name]!.init.pid };
  return { inventory: labPaths(intrLab.name).inventory, host, broughtUp };
}

export async function intrDown(l: IntrLab | undefined): Promise<void> {
  if (l?.broughtUp && process.env.RUNBOOK_LAB_KEEP !== '1') await labDown({ name: intrLab.name });
}

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
export function runbook(args: string[], env: Record<string, string> = {}, timeoutMs = 600_000): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20, env: { ...process.env, CI: '1', FORCE_COLOR: '0', ...env } }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, out: `${stdout}\n${stderr}`, ms: Date.now() - started });
    });
  });
}

/** The CLI started in the background: for a signal or a kill -9 mid-run. */
export function startRunbook(args: string[], env: Record<string, string> = {}): { child: ChildProcess; output: () => string; done: Promise<Run> } {
  const started = Date.now();
  let out = '';
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: '1', FORCE_COLOR: '0', ...env } });
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
