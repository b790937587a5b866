// The labs of a bench run — the only addresses it talks to besides a reused lab's: "bench"
// (10.231.30.0/24: pg1, pg2 with PostgreSQL, for the no-op re-run and the drills) and "bench-fan"
// (10.231.31.0/24: h01…hN with sshd only, for the fan-out; a lab holds at most 200 hosts, so the
// 200-host fan-out needs a lab of its own). Each comes up once with every host the run needs and
// goes down at the end, also on failure or Ctrl-C. A lab that is already up is never taken down by
// the bench: it is used only with RUNBOOK_LAB_REUSE=1 (and must have the hosts), otherwise it is
// an error.
import { labDown, labPaths, labStatus, labUp } from '../../dist/src/lab/index.js';

// k = 30 and 31 of test/support/lab.ts's testLab (no e2e lab takes them: grep `testLab(` in
// test/e2e; 10.231.7.0/24 was drill3-kill's, and the smoke test ran beside it in CI);
// RUNBOOK_TEST_SLOT=N moves them like the test labs: bench-sN on 10.231.(32N+30), bench-fan-sN on
// 10.231.(32N+31).
const slot = Number(process.env.RUNBOOK_TEST_SLOT ?? 0);
const benchSpec = (base, k) => ({ name: slot ? `${base}-s${slot}` : base, subnet: `10.231.${32 * slot + k}.0/24` });
export const BENCH_LAB = benchSpec('bench', 30);
export const FAN_LAB = benchSpec('bench-fan', 31);
export const DEFAULT_LAB = process.env.RUNBOOK_LAB_NAME ?? 'lab';
const say = (line) => process.stderr.write(`[bench] ${line}\n`);

export const plainHost = (i, width = 2) => `h${String(i).padStart(width, '0')}`;

/**
 * Brings a bench lab (BENCH_LAB or FAN_LAB) up with `dbHosts` (pg1=db,…) and `plain` sshd-only
 * hosts h01…; returns its paths and a `down()` that is a no-op for a lab this run did not bring up.
 */
export async function benchLab({ dbHosts = [], plain = 0 }, lab = BENCH_LAB) {
  const reuse = process.env.RUNBOOK_LAB_REUSE === '1';
  const want = [...dbHosts.map((h) => `${h}=db`), ...Array.from({ length: plain }, (_, i) => plainHost(i + 1))];
  const status = await labStatus({ name: lab.name });
  if (status.up) {
    const have = new Set(status.hosts.map((h) => `${h.name}=${h.role}`).concat(status.hosts.map((h) => h.name)));
    const missing = want.filter((h) => !have.has(h));
    if (!reuse || missing.length)
      throw new Error(
        `lab ${lab.name} is already up${missing.length ? ` without ${missing.slice(0, 5).join(', ')}` : ''}: it may be someone's. ` +
          `Take it down (runbook lab down --name ${lab.name})${missing.length ? '' : ' or set RUNBOOK_LAB_REUSE=1 to use it'}.`,
      );
    say(`reusing lab ${lab.name} (RUNBOOK_LAB_REUSE=1): it stays up`);
    return { ...labPaths(lab.name), name: lab.name, down: async () => {} };
  }
  say(`lab ${lab.name} up: ${want.length} hosts on ${lab.subnet}`);
  let owned = true;
  const down = async () => {
    if (!owned) return;
    owned = false;
    await labDown({ name: lab.name }, say);
  };
  onExit(down);
  try {
    const { ms } = await labUp({ ...lab, hosts: want.join(',') }, say);
    say(`lab ${lab.name} up in ${(ms / 1000).toFixed(1)} s`);
  } catch (e) {
    await down();
    throw e;
  }
  return { ...labPaths(lab.name), name: lab.name, down };
}

/** The default lab (pg1, pg2 on 10.231.0.0/24) when it is up, used as it is; else undefined. */
export async function reusedDefaultLab() {
  const status = await labStatus({ name: DEFAULT_LAB });
  if (!status.up) return undefined;
  say(`reusing lab ${DEFAULT_LAB} for the no-op re-run (RUNBOOK_LAB_REUSE=1): it stays up`);
  return { ...labPaths(DEFAULT_LAB), down: async () => {} };
}

// Ctrl-C / kill while a lab is up: take it down, then exit with the signal's code.
const cleanups = new Set();
let hooked = false;
function onExit(fn) {
  cleanups.add(fn);
  if (hooked) return;
  hooked = true;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'])
    process.once(sig, async () => {
      say(`${sig}: taking down what this run brought up`);
      await Promise.allSettled([...cleanups].map((f) => f()));
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
    });
}
