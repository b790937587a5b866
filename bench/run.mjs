#!/usr/bin/env node
// `npm run bench`: runbook vs ansible-playbook vs the raw-ssh2 floors (replay and one-exec), on lab
// hosts, on this machine, and the drill's outage figures. See bench/README.md for what is measured
// and how. Prints a table, writes bench/out/latest.json.
//
//   node bench/run.mjs [--reps 3] [--hosts 1,10,50,200] [--quick] [--only noop,fanout,drill,pyinfra]
//   --quick: 2 hosts, 1 repetition, one stop drill (CI smoke).  RUNBOOK_LAB_REUSE=1: no-op re-run on
//   the default lab.  BENCH_FAULT=kill-first-ansible: the first ansible-playbook run is killed (the
//   smoke test's proof that a peer's failed run is retried and its output kept).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ansiblePlaybook, playbookStepIds } from './lib/ansible.mjs';
import { drillOnce } from './lib/drill.mjs';
import { BENCH_LAB, FAN_LAB, benchLab, plainHost, reusedDefaultLab } from './lib/labs.mjs';
import { NotNoop, RunFailed, machine, median, mustRun, repeat, retried, spread, timed } from './lib/measure.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const here = (p) => join(root, p);
const { values: args } = parseArgs({
  options: {
    reps: { type: 'string' },
    hosts: { type: 'string' },
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    out: { type: 'string', default: here('bench/out/latest.json') },
    // ansible-playbook above this many hosts is not run: ~1.7 s and ~29 MB per host measured here,
    // so 200 hosts would be ~6 min and ~6 GB per run, three runs (say why in the row instead)
    'ansible-max-hosts': { type: 'string', default: '50' },
    'drill-faults': { type: 'string' },
    'fault-seconds': { type: 'string', default: '40' },
  },
});
const fail = (message) => {
  process.stderr.write(`[bench] ${message}\n`);
  process.exit(2);
};
const reps = Number(args.reps ?? (args.quick ? 1 : 3));
const fanoutHosts = (args.hosts ?? (args.quick ? '2' : '1,10,50,200')).split(',').map(Number);
const ansibleMaxHosts = Number(args['ansible-max-hosts']);
const drillFaults = (args['drill-faults'] ?? (args.quick ? 'stop' : 'kill,stop,partition')).split(',').filter(Boolean);
if (!(reps >= 1) || fanoutHosts.some((n) => !(n >= 1 && n <= 200))) fail('--reps ≥ 1 and --hosts between 1 and 200');
if (drillFaults.some((f) => !['kill', 'stop', 'partition'].includes(f))) fail('--drill-faults: kill, stop, partition');
const sections = new Set((args.only ?? 'noop,fanout,drill,pyinfra').split(','));
// what a run keeps (recordings, reports, drills, failed runs' output) goes beside its --out file:
// bench/out/ by default, the smoke test's own directory for it
const outDir = dirname(resolve(args.out));
const failedDir = join(outDir, 'failed');
mkdirSync(outDir, { recursive: true });
rmSync(failedDir, { recursive: true, force: true });
const say = (line) => process.stderr.write(`[bench] ${line}\n`);
const load1 = () => Number(loadavg()[0].toFixed(2));
// BENCH_FAULT=kill-first-ansible: the bench's first ansible-playbook run is killed after 0.5 s
let ansibleFault = process.env.BENCH_FAULT === 'kill-first-ansible';

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

/** A runbook run that must change nothing (checked on its recap lines): a change stops the bench. */
async function runbookNoop(argv, env) {
  const r = await timed(argv, { env });
  if (r.code !== 0) {
    // say how many hosts and why (the recap lines and the first unreachable reason), not just the exit code
    const recap = [...r.stdout.matchAll(/^\S+ (\S+)\s+ok=\d+ .*\bunreachable=([1-9])/gm)];
    const first = /unreachable: ([^)\n]+\)?)/.exec(r.stdout)?.[1];
    throw new RunFailed('runbook', argv, r, recap.length ? `exit ${r.code}: ${recap.length} host(s) unreachable${first ? ` (${first})` : ''}` : undefined);
  }
  if (/\b(changed|would-change)=[1-9]/.test(r.stdout)) throw new NotNoop(`not a no-op run:\n$ ${argv.join(' ')}\n${r.stdout.slice(-2000)}`);
  if (/\b(failed|unreachable|blocked)=[1-9]/.test(r.stdout)) throw new RunFailed('runbook', argv, r, 'exit 0 but its recap shows failed, unreachable or blocked hosts');
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

