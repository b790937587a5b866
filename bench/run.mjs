#!/usr/bin/env node
// `npm run bench`: runbook vs ansible-playbook vs the raw-ssh2 floor, on lab hosts, on this machine.
// See bench/README.md for what is measured and how. Prints a table, writes bench/out/latest.json.
//
//   node bench/run.mjs [--reps 3] [--hosts 1,10,50] [--quick] [--only noop|fanout]
//   --quick: 2 hosts, 1 repetition (CI smoke).  RUNBOOK_LAB_REUSE=1: no-op re-run on the default lab.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ansiblePlaybook, playbookStepIds } from './lib/ansible.mjs';
import { benchLab, plainHost, reusedDefaultLab } from './lib/labs.mjs';
import { machine, median, mustRun, repeat, spread } from './lib/measure.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const here = (p) => join(root, p);
const { values: args } = parseArgs({
  options: {
    reps: { type: 'string' },
    hosts: { type: 'string' },
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    out: { type: 'string', default: here('bench/out/latest.json') },
  },
});
const reps = Number(args.reps ?? (args.quick ? 1 : 3));
const fanoutHosts = (args.hosts ?? (args.quick ? '2' : '1,10,50')).split(',').map(Number);
if (!(reps >= 1) || fanoutHosts.some((n) => !(n >= 1 && n <= 199))) throw new Error('--reps ≥ 1 and --hosts between 1 and 199');
const sections = new Set((args.only ?? 'noop,fanout').split(','));
const outDir = here('bench/out');
mkdirSync(outDir, { recursive: true });
const say = (line) => process.stderr.write(`[bench] ${line}\n`);

// The no-op re-run: a real runbook on a converged primary + standby. The password is the lab's
// throwaway; its value does not matter, only that every run uses the same one.
const NOOP = {
  runbook: 'setup-warm-standby',
  playbook: here('bench/ansible/noop-rerun.yml'),
  limit: 'postgres',
  args: ['--secret', 'replication_password=env:BENCH_REPLICATION_PASSWORD'],
  env: { BENCH_REPLICATION_PASSWORD: process.env.BENCH_REPLICATION_PASSWORD ?? 'bench-lab-replication' },
};
const TEN = { runbook: here('bench/fixtures/ten-checks.ts'), playbook: here('bench/ansible/ten-checks.yml') };

const runbookCli = (lab, ref, limit, forks, extra = []) => [process.execPath, here('bin/runbook.js'), 'run', ref, '-i', lab.inventory, '-l', limit, '--forks', String(forks), '--yes', ...extra];

/** A runbook run that must change nothing (checked on its recap lines). */
async function runbookNoop(argv, env) {
  const r = await mustRun('runbook', argv, { env });
  if (/\b(changed|would-change|failed|unreachable|blocked)=[1-9]/.test(r.stdout)) throw new Error(`not a no-op run:\n$ ${argv.join(' ')}\n${r.stdout.slice(-2000)}`);
  return r;
}

/**
 * One runbook run with the wire recorder: its commands (for the floor) and its JSON report (which
 * steps ran, for the playbook mapping check). Also the warm-up of the timed runs.
 */
async function recordedRun(name, argv, env) {
  const recording = join(outDir, `${name}.wire.json`);
  const report = join(outDir, `${name}.report.json`);
  await runbookNoop([argv[0], '--import', here('bench/lib/record-wire.mjs'), ...argv.slice(1), '--report', `json=${report}`], { ...env, BENCH_RECORD: recording });
  const results = JSON.parse(readFileSync(report, 'utf8')).results.filter((r) => r.status === 'ok');
  const recorded = JSON.parse(readFileSync(recording, 'utf8'));
  const byHost = Object.values(recorded.hosts);
  return {
    recording,
    firstConnectMs: recorded.first_connect_ms,
    stepIds: [...new Set(results.map((r) => r.stepId))],
    steps: new Set(results.map((r) => r.stepId)).size,
    // per host, in sequence: what a host waits for (hosts run in parallel); since the checks of
    // many steps share one batch, no longer the number of steps
    roundTrips: Math.max(...byHost.map((cmds) => cmds.length)),
    commands: byHost.reduce((n, cmds) => n + cmds.length, 0),
  };
}

