import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Heartbeat } from '../../../src/drill/heartbeat.js';

describe('Heartbeat', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('says what a silent phase waits for at least every 5 s, and nothing while lines flow', () => {
    const lines: string[] = [];
    const hb = new Heartbeat((l) => lines.push(l), () => 'probe: 12 acknowledged');
    hb.start();
    hb.enter('failover');
    hb.waiting('runbook failover');
    for (let i = 0; i < 8; i++) {
      vi.advanceTimersByTime(1000);
      hb.log(`busy ${i}`);
    }
    expect(lines.filter((l) => l.includes('…'))).toEqual([]);
    vi.advanceTimersByTime(16_000);
    const beats = lines.filter((l) => l.includes('…'));
    expect(beats.length).toBeGreaterThanOrEqual(3);
    expect(beats[0]).toMatch(/failover: runbook failover \(\d+ s in this phase\); probe: 12 acknowledged/);
    hb.leave();
    const before = lines.length;
    vi.advanceTimersByTime(20_000);
    expect(lines.length).toBe(before); // no phase, no heartbeat
    hb.stop();
  });
});