const floorRun = (lab, recording, oneExec = false) =>
  mustRun(oneExec ? 'one-exec floor' : 'floor', [process.execPath, here('bench/floor.mjs'), recording, '--key', lab.clientKey, '--known-hosts', lab.knownHosts, ...(oneExec ? ['--one-exec'] : [])]).then((r) => ({
    ...r,
    detail: JSON.parse(r.stdout),
  }));

/** Steps the runbook ran that the playbook does not name, and the other way round. */
function mapping(playbook, stepIds) {
  const named = new Set(playbookStepIds(playbook));
  const ran = new Set(stepIds);
  const m = { missing_in_playbook: stepIds.filter((s) => !named.has(s)), not_run_by_runbook: [...named].filter((s) => !ran.has(s)) };
  if (m.missing_in_playbook.length || m.not_run_by_runbook.length) say(`WARNING ${playbook} is out of step with the runbook: ${JSON.stringify(m)}`);
  return m;
}

/**
 * runbook, ansible-playbook and both floors, interleaved per repetition so load drifts hit all of
 * them. Each peer's failed run is retried once (its output kept in bench/out/failed/); a peer with
 * no successful run at all gets `failed: reason` instead of a median. `ansibleSkip`: why
 * ansible-playbook is not run at all.
 */
async function compare({ name, lab, runbookArgv, env, playbook, limit, forks, recording, ansibleSkip }) {
  const runs = { runbook: [], ansible: [], floor: [], one_exec_floor: [] };
  const failures = { runbook: [], ansible: [], floor: [], one_exec_floor: [] };
  const loads = [];
  const recovered = { runbook: [], ansible: [], floor: [], one_exec_floor: [] };
  const take = (peer, r) => {
    if (r.failed) return failures[peer].push(r);
    runs[peer].push(r);
    if (r.retry) recovered[peer].push(r.retry);
  };
  for (let i = 0; i < reps; i++) {
    loads.push(load1());
    take('runbook', await retried(`${name}-runbook`, failedDir, () => runbookNoop(runbookArgv, env)));
    if (!ansibleSkip)
      take(
        'ansible',
        await retried(`${name}-ansible`, failedDir, () => {
          const killAfterMs = ansibleFault ? 500 : undefined;
          ansibleFault = false;
          return ansiblePlaybook({ playbook, inventory: lab.inventory, limit, forks, killAfterMs });
        }),
      );
    take('floor', await retried(`${name}-floor`, failedDir, () => floorRun(lab, recording)));
    take('one_exec_floor', await retried(`${name}-one-exec-floor`, failedDir, () => floorRun(lab, recording, true)));
  }
  loads.push(load1());
  const stat = (peer, key = 's') => {
    const xs = runs[peer].map((r) => r[key]);
    const failed = failures[peer];
    if (peer === 'ansible' && ansibleSkip) return { median: null, samples: [], failed: `not run: ${ansibleSkip}` };
    const failedSeconds = failed.flatMap((f) => f.seconds ?? []);
    const took = failedSeconds.length ? ` (the failed runs took ${Math.min(...failedSeconds).toFixed(1)}–${Math.max(...failedSeconds).toFixed(1)} s)` : '';
    if (!xs.length) return { median: null, samples: [], failed: `${failed.length * 2} of ${failed.length * 2} runs failed: ${failed[0]?.failed ?? 'no run'}${took}`, failed_seconds: failedSeconds, logs: failed.flatMap((f) => f.logs) };
    const lost = [...failed.map((f) => ({ reason: f.failed, logs: f.logs })), ...recovered[peer]];
    return {
      median: median(xs),
      samples: xs.map((x) => Number(x.toFixed(3))),
      ...(lost.length
        ? { partly: `${failed.length * 2 + recovered[peer].length} failed attempt(s): ${recovered[peer].length} passed on the retry, ${failed.length} failed twice (no sample): ${lost[0].reason}`, logs: lost.flatMap((f) => f.logs) }
        : {}),
    };
  };
  return {
    runbook: stat('runbook'),
    ansible: stat('ansible'),
    floor: stat('floor'),
    oneExec: stat('one_exec_floor'),
    rss: stat('runbook', 'peakMb'),
    ansibleRss: stat('ansible', 'treeMb'),
    floorDetail: runs.floor.at(-1)?.detail,
    oneExecDetail: runs.one_exec_floor.at(-1)?.detail,
    loads,
  };
}

