/** Drill reports as a drill writes them, for the report and timeline tests. */
import { lossBudgets } from '../../../src/drill/budget.js';
import { writeGaps } from '../../../src/drill/measures.js';
import type { DrillReport, ProbeSample } from '../../../src/drill/types.js';

const T = 1_760_000_000_000;

/** A partition drill as it happens: short phases between long ones, an outage, a switchover dip. */
export function partitionReport(): DrillReport {
  const spans: Array<[string, number, boolean?]> = [
    ['baseline', 400],
    ['probe', 900],
    ['fault', 1300],
    ['failover', 14_000],
    ['recovery', 150],
    ['link-restore', 31_000],
    ['failback', 9_000],
    ['exit-checks', 1_200],
  ];
  let t = T;
  const phases = spans.map(([name, ms]) => {
    const p = { name, startedAt: t, endedAt: t + ms, ok: true };
    t += ms;
    return p;
  });
  const end = t;
  const faultAt = T + 400 + 900 + 1000;
  const promoteAt = faultAt + 12_500;
  const switchAt = phases[6]!.startedAt + 6000;
  const samples: ProbeSample[] = [];
  let id = 1;
  for (let s = T + 1300; s < end; s += 100) {
    const down = (s >= faultAt && s < promoteAt + 400) || (s >= switchAt - 600 && s < switchAt + 700);
    samples.push(down ? { id: id++, sentAt: s, error: 'timeout' } : { id: id++, sentAt: s, ackAt: s + 4 });
  }
  const perSecond: Array<[number, number]> = [];
  for (let sec = Math.floor((T + 1300) / 1000); sec < Math.floor(end / 1000); sec++) {
    const ms = sec * 1000;
    const down = (ms >= faultAt && ms < promoteAt) || (ms >= switchAt - 1000 && ms < switchAt + 1000);
    perSecond.push([sec, down ? 0 : 780 + (sec % 7) * 11]);
  }
  return {
    version: 2,
    fault: 'partition',
    started_at: new Date(T).toISOString(),
    finished_at: new Date(end).toISOString(),
    ok: true,
    rto_ms: promoteAt + 404 - faultAt,
    switchover_outage_ms: 800,
    rpo_lost_writes: 0,
    lost_ids: [],
    switchover_lost_writes: 0,
    probe_writes: samples.length,
    probe_acknowledged: samples.filter((s) => s.ackAt).length,
    probe_failed: samples.filter((s) => !s.ackAt).length,
    primary_before: 'pg1',
    primary_after_failover: 'pg2',
    primary_final: 'pg1',
    service_address: '10.231.9.100',
    lag_before_fault_bytes: 0,
    fault_at: faultAt,
    phases,
    exit_checks: [],
    step_timings: {},
    samples,
    probe_interval_ms: 100,
    markers: [
      { name: 'promote', at: promoteAt, detail: 'pg2 writable' },
      { name: 'link restored', at: phases[5]!.endedAt - 2000 },
      { name: 'switchover', at: switchAt, detail: 'pg1 writable again' },
    ],
    write_gaps: writeGaps(samples),
    budgets: lossBudgets({ fault: 'partition', probeLostFault: 0, probeLostSwitchover: 0, workloadLost: 0 }),
    workload: { tool: 'pgbench', clients: 4, rounds: 12, committed: 40_000, summary_committed: 40_000, in_flight_at_abort: 8, failed: 0, aborted_clients: 8, refused_rounds: 3, per_second: perSecond, history_rows: 40_000, lost: 0, unacknowledged_present: 0 },
    fence: { verdict: 'fence-command', detail: 'fence-old-primary@pg2 changed' },
  };
}