const floorRun = (lab, recording) =>
  mustRun('floor', [process.execPath, here('bench/floor.mjs'), recording, '--key', lab.clientKey, '--known-hosts', lab.knownHosts]).then((r) => ({ ...r, detail: JSON.parse(r.stdout) }));

/** Steps the runbook ran that the playbook does not name, and the other way round. */
function mapping(playbook, stepIds) {
  const named = new Set(playbookStepIds(playbook));
  const ran = new Set(stepIds);
  const m = { missing_in_playbook: stepIds.filter((s) => !named.has(s)), not_run_by_runbook: [...named].filter((s) => !ran.has(s)) };
  if (m.missing_in_playbook.length || m.not_run_by_runbook.length) say(`WARNING ${playbook} is out of step with the runbook: ${JSON.stringify(m)}`);
  return m;
}

/** runbook, ansible-playbook and the floor, interleaved per repetition so load drifts hit all three. */
async function compare({ lab, runbookArgv, env, playbook, limit, forks, recording }) {
  const rb = [];
  const an = [];
  const fl = [];
  for (let i = 0; i < reps; i++) {
    rb.push(await runbookNoop(runbookArgv, env));
    an.push(await ansiblePlaybook({ playbook, inventory: lab.inventory, limit, forks }));
    fl.push(await floorRun(lab, recording));
  }
  const stat = (runs, key = 's') => {
    const xs = runs.map((r) => r[key]);
    return { median: median(xs), samples: xs.map((x) => Number(x.toFixed(3))) };
  };
  return { runbook: stat(rb), ansible: stat(an), floor: stat(fl), rss: stat(rb, 'peakMb'), ansibleRss: stat(an, 'treeMb'), floorDetail: fl.at(-1).detail };
}

const r3 = (x) => Number(x.toFixed(3));

/**
 * runbook above the floor, split in two: the start-up gap (how much later runbook opens its first
 * connection than the floor does, from process start: module loading, runbook and inventory) and
 * the rest per round trip of a host (engine, scheduling, rendering).
 */
function overhead(c, rec) {
  const gapMs = rec.firstConnectMs - c.floorDetail.first_connect_ms;
  const aboveMs = (c.runbook.median - c.floor.median) * 1000;
  return { startup_gap_ms: r3(gapMs), per_step_overhead_ms: r3((aboveMs - gapMs) / rec.roundTrips) };
}
const spreadOf = (samples) => r3(spread(samples));

async function noopSection(lab) {
  const argv = runbookCli(lab, NOOP.runbook, NOOP.limit, 10, NOOP.args);
  say(`no-op re-run: converging ${NOOP.runbook} on ${lab.dir} first`);
  await mustRun('runbook (converge)', argv, { env: NOOP.env, timeoutMs: 600_000 });
  const rec = await recordedRun('noop', argv, NOOP.env);
  say(`no-op re-run: ${rec.steps} steps, ${rec.roundTrips} round trips per host; timing ${reps} repetition(s)`);
  const c = await compare({ lab, runbookArgv: argv, env: NOOP.env, playbook: NOOP.playbook, limit: NOOP.limit, forks: 10, recording: rec.recording });
  return {
    runbook: NOOP.runbook,
    hosts: c.floorDetail.hosts,
    // the steps that ran; round_trips: what one host waits for in sequence
    steps: rec.steps,
    runbook_steps: rec.stepIds.length,
    round_trips: rec.roundTrips,
    commands: rec.commands,
    runbook_s: r3(c.runbook.median),
    ansible_s: r3(c.ansible.median),
    floor_s: r3(c.floor.median),
    ...overhead(c, rec),
    speedup_vs_ansible: r3(c.ansible.median / c.runbook.median),
    ratio_to_floor: r3(c.runbook.median / c.floor.median),
    rss_mb: r3(c.rss.median),
    floor_detail: c.floorDetail,
    samples: { runbook_s: c.runbook.samples, ansible_s: c.ansible.samples, floor_s: c.floor.samples },
    spread: { runbook: spreadOf(c.runbook.samples), ansible: spreadOf(c.ansible.samples), floor: spreadOf(c.floor.samples) },
    mapping: mapping(NOOP.playbook, rec.stepIds),
  };
}