const r3 = (x) => (x === null || x === undefined ? null : Number(x.toFixed(3)));
const ratio = (a, b) => (a === null || b === null ? null : r3(a / b));

/**
 * runbook above the floor, split in two: the start-up gap (how much later runbook opens its first
 * connection than the floor does, from process start: module loading, runbook and inventory) and
 * the rest per round trip of a host (engine, scheduling, rendering).
 */
function overhead(c, rec) {
  if (!c.floorDetail || c.runbook.median === null) return { startup_gap_ms: null, per_step_overhead_ms: null };
  const gapMs = rec.firstConnectMs - c.floorDetail.first_connect_ms;
  const aboveMs = (c.runbook.median - c.floor.median) * 1000;
  return { startup_gap_ms: r3(gapMs), per_step_overhead_ms: r3((aboveMs - gapMs) / rec.roundTrips) };
}
const spreadOf = (samples) => r3(spread(samples));

/** The figures of compare() as a row: medians, samples, min–max, and why a peer has none. */
function figures(c) {
  const peers = { runbook: c.runbook, ansible: c.ansible, floor: c.floor, one_exec_floor: c.oneExec };
  const failed = Object.fromEntries(Object.entries(peers).filter(([, p]) => p.failed || p.partly).map(([k, p]) => [k, { reason: p.failed ?? p.partly, logs: p.logs ?? [] }]));
  return {
    runbook_s: r3(c.runbook.median),
    ansible_s: r3(c.ansible.median),
    floor_s: r3(c.floor.median),
    one_exec_floor_s: r3(c.oneExec.median),
    speedup_vs_ansible: ratio(c.ansible.median, c.runbook.median),
    ratio_to_floor: ratio(c.runbook.median, c.floor.median),
    ratio_to_one_exec_floor: ratio(c.runbook.median, c.oneExec.median),
    rss_mb: r3(c.rss.median),
    samples: Object.fromEntries(Object.entries(peers).map(([k, p]) => [`${k}_s`, p.samples])),
    spread: Object.fromEntries(Object.entries(peers).map(([k, p]) => [k, spreadOf(p.samples)])),
    range: Object.fromEntries(Object.entries(peers).filter(([, p]) => p.samples.length).map(([k, p]) => [k, [Math.min(...p.samples), Math.max(...p.samples)]])),
    rss_samples_mb: c.rss.samples,
    loadavg_1m: c.loads,
    ...(Object.keys(failed).length ? { failed } : {}),
  };
}

async function noopSection(lab) {
  const argv = runbookCli(lab, NOOP.runbook, NOOP.limit, 10, NOOP.args);
  say(`no-op re-run: converging ${NOOP.runbook} on ${lab.dir} first`);
  await mustRun('runbook (converge)', argv, { env: NOOP.env, timeoutMs: 600_000 });
  const rec = await recordedRun('noop', argv, NOOP.env);
  say(`no-op re-run: ${rec.steps} steps, ${rec.roundTrips} round trips per host; timing ${reps} repetition(s)`);
  const c = await compare({ name: 'noop', lab, runbookArgv: argv, env: NOOP.env, playbook: NOOP.playbook, limit: NOOP.limit, forks: 10, recording: rec.recording });
  return {
    runbook: NOOP.runbook,
    hosts: c.floorDetail?.hosts ?? 2,
    // the steps that ran; round_trips: what one host waits for in sequence
    steps: rec.steps,
    runbook_steps: rec.stepIds.length,
    round_trips: rec.roundTrips,
    commands: rec.commands,
    ...figures(c),
    ...overhead(c, rec),
    floor_detail: c.floorDetail,
    one_exec_floor_detail: c.oneExecDetail,
    mapping: mapping(NOOP.playbook, rec.stepIds),
  };
}

