import { describe, expect, it } from 'vitest';
import { computeMeasures, longestAckGap, recoveryTime } from '../../../src/drill/measures.js';
import type { ProbeSample } from '../../../src/drill/types.js';

/** A probe every 100 ms from t=0; `down` is the [from, to) range of send times that fail. */
function probe(count: number, down?: [number, number], ackDelay = 5): ProbeSample[] {
  return Array.from({ length: count }, (_, i) => {
    const sentAt = i * 100;
    const failed = down && sentAt >= down[0] && sentAt < down[1];
    return failed ? { id: i + 1, sentAt, error: 'connection refused' } : { id: i + 1, sentAt, ackAt: sentAt + ackDelay };
  });
}

describe('recoveryTime', () => {
  it('measures from the fault to the first ack after the outage began', () => {
    // Fault at 1000; writes fail from 1000 to 3400; first ack at 3400 + 5.
    expect(recoveryTime(probe(50, [1000, 3400]), 1000)).toBe(2405);
  });
  it('ignores acks the old primary still gave just after the fault', () => {
    // Fault at 950, but the write sent at 1000 was still acked; the outage begins at 1100.
    expect(recoveryTime(probe(50, [1100, 2000]), 950)).toBe(2000 + 5 - 950);
  });
  it('is null when writes never come back', () => {
    expect(recoveryTime(probe(30, [1000, 99_999]), 1000)).toBeNull();
  });
  it('is 0 when no write failed after the fault', () => {
    expect(recoveryTime(probe(30), 1000)).toBe(0);
  });
});

describe('longestAckGap', () => {
  it('finds the longest stretch without an ack in the window', () => {
    const acked = probe(60, [2000, 2600]).filter((s) => s.ackAt !== undefined);
    // Last ack before the gap at 1905, next at 2605.
    expect(longestAckGap(acked, { startedAt: 1000, endedAt: 5000 })).toBe(700);
  });
  it('counts the window edges', () => {
    expect(longestAckGap([], { startedAt: 0, endedAt: 1234 })).toBe(1234);
  });
});

describe('computeMeasures', () => {
  it('counts acknowledged writes missing on the final primary as lost', () => {
    const samples = probe(40, [1000, 1500]);
    const present = new Set(samples.filter((s) => s.ackAt !== undefined && s.id !== 7 && s.id !== 30).map((s) => s.id));
    const m = computeMeasures({ samples, faultAt: 1000, switchover: { startedAt: 2500, endedAt: 3200 }, idsOnFinalPrimary: present });
    expect(m.rpo_lost_writes).toBe(2);
    expect(m.lost_ids).toEqual([7, 30]);
    expect(m.switchover_lost_writes).toBe(1); // id 30 was sent at 2900, inside the switchover
    expect(m.probe_failed).toBe(5);
    expect(m.probe_acknowledged).toBe(35);
  });
  it('does not count failed (never acknowledged) writes as lost', () => {
    const samples = probe(20, [500, 1000]);
    const present = new Set(samples.filter((s) => s.ackAt !== undefined).map((s) => s.id));
    expect(computeMeasures({ samples, faultAt: 500, idsOnFinalPrimary: present }).rpo_lost_writes).toBe(0);
  });
});
