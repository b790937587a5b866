/**
 * Taking a lab apart, also after a crash: stop every process of the lab by PID (SIGTERM to each
 * host's init, which passes it on; SIGKILL to what is left), delete the netns and links, remove
 * the hosts' tmpfs and the state dir. Host mounts live in the hosts' own mount namespaces and
 * vanish with their last process. Only processes we started are touched: recorded PIDs (checked by start time) and
 * processes inside the lab's own network namespaces.
 */
import { readFileSync, rmSync } from 'node:fs';
import { run } from './local.js';
import { deleteNetwork, listNetworkObjects, netnsPids } from './network.js';
import type { LabSpec } from './spec.js';
import { isAlive, labPaths, procRef, type LabState, type ProcRef } from './state.js';

const TERM_GRACE_MS = 2_500;
const KILL_GRACE_MS = 2_000;

export async function teardown(spec: Pick<LabSpec, 'name' | 'tag'>, state: LabState | undefined): Promise<void> {
  const inits = Object.values(state?.hosts ?? {}).flatMap((h) => [h.init, h.launcher]).filter(isAlive) as ProcRef[];
  const { netns } = await listNetworkObjects(spec);
  const stray = (await Promise.all(netns.map(netnsPids))).flat().map(procRef).filter(isAlive) as ProcRef[];
  const all = uniq([...inits, ...stray]);

  // inits first: a host's PID 1 takes its whole PID namespace down with it
  signal(inits.length ? inits : all, 'SIGTERM');
  if (!(await allGone(all, TERM_GRACE_MS))) {
    signal(all.filter(isAlive), 'SIGKILL');
    if (!(await allGone(all, KILL_GRACE_MS))) {
      const left = all.filter(isAlive).map((p) => p.pid);
      throw new Error(`lab ${spec.name}: processes ${left.join(' ')} survived SIGKILL`);
    }
  }
  // a crash can leave processes in a netns that were never recorded: catch them now
  const late = (await Promise.all(netns.map(netnsPids))).flat().map(procRef).filter(isAlive) as ProcRef[];
  if (late.length) {
    signal(late, 'SIGKILL');
    await allGone(late, KILL_GRACE_MS);
  }
  await deleteNetwork(spec);
  await unmountUnder(labPaths(spec.name).dir);
  rmSync(labPaths(spec.name).dir, { recursive: true, force: true });
}

/** Our mounts in the root namespace (the hosts' tmpfs), deepest first. */
async function unmountUnder(dir: string): Promise<void> {
  const points = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const point of points) await run(['umount', point]);
}

function signal(refs: ProcRef[], sig: NodeJS.Signals): void {
  for (const ref of refs) {
    if (!isAlive(ref)) continue; // re-checked right before: never signal a recycled PID
    try {
      process.kill(ref.pid, sig);
    } catch {
      // exited in between
    }
  }
}

async function allGone(refs: ProcRef[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (refs.some(isAlive)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
  return true;
}

function uniq(refs: ProcRef[]): ProcRef[] {
  return [...new Map(refs.map((r) => [r.pid, r])).values()];
}