async function fanoutSection(lab) {
  const rows = [];
  for (const n of fanoutHosts) {
    const limit = Array.from({ length: n }, (_, i) => plainHost(i + 1)).join(',');
    const forks = Math.max(10, n);
    const argv = runbookCli(lab, TEN.runbook, limit, forks);
    const rec = await retried(`fanout-${n}-recorded-runbook`, failedDir, () => recordedRun(`fanout-${n}`, argv, {}));
    if (rec.failed) {
      rows.push({ hosts: n, steps: 10, error: `runbook's first (recorded) run failed twice: ${rec.failed}`, logs: rec.logs });
      continue;
    }
    say(`fan-out: ${n} host(s) × ${rec.steps} steps (${rec.roundTrips} round trips per host); timing ${reps} repetition(s)`);
    const ansibleSkip = n > ansibleMaxHosts ? `above --ansible-max-hosts ${ansibleMaxHosts} (it grows ~1.7 s and ~29 MB per host here: ~${Math.round((1.7 * n) / 60)} min and ~${((29 * n) / 1024).toFixed(1)} GB per run)` : undefined;
    const c = await compare({ name: `fanout-${n}`, lab, runbookArgv: argv, env: {}, playbook: TEN.playbook, limit, forks, recording: rec.recording, ansibleSkip });
    rows.push({
      hosts: n,
      steps: rec.steps,
      round_trips: rec.roundTrips,
      ...figures(c),
      ansible_rss_mb: r3(c.ansibleRss.median),
      ...overhead(c, rec),
      mapping: mapping(TEN.playbook, rec.stepIds),
    });
  }
  return rows;
}

/**
 * The drills: `setup-vip` on the bench lab, then per repetition one drill of each fault
 * (interleaved), each read from its own drill.json. The planned switchover back is part of every
 * drill, so its outage has one sample per drill.
 */
async function drillSection(lab) {
  const cli = [process.execPath, here('bin/runbook.js')];
  say(`drills: setup-vip on ${lab.name}`);
  const vip = await retried('setup-vip', failedDir, () => mustRun('runbook setup-vip', [...cli, 'run', 'setup-vip', '-i', lab.inventory, '--yes'], { timeoutMs: 300_000 }));
  if (vip.failed) return { error: `setup-vip failed: ${vip.failed}`, logs: vip.logs };
  const runs = [];
  const failures = [];
  for (let i = 0; i < reps; i++)
    for (const fault of drillFaults) {
      say(`drill ${i + 1}/${reps}: --fault ${fault}`);
      const dir = join(outDir, 'drills', `${fault}-${i + 1}`);
      const r = await retried(`drill-${fault}`, failedDir, () =>
        drillOnce({ cli, inventory: lab.inventory, fault, dir, secretArgs: NOOP.args, env: NOOP.env, faultSeconds: Number(args['fault-seconds']) }),
      );
      if (r.failed) failures.push({ fault, reason: r.failed, logs: r.logs });
      else {
        runs.push(r);
        say(`drill --fault ${fault}: exit ${r.exit}, RTO ${r.rto_ms} ms, switchover outage ${r.switchover_outage_ms} ms${r.ok ? '' : `, not ok: ${r.failure}`}`);
      }
    }
  const figure = (xs) => {
    const v = xs.filter((x) => typeof x === 'number');
    return v.length ? { median_ms: median(v), samples_ms: v, range_ms: [Math.min(...v), Math.max(...v)], spread: spreadOf(v) } : { median_ms: null, samples_ms: [] };
  };
  const rto = Object.fromEntries(drillFaults.map((f) => [f, figure(runs.filter((r) => r.fault === f).map((r) => r.rto_ms))]));
  return { faults: drillFaults, rto, switchover_outage: figure(runs.map((r) => r.switchover_outage_ms)), runs, ...(failures.length ? { failures } : {}) };
}

/**
 * pyinfra as a second peer needs pyinfra: installed, or installable from the Python registry, a
 * wheel in /opt/wheels, or Debian's archive. Without it the row says why (never a figure).
 */
function pyinfraSection() {
  const sh = (cmd, timeout = 30_000) => spawnSync('sh', ['-c', cmd], { encoding: 'utf8', timeout });
  const have = sh('command -v pyinfra || python3 -c "import pyinfra; print(pyinfra.__file__)"');
  if (have.status === 0) return { blocked: 'pyinfra is installed, but the bench has no pyinfra deploy yet (issue 17): not measured' };
  const why = [];
  const dl = sh('pip download --no-deps --retries 0 --timeout 5 -d "$(mktemp -d)" pyinfra 2>&1', 60_000);
  why.push(dl.status === 0 ? 'pip download pyinfra worked' : `pip download pyinfra failed (${(dl.stdout.match(/Name or service not known|No matching distribution[^\n]*|Network is unreachable|Could not find[^\n]*/) ?? [dl.stdout.trim().split('\n').at(-1) ?? `exit ${dl.status}`])[0]})`);
  const wheels = existsSync('/opt/wheels') ? readdirSync('/opt/wheels').filter((f) => /^pyinfra/i.test(f)) : [];
  why.push(wheels.length ? `/opt/wheels has ${wheels.join(', ')}` : 'no pyinfra wheel in /opt/wheels');
  const apt = sh('apt-cache policy pyinfra python3-pyinfra 2>/dev/null');
  why.push(/Candidate: (?!\(none\))/.test(apt.stdout) ? 'Debian has a pyinfra package' : 'no pyinfra package in Debian 12');
  return { blocked: `pyinfra is not installed: ${why.join('; ')}` };
}

