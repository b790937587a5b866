import { describe, expect, it } from 'vitest';
import type { PgStatus } from '../../../src/modules/postgres/facts.js';
import { chooseCandidate, parseSize, type NodeView } from '../../../src/modules/postgres/candidate.js';

const standby = (over: Partial<PgStatus> = {}): PgStatus =>
  ({ up: true, inRecovery: true, timeline: 1, currentLsn: null, receiveLsn: '0/5000000', replayLsn: '0/5000000', replayPause: 'not paused', serverVersionNum: 150000, dataDirectory: '/d', configFile: '', hbaFile: '', primaryConninfo: '', primarySlotName: '', userDatabases: [], userTables: 0, clients: 0, ...over }) as PgStatus;
const view = (name: string, status: PgStatus | null, priority = 100): NodeView =>
  status ? { name, priority, reachable: true, status, receiver: null } : { name, priority, reachable: false, unreachableReason: 'connect EINVAL' };
const MB16 = 16 * 1024 * 1024;
const choose = (views: NodeView[], named?: string, approved: string[] = []) =>
  chooseCandidate({ views, named, maxLagBytes: MB16, approved: (n) => approved.includes(`candidate:${n}`) });

describe('candidate by data, not by inventory order', () => {
  it('the most advanced healthy standby wins, whatever the order; the others follow', () => {
    const v = choose([view('pg1', null), view('pg2', standby({ receiveLsn: '0/4000000', replayLsn: '0/4000000' })), view('pg3', standby())]);
    expect(v).toMatchObject({ kind: 'go', candidate: 'pg3', followers: ['pg2'] });
  });

  it('picks pg3 when it is ahead, pg2 follows', () => {
    const v = choose([view('pg1', null), view('pg2', standby({ receiveLsn: '0/4FFFFF0', replayLsn: '0/4FFFFF0' })), view('pg3', standby())]);
    expect(v).toMatchObject({ kind: 'go', candidate: 'pg3', followers: ['pg2'] });
  });

  it('a paused replay is not healthy: the other standby is chosen, naming the paused one is refused unless approved', () => {
    const views = [view('pg1', null), view('pg2', standby()), view('pg3', standby({ replayLsn: '0/3000000', replayPause: 'paused' }))];
    expect(choose(views)).toMatchObject({ kind: 'go', candidate: 'pg2', followers: ['pg3'] });
    const named = choose(views, 'pg3');
    expect(named).toMatchObject({ kind: 'blocked', reason: expect.stringContaining('--approve candidate:pg3') });
    expect(named.kind === 'blocked' && named.reason).toContain('replay paused');
    expect(choose(views, 'pg3', ['candidate:pg3'])).toMatchObject({ kind: 'go', candidate: 'pg3', followers: ['pg2'] });
  });

  it('a named candidate behind another standby is refused unless approved', () => {
    const views = [view('pg1', null), view('pg2', standby()), view('pg3', standby({ receiveLsn: '0/4F00000', replayLsn: '0/4F00000' }))];
    expect(choose(views, 'pg3')).toMatchObject({ kind: 'blocked', reason: expect.stringContaining('bytes behind') });
    expect(choose(views, 'pg2')).toMatchObject({ kind: 'go', candidate: 'pg2' });
  });

  it('more than max_lag_on_failover behind the old primary’s known LSN is refused', () => {
    const v = chooseCandidate({ views: [view('pg1', null), view('pg2', standby())], named: undefined, maxLagBytes: MB16, knownPrimaryLsn: '0/7000000', approved: () => false });
    expect(v).toMatchObject({ kind: 'blocked', reason: expect.stringContaining('max_lag_on_failover') });
  });

  it('ties go to the higher pg_priority; priority 0 is never chosen automatically', () => {
    expect(choose([view('pg1', null), view('pg2', standby(), 100), view('pg3', standby(), 200)])).toMatchObject({ candidate: 'pg3' });
    expect(choose([view('pg1', null), view('pg2', standby(), 100), view('pg3', standby(), 100)])).toMatchObject({ candidate: 'pg2' });
    expect(choose([view('pg1', null), view('pg2', standby(), 0), view('pg3', standby({ receiveLsn: '0/4000000', replayLsn: '0/4000000' }), 100)])).toMatchObject({ kind: 'blocked' });
  });

  it('a standby on an older timeline is not healthy', () => {
    const v = choose([view('pg1', null), view('pg2', standby({ timeline: 1 })), view('pg3', standby({ timeline: 2 }))]);
    expect(v).toMatchObject({ kind: 'go', candidate: 'pg3' });
  });

  it('no running standby: refused', () => {
    expect(choose([view('pg1', null), view('pg2', { up: false, error: 'x' })])).toMatchObject({ kind: 'blocked', reason: expect.stringContaining('no running standby') });
  });

  it('after a failover (a node other than the intended primary is writable) that node is the "candidate": a re-run is a no-op', () => {
    const primary = standby({ inRecovery: false, currentLsn: '0/5000000' });
    const after = chooseCandidate({ views: [view('pg1', null), view('pg2', primary), view('pg3', standby())], named: undefined, maxLagBytes: MB16, approved: () => false, intendedPrimary: 'pg1' });
    expect(after).toMatchObject({ kind: 'go', candidate: 'pg2', followers: ['pg3'] });
    // The intended primary writable: a standby is the candidate (and the guard refuses while pg1 answers).
    const before = chooseCandidate({ views: [view('pg1', primary), view('pg2', standby())], named: undefined, maxLagBytes: MB16, approved: () => false, intendedPrimary: 'pg1' });
    expect(before).toMatchObject({ kind: 'go', candidate: 'pg2' });
    const forced = chooseCandidate({ views: [view('pg1', primary), view('pg2', standby())], named: undefined, maxLagBytes: MB16, approved: () => false, force: true });
    expect(forced).toMatchObject({ kind: 'go', candidate: 'pg2' });
  });

  it('sizes', () => {
    expect(parseSize('16MB')).toBe(MB16);
    expect(parseSize('512kB')).toBe(512 * 1024);
    expect(parseSize(100)).toBe(100);
    expect(() => parseSize('lots')).toThrow(/not a size/);
  });
});
