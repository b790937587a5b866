/**
 * Downtime and data loss from the probe's log, as postgres-ha.md's "Drill measures" defines them:
 * downtime is a gap between acknowledged writes, data loss is acknowledged ids missing on the
 * final primary. Pure: the drill records, this function judges.
 */
import type { DrillMeasures, ProbeSample, WriteGap } from './types.js';

export interface MeasureInput {
  samples: readonly ProbeSample[];
  /** When the fault was injected. */
  faultAt: number;
  /** The planned switchover back, if it ran. */
  switchover?: { startedAt: number; endedAt: number };
  /** Probe ids present on the final primary. */
  idsOnFinalPrimary: ReadonlySet<number>;
}

export function computeMeasures(input: MeasureInput): DrillMeasures {
  const acked = input.samples.filter((s) => s.ackAt !== undefined);
  const lost = acked.filter((s) => !input.idsOnFinalPrimary.has(s.id)).map((s) => s.id);
  const switchoverLost = input.switchover
    ? acked.filter((s) => inWindow(s.sentAt, input.switchover!) && !input.idsOnFinalPrimary.has(s.id)).length
    : 0;
  return {
    rto_ms: recoveryTime(input.samples, input.faultAt),
    switchover_outage_ms: input.switchover ? longestAckGap(acked, input.switchover) : null,
    rpo_lost_writes: lost.length,
    lost_ids: lost.slice(0, 50),
    switchover_lost_writes: switchoverLost,
    probe_writes: input.samples.length,
    probe_acknowledged: acked.length,
    probe_failed: input.samples.length - acked.length,
  };
}

/**
 * The outage begins with the first failed write after the fault (a write the old primary still
 * acknowledged a few ms after the fault command does not end it); recovery is the first write
 * acknowledged after that. A fault that never made a write fail has an RTO of 0.
 */
export function recoveryTime(samples: readonly ProbeSample[], faultAt: number): number | null {
  const ordered = [...samples].sort((a, b) => a.sentAt - b.sentAt);
  const firstFailure = ordered.find((s) => s.sentAt >= faultAt && s.ackAt === undefined);
  if (!firstFailure) return 0;
  const recovered = ordered.find((s) => s.sentAt > firstFailure.sentAt && s.ackAt !== undefined);
  return recovered ? recovered.ackAt! - faultAt : null;
}

/** Longest time without an acknowledgement inside the window, edges included. */
export function longestAckGap(
  acked: readonly ProbeSample[],
  window: { startedAt: number; endedAt: number },
): number {
  const acks = acked
    .map((s) => s.ackAt!)
    .filter((t) => t >= window.startedAt && t <= window.endedAt)
    .sort((a, b) => a - b);
  let previous = window.startedAt;
  let longest = 0;
  for (const t of [...acks, window.endedAt]) {
    longest = Math.max(longest, t - previous);
    previous = t;
  }
  return longest;
}

function inWindow(t: number, w: { startedAt: number; endedAt: number }): boolean {
  return t >= w.startedAt && t <= w.endedAt;
}

/**
 * Stretches of at least minMs without an acknowledged write while the probe ran: each from the
 * last acknowledgement before it to the first after it (or the probe's last send, if writes never
 * came back), so the timeline draws the outage at its real width.
 */
export function writeGaps(samples: readonly ProbeSample[], minMs = 1000): WriteGap[] {
  if (samples.length === 0) return [];
  const acks = samples.filter((s) => s.ackAt !== undefined).map((s) => s.ackAt!).sort((a, b) => a - b);
  const first = Math.min(...samples.map((s) => s.sentAt));
  const last = Math.max(...samples.map((s) => s.ackAt ?? s.sentAt));
  const gaps: WriteGap[] = [];
  let previous = acks[0] ?? first;
  for (const t of [...acks.slice(1), last]) {
    if (t - previous >= minMs) gaps.push({ from: previous, to: t });
    previous = Math.max(previous, t);
  }
  return gaps;
}

/** Acknowledged writes per epoch second: [second, count]. */
export function acksPerSecond(samples: readonly ProbeSample[]): Array<[number, number]> {
  return perSecond(samples.flatMap((s) => (s.ackAt === undefined ? [] : [[Math.floor(s.ackAt / 1000), 1] as const])));
}

/**
 * Counts per whole second, summed, from the first second to the last: seconds without one are
 * zeros, not holes, so a line drawn through them drops to 0 during an outage.
 */
export function perSecond(counts: ReadonlyArray<readonly [number, number]>): Array<[number, number]> {
  const by = new Map<number, number>();
  for (const [t, n] of counts) by.set(t, (by.get(t) ?? 0) + n);
  if (by.size === 0) return [];
  const secs = [...by.keys()];
  const out: Array<[number, number]> = [];
  for (let t = Math.min(...secs); t <= Math.max(...secs); t++) out.push([t, by.get(t) ?? 0]);
  return out;
}