/** Node's own start and runbook's CLI start (module loading), to split the fixed cost out. */
async function startup() {
  const n = Math.max(reps, 10); // tiny figures: more runs for a stable median
  const node = await repeat(n, () => mustRun('node', [process.execPath, '-e', '0']));
  const cli = await repeat(n, () => mustRun('runbook --version', [process.execPath, here('bin/runbook.js'), '--version']));
  const list = await repeat(n, () => mustRun('runbook list', [process.execPath, here('bin/runbook.js'), 'list']));
  return { node_s: r3(node.s), runbook_version_s: r3(cli.s), runbook_version_range: [r3(Math.min(...cli.samples)), r3(Math.max(...cli.samples))], runbook_list_s: r3(list.s), loadavg_1m: load1() };
}

const fmtRange = (r, unit, k = 1) => (r ? `${(r[0] * k).toFixed(k === 1 ? 2 : 0)}–${(r[1] * k).toFixed(k === 1 ? 2 : 0)} ${unit}` : '');
const whyNot = (row, peer) => row?.failed?.[peer]?.reason ?? row?.error ?? 'not measured';

/**
 * The goals table of issue 17, one row each, in its order: value (median), spread (min–max of the
 * runs), met (true / false / null when not measured, with the reason as the value).
 */
function goals(result) {
  const out = [];
  const add = (goal, value, met, spreadText = '', load = '') => out.push({ goal, value, met, spread: spreadText, load });
  const n = result.noop_rerun;
  const loadOf = (row) => (row?.loadavg_1m ? `${Math.min(...row.loadavg_1m)}–${Math.max(...row.loadavg_1m)}` : '');
  if (sections.has('noop')) {
    if (n?.speedup_vs_ansible) add('no-op re-run ≥ 20× faster than ansible-playbook', `${n.speedup_vs_ansible}× (${n.runbook_s} s vs ${n.ansible_s} s)`, n.speedup_vs_ansible >= 20, `runbook ${fmtRange(n.range.runbook, 's')}, ansible ${fmtRange(n.range.ansible, 's')}`, loadOf(n));
    else add('no-op re-run ≥ 20× faster than ansible-playbook', whyNot(n, n?.runbook_s ? 'ansible' : 'runbook'), null);
    if (n?.ratio_to_one_exec_floor) add('no-op re-run ≤ 1.5× the one-exec floor', `${n.ratio_to_one_exec_floor}× (${n.runbook_s} s vs ${n.one_exec_floor_s} s)`, n.ratio_to_one_exec_floor <= 1.5, `one-exec floor ${fmtRange(n.range.one_exec_floor, 's')}`, loadOf(n));
    else add('no-op re-run ≤ 1.5× the one-exec floor', whyNot(n, 'one_exec_floor'), null);
    if (n?.ratio_to_floor) add('no-op re-run vs the replay floor (no goal)', `${n.ratio_to_floor}× (floor ${n.floor_s} s)`, undefined, `floor ${fmtRange(n.range.floor, 's')}`, loadOf(n));
  }
  if (sections.has('fanout')) {
    const f50 = result.fanout?.find((r) => r.hosts === 50);
    if (fanoutHosts.includes(50)) {
      if (f50?.runbook_s) add('50 hosts × 10 checks < 3 s', `${f50.runbook_s} s`, f50.runbook_s < 3, fmtRange(f50.range.runbook, 's'), loadOf(f50));
      else add('50 hosts × 10 checks < 3 s', whyNot(f50, 'runbook'), null);
      if (f50?.rss_mb) add('50 hosts × 10 checks RSS < 200 MB', `${Math.round(f50.rss_mb)} MB`, f50.rss_mb < 200, `${Math.round(Math.min(...f50.rss_samples_mb))}–${Math.round(Math.max(...f50.rss_samples_mb))} MB`, loadOf(f50));
    }
    if (fanoutHosts.includes(50) || result.pyinfra) add('50 hosts × 10 checks ≥ 3× faster than pyinfra', `blocked: ${result.pyinfra?.blocked ?? 'pyinfra section not run'}`, null);
    const f200 = result.fanout?.find((r) => r.hosts === 200);
    if (fanoutHosts.includes(200)) {
      if (f200?.runbook_s) {
        add('200 hosts × 10 checks < 8 s', `${f200.runbook_s} s`, f200.runbook_s < 8, fmtRange(f200.range.runbook, 's'), loadOf(f200));
        add('200 hosts × 10 checks RSS < 250 MB', `${Math.round(f200.rss_mb)} MB`, f200.rss_mb < 250, `${Math.round(Math.min(...f200.rss_samples_mb))}–${Math.round(Math.max(...f200.rss_samples_mb))} MB`, loadOf(f200));
      } else add('200 hosts × 10 checks < 8 s, < 250 MB', whyNot(f200, 'runbook'), null);
    }
  }
  const d = result.drill;
  if (sections.has('drill')) {
    const loads = d?.runs?.length ? `${Math.min(...d.runs.map((r) => r.loadavg_1m_before))}–${Math.max(...d.runs.map((r) => r.loadavg_1m_before))}` : '';
    const ms = (f, goal, limit) => {
      if (f?.median_ms === null || f?.median_ms === undefined) return add(goal, d?.error ?? `not measured${d?.failures?.length ? `: ${d.failures[0].reason}` : ''}`, null);
      add(goal, `${(f.median_ms / 1000).toFixed(2)} s (${f.samples_ms.length} drill(s))`, limit === undefined ? undefined : f.median_ms < limit, fmtRange(f.range_ms.map((x) => x / 1000), 's'), loads);
    };
    ms(d?.switchover_outage, 'planned switchover write outage (through the VIP) < 1 s', 1000);
    if (drillFaults.includes('kill')) ms(d?.rto?.kill, 'RTO, kill of the primary < 3 s', 3000);
    if (drillFaults.includes('stop')) ms(d?.rto?.stop, 'RTO, clean stop of the primary (no goal)', undefined);
    if (drillFaults.includes('partition')) ms(d?.rto?.partition, 'RTO, partition of the primary < 12 s', 12000);
  }
  const s = result.startup;
  if (s) add('runbook --version < 0.12 s', `${s.runbook_version_s} s (node -e 0: ${s.node_s} s)`, s.runbook_version_s < 0.12, fmtRange(s.runbook_version_range, 's'));
  return out;
}