async function fanoutSection(lab) {
  const rows = [];
  for (const n of fanoutHosts) {
    const limit = Array.from({ length: n }, (_, i) => plainHost(i + 1)).join(',');
    const forks = Math.max(10, n);
    const argv = runbookCli(lab, TEN.runbook, limit, forks);
    const rec = await recordedRun(`fanout-${n}`, argv, {});
    say(`fan-out: ${n} host(s) × ${rec.steps} steps (${rec.roundTrips} round trips per host); timing ${reps} repetition(s)`);
    const c = await compare({ lab, runbookArgv: argv, env: {}, playbook: TEN.playbook, limit, forks, recording: rec.recording });
    rows.push({
      hosts: n,
      steps: rec.steps,
      round_trips: rec.roundTrips,
      runbook_s: r3(c.runbook.median),
      ansible_s: r3(c.ansible.median),
      floor_s: r3(c.floor.median),
      rss_mb: r3(c.rss.median),
      ansible_rss_mb: r3(c.ansibleRss.median),
      ...overhead(c, rec),
      samples: { runbook_s: c.runbook.samples, ansible_s: c.ansible.samples, floor_s: c.floor.samples },
      spread: { runbook: spreadOf(c.runbook.samples), ansible: spreadOf(c.ansible.samples), floor: spreadOf(c.floor.samples) },
      mapping: mapping(TEN.playbook, rec.stepIds),
    });
  }
  return rows;
}

/** Node's own start and runbook's CLI start (module loading), to split the fixed cost out. */
async function startup() {
  const n = Math.max(reps, 10); // tiny figures: more runs for a stable median
  const node = await repeat(n, () => mustRun('node', [process.execPath, '-e', '0']));
  const cli = await repeat(n, () => mustRun('runbook --version', [process.execPath, here('bin/runbook.js'), '--version']));
  const list = await repeat(n, () => mustRun('runbook list', [process.execPath, here('bin/runbook.js'), 'list']));
  return { node_s: r3(node.s), runbook_version_s: r3(cli.s), runbook_list_s: r3(list.s) };
}

function goals(result) {
  const out = [];
  const s = result.startup;
  if (s) out.push({ goal: 'runbook --version < 0.12 s', value: `${s.runbook_version_s} s (node -e 0: ${s.node_s} s)`, met: s.runbook_version_s < 0.12 });
  const n = result.noop_rerun;
  if (n) {
    out.push({ goal: 'no-op re-run ≥ 20× faster than ansible-playbook', value: `${n.speedup_vs_ansible}×`, met: n.speedup_vs_ansible >= 20 });
    out.push({ goal: 'no-op re-run ≤ 1.5× the floor', value: `${n.ratio_to_floor}×`, met: n.ratio_to_floor <= 1.5 });
  }
  const f50 = result.fanout?.find((r) => r.hosts === 50);
  if (f50) {
    out.push({ goal: '50 hosts × 10 steps < 3 s', value: `${f50.runbook_s} s`, met: f50.runbook_s < 3 });
    out.push({ goal: '50 hosts × 10 steps RSS < 200 MB', value: `${f50.rss_mb} MB`, met: f50.rss_mb < 200 });
  }
  return out;
}

