// The drill rows of the bench: runbook's own `drill` command (src/drill/) on the bench lab, with the
// VIP set up by `setup-vip`, its figures read from the drill's JSON report (drill.json: rto_ms,
// switchover_outage_ms). Nothing here measures an outage itself. Each drill's report directory is
// kept under bench/out/drills/.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { RunFailed, timed } from './measure.mjs';

/**
 * One drill. The drill exits non-zero when a budget or an exit check failed (4) or the topology
 * could not be restored (10): its figures are still read from drill.json when it wrote one, and
 * `ok`/`failure` say what went wrong. Throws RunFailed when there is no report at all (retried once
 * by the caller).
 */
export async function drillOnce({ cli, inventory, fault, dir, secretArgs, env, faultSeconds }) {
  rmSync(dir, { recursive: true, force: true });
  const argv = [...cli, 'drill', '-i', inventory, '--fault', fault, '--yes', '--report-dir', dir, ...secretArgs, ...(fault === 'partition' ? ['--fault-seconds', String(faultSeconds)] : [])];
  const load1 = loadavg()[0];
  const r = await timed(argv, { env, timeoutMs: 900_000 });
  let report;
  try {
    report = JSON.parse(readFileSync(join(dir, 'drill.json'), 'utf8'));
  } catch {
    throw new RunFailed(`drill --fault ${fault}`, argv, r, `exit ${r.code ?? r.signal}, no drill.json`);
  }
  return {
    fault,
    exit: r.code,
    s: Number(r.s.toFixed(1)),
    ok: report.ok,
    ...(report.failure ? { failure: report.failure } : {}),
    rto_ms: report.rto_ms,
    switchover_outage_ms: report.switchover_outage_ms,
    rpo_lost_writes: report.rpo_lost_writes,
    loadavg_1m_before: Number(load1.toFixed(2)),
    report: join(dir, 'drill.json'),
  };
}