function printTable(result) {
  const lines = [];
  const row = (cells, widths) => lines.push(cells.map((c, i) => String(c).padEnd(widths[i])).join('  '));
  const w = [24, 5, 5, 9, 9, 7, 9, 12, 8, 10, 6, 13, 14];
  const num = (x, d = 3) => (x === null || x === undefined ? '—' : Number(x).toFixed(d));
  row(['case', 'hosts', 'steps', 'runbook s', 'ansible s', 'floor s', '1-exec s', 'vs ansible', 'vs floor', 'vs 1-exec', 'RSS MB', 'start-up gap', 'per step >floor'], w);
  const add = (name, r) =>
    row(
      [
        name,
        r.hosts,
        r.steps,
        num(r.runbook_s),
        num(r.ansible_s),
        num(r.floor_s),
        num(r.one_exec_floor_s),
        r.speedup_vs_ansible ? `${r.speedup_vs_ansible.toFixed(1)}× faster` : '—',
        r.ratio_to_floor ? `${r.ratio_to_floor.toFixed(2)}×` : '—',
        r.ratio_to_one_exec_floor ? `${r.ratio_to_one_exec_floor.toFixed(2)}×` : '—',
        num(r.rss_mb, 0),
        r.startup_gap_ms == null ? '—' : `${r.startup_gap_ms.toFixed(0)} ms`,
        r.per_step_overhead_ms == null ? '—' : `${r.per_step_overhead_ms.toFixed(1)} ms`,
      ],
      w,
    );
  if (result.noop_rerun?.runbook) add(`no-op ${result.noop_rerun.runbook}`.slice(0, w[0]), result.noop_rerun);
  for (const f of Array.isArray(result.fanout) ? result.fanout : []) add('fan-out ten-checks', f);
  for (const r of [result.noop_rerun, ...(Array.isArray(result.fanout) ? result.fanout : [])].filter(Boolean))
    for (const [peer, f] of Object.entries(r.error ? { runbook: { reason: r.error, logs: r.logs } } : (r.failed ?? {})))
      lines.push(`  ${r.hosts ?? ''} hosts, ${peer}: ${f.reason}${f.logs?.length ? ` (output: ${f.logs.join(', ')})` : ''}`);
  for (const [name, sec] of Object.entries({ noop_rerun: result.noop_rerun, fanout: result.fanout, drill: result.drill })) if (sec?.error) lines.push(`${name}: not measured: ${sec.error}`);
  if (Array.isArray(result.fanout) && result.fanout.length) lines.push(`ansible-playbook peak RSS (process tree): ${result.fanout.map((f) => `${f.hosts} hosts ${num(f.ansible_rss_mb, 0)} MB`).join(', ')}`);
  const d = result.drill;
  if (d?.runs) for (const r of d.runs) lines.push(`drill --fault ${r.fault}: RTO ${r.rto_ms} ms, switchover outage ${r.switchover_outage_ms} ms, exit ${r.exit}${r.ok ? '' : ` (${r.failure})`}, load ${r.loadavg_1m_before}`);
  const m = result.machine;
  lines.push(
    `medians of ${result.reps} run(s); nproc ${m.nproc}, load average ${m.loadavg_before.join(' ')} before, ${m.loadavg_after.join(' ')} after; ` +
      `start-up: node ${result.startup.node_s} s, runbook --version ${result.startup.runbook_version_s} s, runbook list ${result.startup.runbook_list_s} s`,
  );
  lines.push('');
  const gw = [58, 40, 22, 10, 8];
  row(['goal', 'value (median)', 'spread (min–max)', 'load 1m', 'verdict'], gw);
  for (const g of result.goals) row([g.goal, g.value, g.spread, g.load, g.met === true ? 'met' : g.met === false ? 'MISSED' : g.met === null ? 'not measured' : ''], gw);
  console.log(lines.join('\n'));
}