function printTable(result) {
  const lines = [];
  const row = (cells, widths) => lines.push(cells.map((c, i) => String(c).padEnd(widths[i])).join('  '));
  const w = [24, 5, 5, 9, 9, 7, 12, 8, 6, 13, 14];
  row(['case', 'hosts', 'steps', 'runbook s', 'ansible s', 'floor s', 'vs ansible', 'vs floor', 'RSS MB', 'start-up gap', 'per step >floor'], w);
  const add = (name, r) =>
    row([name, r.hosts, r.steps, r.runbook_s, r.ansible_s, r.floor_s, `${(r.ansible_s / r.runbook_s).toFixed(1)}× faster`, `${(r.runbook_s / r.floor_s).toFixed(2)}×`, r.rss_mb.toFixed(0), `${r.startup_gap_ms.toFixed(0)} ms`, `${r.per_step_overhead_ms.toFixed(1)} ms`], w);
  if (result.noop_rerun) add(`no-op ${result.noop_rerun.runbook}`.slice(0, w[0]), result.noop_rerun);
  for (const f of result.fanout ?? []) add('fan-out ten-checks', f);
  if (result.fanout?.length) lines.push(`ansible-playbook peak RSS (process tree): ${result.fanout.map((f) => `${f.hosts} hosts ${f.ansible_rss_mb.toFixed(0)} MB`).join(', ')}`);
  const m = result.machine;
  lines.push(
    `medians of ${result.reps} run(s); nproc ${m.nproc}, load average ${m.loadavg_before.join(' ')} before, ${m.loadavg_after.join(' ')} after; ` +
      `start-up: node ${result.startup.node_s} s, runbook --version ${result.startup.runbook_version_s} s, runbook list ${result.startup.runbook_list_s} s`,
  );
  const spreads = [result.noop_rerun, ...(result.fanout ?? [])].filter(Boolean).map((r) => r.spread.runbook);
  if (spreads.length && result.reps > 1) lines.push(`largest spread (max−min)/median of runbook's runs: ${(Math.max(...spreads) * 100).toFixed(0)}%`);
  for (const g of result.goals) lines.push(`goal ${g.met ? 'met   ' : 'MISSED'} ${g.goal}: ${g.value}`);
  console.log(lines.join('\n'));
}

async function main() {
  const before = machine();
  const reuse = process.env.RUNBOOK_LAB_REUSE === '1';
  const wantNoop = sections.has('noop');
  const wantFanout = sections.has('fanout');
  // one bench lab for everything: db hosts unless the default lab is reused, plain hosts for fan-out
  // RUNBOOK_LAB_REUSE=1 runs the no-op re-run on the default lab when it is up (converging it)
  const defaultLab = wantNoop && reuse ? await reusedDefaultLab() : undefined;
  const need = { dbHosts: wantNoop && !defaultLab ? ['pg1', 'pg2'] : [], plain: wantFanout ? Math.max(...fanoutHosts) : 0 };
  const lab = need.dbHosts.length + need.plain ? await benchLab(need) : { down: async () => {} };
  const result = { generated_at: new Date().toISOString(), quick: args.quick, reps };
  try {
    result.startup = await startup();
    if (wantNoop) result.noop_rerun = await noopSection(defaultLab ?? lab);
    if (wantFanout) result.fanout = await fanoutSection(lab);
  } finally {
    await lab.down();
    // recordings may hold the (throwaway) replication password; BENCH_KEEP_WIRE=1 keeps them to look into
    if (process.env.BENCH_KEEP_WIRE !== '1') for (const f of ['noop', ...fanoutHosts.map((n) => `fanout-${n}`)]) rmSync(join(outDir, `${f}.wire.json`), { force: true });
  }
  const after = machine();
  result.machine = { nproc: before.nproc, node: before.node, loadavg_before: before.loadavg, loadavg_after: after.loadavg };
  result.goals = goals(result);
  writeFileSync(args.out, JSON.stringify(result, null, 2) + '\n');
  printTable(result);
  say(`wrote ${args.out}`);
}

await main();
