/**
 * Where a lab keeps its state, and what it records: /var/lib/runbook-lab/NAME/
 *
 *   state.json            the spec and each host's PID 1 (with its start time, so a recycled PID
 *                         is never mistaken for ours)
 *   inventory.yml         generated Ansible inventory for this lab
 *   client/id_ed25519     the lab client key;  client/known_hosts  the hosts' keys
 *   hosts/                a tmpfs: removing thousands of files (PostgreSQL data dirs) from this
 *                         disk took seconds; unmounting is instant, and nothing is left on disk
 *   hosts/H/              init.sh, init.log, etc.upper/ (the /etc overlay), fs/<dir>/ (bind mounts)
 *
 * Not under /run: each host bind-mounts its own /run, which would hide the state from itself.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BadInputError } from '../errors.js';
import type { LabSpec } from './spec.js';

export const STATE_ROOT = process.env.RUNBOOK_LAB_STATE_ROOT ?? '/var/lib/runbook-lab';

export interface ProcRef {
  pid: number;
  /** /proc/PID/stat field 22: with the PID, identifies the process. */
  startTime: string;
}

export interface HostState {
  /** The host's PID 1 as the root namespace sees it: the nsenter handle. */
  init: ProcRef;
  /** The `unshare` that forked it (waits for it in the root PID namespace). */
  launcher?: ProcRef;
}

export interface LabState {
  version: 1;
  spec: LabSpec;
  hosts: Record<string, HostState>;
  upAt: string;
}

export function labPaths(name: string) {
  const dir = join(STATE_ROOT, name);
  return {
    dir,
    stateFile: join(dir, 'state.json'),
    inventory: join(dir, 'inventory.yml'),
    clientDir: join(dir, 'client'),
    clientKey: join(dir, 'client', 'id_ed25519'),
    knownHosts: join(dir, 'client', 'known_hosts'),
    hostsDir: join(dir, 'hosts'),
    hostDir: (host: string) => join(dir, 'hosts', host),
    /** Outside the state dir: down removes the dir while holding the lock. */
    lock: join(STATE_ROOT, `.${name}.lock`),
  };
}

export function readState(name: string): LabState | undefined {
  const file = labPaths(name).stateFile;
  if (!existsSync(file)) return undefined;
  try {
    const state = JSON.parse(readFileSync(file, 'utf8')) as LabState;
    return state.version === 1 ? state : undefined;
  } catch {
    return undefined; // a torn write after a crash: treated as stale
  }
}

export function writeState(state: LabState): void {
  const file = labPaths(state.spec.name).stateFile;
  writeFileSync(`${file}.tmp`, JSON.stringify(state, null, 2) + '\n');
  // rename is atomic: readers see the old or the new state, never half of it
  renameSync(`${file}.tmp`, file);
}

/** Labs that have a state dir (up, or left behind by a crash). */
export function listLabs(): string[] {
  if (!existsSync(STATE_ROOT)) return [];
  return readdirSync(STATE_ROOT, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(STATE_ROOT, d.name, 'state.json')))
    .map((d) => d.name)
    .sort();
}

export function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces and parentheses: split after the last ')'
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export function procRef(pid: number): ProcRef | undefined {
  const startTime = procStartTime(pid);
  return startTime === undefined ? undefined : { pid, startTime };
}

/** Still the very process we recorded (not a zombie, not a recycled PID). */
export function isAlive(ref: ProcRef | undefined): boolean {
  if (!ref) return false;
  if (procStartTime(ref.pid) !== ref.startTime) return false;
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${ref.pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * One lab operation at a time per name (up, down): a lock directory holding the owner's PID.
 * A lock whose owner is gone is stale and taken over.
 */
export async function withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const lock = labPaths(name).lock;
  mkdirSync(STATE_ROOT, { recursive: true });
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), `${process.pid} ${procStartTime(process.pid)}\n`);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const [pid, start] = (safeRead(join(lock, 'pid')) ?? '').trim().split(' ');
      if (!pid || !isAlive({ pid: Number(pid), startTime: start ?? '' })) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new BadInputError(`lab ${name} is busy: process ${pid} holds ${lock}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function safeRead(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