/** A section that fails outright reports its reason in the table; only a wrong no-op stops the bench. */
async function section(name, fn) {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof NotNoop) throw e;
    const log = join(failedDir, `${name}-section.log`);
    mkdirSync(failedDir, { recursive: true });
    writeFileSync(log, e instanceof RunFailed ? e.log : `${e?.stack ?? e}\n`);
    const reason = e instanceof RunFailed ? e.summary : String(e?.message ?? e).split('\n')[0];
    say(`${name}: not measured: ${reason} (output kept in ${log})`);
    return { error: reason, logs: [log] };
  }
}

async function main() {
  const before = machine();
  const reuse = process.env.RUNBOOK_LAB_REUSE === '1';
  const wantNoop = sections.has('noop');
  const wantFanout = sections.has('fanout');
  const wantDrill = sections.has('drill') && drillFaults.length > 0;
  // RUNBOOK_LAB_REUSE=1 runs the no-op re-run on the default lab when it is up (converging it); the
  // drills always run on the bench lab (they break and restore its cluster)
  const defaultLab = wantNoop && reuse ? await reusedDefaultLab() : undefined;
  const dbLab = (wantNoop && !defaultLab) || wantDrill ? await benchLab({ dbHosts: ['pg1', 'pg2'] }, BENCH_LAB) : undefined;
  const result = { generated_at: new Date().toISOString(), quick: args.quick, reps, labs: { db: dbLab && BENCH_LAB, fanout: wantFanout ? FAN_LAB : undefined } };
  let fanLab;
  try {
    result.startup = await startup();
    if (wantNoop) result.noop_rerun = await section('noop', () => noopSection(defaultLab ?? dbLab));
    if (wantDrill) result.drill = await section('drill', () => drillSection(dbLab));
    if (dbLab) await dbLab.down();
    if (wantFanout) {
      fanLab = await benchLab({ plain: Math.max(...fanoutHosts) }, FAN_LAB);
      result.fanout = await section('fanout', () => fanoutSection(fanLab));
    }
    if (sections.has('pyinfra')) result.pyinfra = pyinfraSection();
  } catch (e) {
    if (!(e instanceof NotNoop)) throw e;
    say(`stopped: ${e.message}`);
    process.exitCode = 1;
    return;
  } finally {
    await dbLab?.down();
    await fanLab?.down();
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
