import { describe, expect, it } from 'vitest';
import type { PgStatus } from '../../../src/modules/postgres/facts.js';
import { type PgCluster, resolveCluster } from '../../../src/modules/postgres/cluster.js';
import { cloneParamProblems, cloneResumePoint, planClone } from '../../../src/modules/postgres/steps/clone.js';
import { failoverVerdict } from '../../../src/modules/postgres/steps/promote.js';
import { secret } from '../../../src/shell/index.js';

const host = (name: string, address: string, vars: Record<string, unknown> = {}) => ({ name, address, vars, groups: ['all', 'postgres'] });
const select = () => [host('pg1', '10.0.0.11', { pg_primary: 'pg1' }), host('pg2', '10.0.0.12', { pg_primary: 'pg1' })];
const params = { cluster_group: 'postgres', replication_user: 'replicator', replication_password: secret('pw'), vip: undefined };
const cluster = resolveCluster({ select }, params) as PgCluster;

const primary = (over: Partial<PgStatus> = {}): PgStatus =>
  ({ up: true, inRecovery: false, timeline: 1, currentLsn: '0/3000000', receiveLsn: null, replayLsn: null, replayPause: null, serverVersionNum: 150000, dataDirectory: '/d', configFile: '', hbaFile: '', primaryConninfo: '', primarySlotName: '', userDatabases: [], userTables: 0, clients: 0, ...over }) as PgStatus;
const standby = (over: Partial<PgStatus> = {}): PgStatus =>
  primary({ inRecovery: true, currentLsn: null, receiveLsn: '0/3000000', replayLsn: '0/3000000', replayPause: 'not paused', primaryConninfo: 'host=10.0.0.11 port=5432 user=replicator application_name=pg2', ...over });
const down: PgStatus = { up: false, error: 'connection refused' };
const dataDir = { exists: true, pgVersion: '15', standbySignal: false, recoverySignal: false, running: true, oldCopies: [], cloneMarker: null, startConf: 'auto', enabled: null };
const opts = { explicitTarget: true, allowPristine: false, reclone: false };
const clone = (self: string, statuses: Record<string, PgStatus>, o = opts) =>
  planClone({ cluster, self: cluster.nodes.find((n) => n.name === self)!, statuses, dataDir, dataDirPath: '/var/lib/postgresql/15/main' }, o);

describe('base-backup guard (no flag overrides it)', () => {
  it('refuses to wipe the only writable node, naming it and its data dir', () => {
    const d = clone('pg1', { pg1: primary(), pg2: standby() });
    expect(d).toEqual({ kind: 'blocked', reason: expect.stringContaining('pg1 is writable (pg_is_in_recovery() = f) and the only writable node: refusing to wipe /var/lib/postgresql/15/main') });
    // reclone does not change that
    expect(clone('pg1', { pg1: primary(), pg2: standby() }, { ...opts, reclone: true }).kind).toBe('blocked');
  });

  it('refuses a writable node with data even when setup allows pristine ones', () => {
    const d = clone('pg2', { pg1: primary(), pg2: primary({ userDatabases: ['app'] }) }, { explicitTarget: false, allowPristine: true, reclone: false });
    expect(d.kind).toBe('blocked');
    expect('reason' in d && d.reason).toContain('holds data or clients (databases: app');
  });

  it('setup replaces a pristine stand-alone standby, never the intended primary', () => {
    const o = { explicitTarget: false, allowPristine: true, reclone: false };
    expect(clone('pg2', { pg1: primary(), pg2: primary() }, o)).toMatchObject({ kind: 'clone', source: { name: 'pg1' } });
    expect(clone('pg1', { pg1: primary(), pg2: primary() }, o).kind).toBe('noop');
  });

  it('a healthy standby is left alone unless reclone; a stopped one is re-cloned from the writable node', () => {
    expect(clone('pg2', { pg1: primary(), pg2: standby() }).kind).toBe('noop');
    expect(clone('pg2', { pg1: primary(), pg2: standby() }, { ...opts, reclone: true })).toMatchObject({ kind: 'clone', source: { name: 'pg1' } });
    expect(clone('pg2', { pg1: primary(), pg2: down })).toMatchObject({ kind: 'clone' });
  });

  it('no source: no writable node, or two (split brain)', () => {
    expect(clone('pg2', { pg1: down, pg2: down })).toMatchObject({ kind: 'blocked', reason: expect.stringContaining('no writable node') });
    expect(clone('pg2', { pg1: primary(), pg2: standby({ primaryConninfo: 'host=10.0.0.99' }) }).kind).toBe('clone');
  });
});

