/**
 * Compare a drill with an earlier one: a regression is a measure that got worse by more than the
 * noise a lab shows (20 % and 250 ms both), or any increase in lost writes.
 */
import type { DrillReport } from './types.js';

export interface Difference {
  measure: string;
  previous: number | null;
  current: number | null;
  regression: boolean;
}

const RELATIVE_NOISE = 0.2;
const ABSOLUTE_NOISE_MS = 250;

export function compareDrills(previous: Partial<DrillReport>, current: DrillReport): Difference[] {
  const out: Difference[] = [];
  const timed = (measure: string, before: number | null | undefined, now: number | null): void => {
    const prev = before ?? null;
    const worse =
      prev !== null && (now === null || (now - prev > ABSOLUTE_NOISE_MS && now > prev * (1 + RELATIVE_NOISE)));
    out.push({ measure, previous: prev, current: now, regression: worse });
  };
  timed('rto_ms', previous.rto_ms, current.rto_ms);
  timed('switchover_outage_ms', previous.switchover_outage_ms, current.switchover_outage_ms);
  const lostBefore = previous.rpo_lost_writes ?? null;
  out.push({
    measure: 'rpo_lost_writes',
    previous: lostBefore,
    current: current.rpo_lost_writes,
    regression: lostBefore !== null && current.rpo_lost_writes > lostBefore,
  });
  const before = new Map((previous.phases ?? []).map((p) => [p.name, p.endedAt - p.startedAt]));
  for (const phase of current.phases) {
    if (before.has(phase.name)) timed(`phase ${phase.name} ms`, before.get(phase.name), phase.endedAt - phase.startedAt);
  }
  return out;
}
