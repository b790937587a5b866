import { describe, expect, it } from 'vitest';
import { cloneGuard, cloneGuardInRun, prunable } from '../../../src/modules/postgres/steps/clone.js';
import type { ControlData } from '../../../src/modules/postgres/layout-facts.js';

const who = { self: 'pg2', source: 'pg1' };
const target = (over: Partial<ControlData> = {}): ControlData => ({ state: 'shut down in recovery', checkpointLsn: '0/5000060', redoLsn: '0/5000028', timeline: 1, walLogHints: true, checksums: false, minRecoveryEnd: null, systemId: '7300000000000000001', ...over });
const source = { systemId: '7300000000000000001', timeline: 1, lsn: '0/6000000' };

describe('clone guard (evidence before anything is moved aside)', () => {
  it('proceeds for a standby behind its source, or a different (pristine) cluster', () => {
    expect(cloneGuard({ source, target: target(), sourceBytes: 1e8, freeBytes: 1e10 }, who)).toBe(true);
    expect(cloneGuard({ source, target: target({ systemId: '1' , timeline: 9 }), sourceBytes: null, freeBytes: null }, who)).toBe(true);
    expect(cloneGuard({ source, target: null, sourceBytes: 1e8, freeBytes: 1e10 }, who)).toBe(true);
  });
  it('refuses when the source cannot be reached with the replication credentials', () => {
    expect(cloneGuard({ source: { error: 'FATAL: password authentication failed for user "replicator"' }, target: target(), sourceBytes: null, freeBytes: null }, who)).toMatch(/replication connection from pg2 fails \(FATAL: password authentication failed.*nothing was moved/);
  });
  it('in --check, a failed source connection is not verified while earlier steps would change (they may admit it), a refusal otherwise', () => {
    const e = { source: { error: 'FATAL:  no pg_hba.conf entry for replication connection' }, target: null, sourceBytes: null, freeBytes: null };
    expect(cloneGuardInRun(e, who, ['pg-hba@pg1'])).toMatch(/^; the clone source is not verified in check mode \(earlier steps would change: pg-hba@pg1; now: FATAL:  no pg_hba/);
    expect(cloneGuardInRun(e, who, [])).toEqual({ blocked: expect.stringMatching(/replication connection from pg2 fails/) });
    // Pending changes never excuse writes the source never saw, nor missing space.
    expect(cloneGuardInRun({ source, target: target({ timeline: 2 }), sourceBytes: null, freeBytes: null }, who, ['pg-hba@pg1'])).toEqual({ blocked: expect.stringMatching(/never saw/) });
    expect(cloneGuardInRun({ source, target: target(), sourceBytes: 1e8, freeBytes: 1e10 }, who, ['pg-hba@pg1'])).toBe('');
  });
  it('refuses a node with writes the source never saw: a later timeline, or past its LSN on the same one', () => {
    expect(cloneGuard({ source, target: target({ timeline: 2 }), sourceBytes: null, freeBytes: null }, who)).toMatch(/timeline 2, pg1 on 1.*never saw/);
    expect(cloneGuard({ source, target: target({ checkpointLsn: '0/7000000' }), sourceBytes: null, freeBytes: null }, who)).toMatch(/past pg1's WAL position 0\/6000000/);
  });
  it('refuses without the space for a clone next to the kept old copy', () => {
    expect(cloneGuard({ source, target: target(), sourceBytes: 3e9, freeBytes: 1e9 }, who)).toMatch(/not enough space.*nothing was moved/);
  });
  it('keep_old_copies never removes the copy just made', () => {
    expect(prunable(['a', 'b', 'new'], Math.max(1, 0))).toEqual(['a', 'b']);
  });
});