describe('a clone resumes where an earlier run stopped', () => {
  const exited = (exitCode: number) => ({ state: 'exited' as const, id: 'j', exitCode, startedAt: '', endedAt: '', command: '' });
  const running = { state: 'running' as const, id: 'j', pid: 42, startedAt: '', command: '' };
  const absent = { state: 'absent' as const, id: 'j' };
  it('reattaches to a running job, verifies a finished one, redoes a failed or vanished one', () => {
    expect(cloneResumePoint(running, '/d.old.1', false)).toBe('running');
    expect(cloneResumePoint(exited(0), '/d.old.1', false)).toBe('done');
    expect(cloneResumePoint(exited(1), '/d.old.1', false)).toBe('redo');
    expect(cloneResumePoint(absent, '-', false)).toBe('redo');
    expect(cloneResumePoint(absent, null, false)).toBe('fresh');
  });
  it('a marker while the node answers is stale (that run reached the start): a new clone starts afresh', () => {
    expect(cloneResumePoint(exited(0), '/d.old.1', true)).toBe('fresh');
    expect(cloneResumePoint(absent, '/d.old.1', true)).toBe('fresh');
  });
  it('clone_max_rate takes what pg_basebackup --max-rate takes', () => {
    for (const ok of [undefined, '', '32', '32k', '50M', '1024M']) expect(cloneParamProblems({ clone_max_rate: ok })).toEqual([]);
    for (const bad of ['31', '2048M', '10MB', '5 M', '1G', '; rm -rf /']) expect(cloneParamProblems({ clone_max_rate: bad })[0]).toContain('clone_max_rate');
  });
});

describe('failover guard', () => {
  it('refuses while the old primary is reachable and writable, unless force', () => {
    const v = failoverVerdict('pg2', standby(), { pg1: { answers: true, inRecovery: false } }, false);
    expect(v).toMatchObject({ kind: 'blocked', reason: expect.stringContaining('pg1 is reachable and writable: refusing to promote pg2') });
    expect(failoverVerdict('pg2', standby(), { pg1: { answers: true, inRecovery: false } }, true).kind).toBe('go');
  });

  it('goes when the old primary does not answer; refuses a paused replay; is a no-op once promoted', () => {
    expect(failoverVerdict('pg2', standby(), { pg1: { answers: false, error: 'refused' } }, false).kind).toBe('go');
    expect(failoverVerdict('pg2', standby({ replayPause: 'paused' }), { pg1: { answers: false, error: 'x' } }, false).kind).toBe('blocked');
    expect(failoverVerdict('pg2', primary(), { pg1: { answers: false, error: 'x' } }, false).kind).toBe('noop');
  });

  it('never two writable nodes: a promoted candidate next to a writable peer is split brain, force or not', () => {
    expect(failoverVerdict('pg2', primary(), { pg1: { answers: true, inRecovery: false } }, true)).toMatchObject({ kind: 'blocked', reason: expect.stringContaining('split brain') });
  });
});

describe('inventory contract', () => {
  it('intended primary from pg_primary, slot names sanitised, password required', () => {
    const c = resolveCluster({ select: () => [host('db-1.example', '10.0.0.1', { pg_primary: 'db-2.example' }), host('db-2.example', '10.0.0.2', { pg_primary: 'db-2.example' })] }, params) as PgCluster;
    expect(c.intendedPrimary.name).toBe('db-2.example');
    expect(c.nodes.map((n) => n.slotName)).toEqual(['db_1_example', 'db_2_example']);
    expect(resolveCluster({ select }, { ...params, replication_password: undefined })).toEqual([expect.stringContaining('replication_password is required')]);
  });

  it('reports disagreements and unknown primaries', () => {
    const bad = resolveCluster({ select: () => [host('a', '1', { pg_primary: 'a' }), host('b', '2', { pg_primary: 'b' })] }, params);
    expect(bad).toEqual([expect.stringContaining('disagree on pg_primary')]);
    const missing = resolveCluster({ select: () => [host('a', '1', { pg_primary: 'x' }), host('b', '2', { pg_primary: 'x' })] }, params);
    expect(missing).toEqual([expect.stringContaining('pg_primary x is not a host of group postgres')]);
  });
});

describe('setup on a fresh 3-node cluster (issue 12)', () => {
  const select3 = () => ['pg1', 'pg2', 'pg3'].map((n, i) => host(n, `10.0.0.${11 + i}`, { pg_primary: 'pg1' }));
  const c3 = resolveCluster({ select: select3 }, params) as PgCluster;
  const o = { explicitTarget: false, allowPristine: true, reclone: false };
  const clone3 = (self: string, statuses: Record<string, PgStatus>) =>
    planClone({ cluster: c3, self: c3.nodes.find((n) => n.name === self)!, statuses, dataDir, dataDirPath: '/d' }, o);

  it('every pristine node is cloned from the intended primary', () => {
    const all = { pg1: primary({ userTables: 1 }), pg2: primary(), pg3: primary() };
    expect(clone3('pg2', all)).toMatchObject({ kind: 'clone', source: { name: 'pg1' } });
    expect(clone3('pg3', all)).toMatchObject({ kind: 'clone', source: { name: 'pg1' } });
    expect(clone3('pg1', all).kind).toBe('noop');
  });

  it('a third writable node that holds data is still split brain', () => {
    const d = clone3('pg2', { pg1: primary(), pg2: primary(), pg3: primary({ userDatabases: ['app'] }) });
    expect(d).toMatchObject({ kind: 'blocked', reason: expect.stringContaining('split brain') });
  });
});
