/** runbook check: verdicts and formats from fixture facts (no hosts). */
import { describe, expect, it } from 'vitest';
import { type ClusterFacts, type Finding, type NodeFacts, CRITICAL, OK, WARNING, DEFAULT_THRESHOLDS, healthFindings, overall, readinessFindings } from '../../../src/modules/health/verdicts.js';
import { formatJson, formatJunit, formatNagios } from '../../../src/modules/health/format.js';
import { parseHealthRows } from '../../../src/modules/health/read.js';

type Up = Extract<NodeFacts, { reachable: true }>;
const node = (host: string, over: Partial<Up> = {}): Up => ({
  host,
  reachable: true,
  up: true,
  inRecovery: host !== 'pg1',
  replayPause: host !== 'pg1' ? 'not paused' : null,
  receiveLsn: host !== 'pg1' ? '0/3000148' : null,
  replayLsn: host !== 'pg1' ? '0/3000148' : null,
  applicationName: host,
  systemIdentifier: '7714442984340893756',
  maxWalSenders: 10,
  maxReplicationSlots: 10,
  maxSlotWalKeepSizeMb: 2048,
  walLogHints: true,
  dataChecksums: false,
  archiveMode: 'off',
  senders: host === 'pg1' ? [{ applicationName: 'pg2', state: 'streaming', replayLagBytes: 0 }] : [],
  slots: host === 'pg1' ? [{ name: 'pg2', active: true, walStatus: 'reserved', retainedBytes: 100 }] : [],
  archiver: { failedCount: 0, failingNow: false, lastFailedWal: null },
  readyFiles: 0,
  holdsVip: host === 'pg1',
  syncs: host === 'pg2' ? [{ name: 'files', source: 'pg1', interval: 10, lastSuccess: 1000, now: 1005, kept: [], scheduled: true }] : [],
  ...over,
});
const healthy = (): ClusterFacts => ({
  nodes: [node('pg1'), node('pg2')],
  intendedPrimary: 'pg1',
  vip: '10.0.0.100',
  candidate: { host: 'pg2', why: 'pg2 is the most advanced healthy standby' },
  fence: { action: 'ssh', evidence: 'down-ssh-pgctl', reason: 'pg1 answers SSH' },
});
const all = (c: ClusterFacts) => [...healthFindings(c), ...readinessFindings(c)];
const bad = (fs: Finding[]) => fs.filter((f) => f.level !== OK).map((f) => `${LEVEL[f.level]} ${f.check}@${f.host}: ${f.message}`);
const LEVEL = ['OK', 'WARNING', 'CRITICAL', 'UNKNOWN'];

describe('runbook check verdicts', () => {
  it('a healthy cluster is OK, and each finding names host, figure and threshold', () => {
    const fs = all(healthy());
    expect(bad(fs)).toEqual([]);
    expect(overall(fs)).toBe(OK);
    const lag = fs.find((f) => f.check === 'replay-lag')!;
    expect(lag).toMatchObject({ host: 'pg2', figure: 0, threshold: DEFAULT_THRESHOLDS.maxLagBytes, unit: 'B' });
    expect(fs.find((f) => f.check === 'candidate')!.message).toContain('failover would promote pg2');
    expect(fs.find((f) => f.check === 'file-sync')).toMatchObject({ host: 'pg2', figure: 5, threshold: 30, level: OK });
  });

  it('the primary killed: CRITICAL, no writable node', () => {
    const c = healthy();
    c.nodes[0] = node('pg1', { up: false, error: 'connection refused', senders: [], slots: [] });
    c.nodes[1] = node('pg2', { holdsVip: false });
    const fs = all(c);
    expect(overall(fs)).toBe(CRITICAL);
    expect(bad(fs)).toContain('CRITICAL postgres-up@pg1: pg1: PostgreSQL does not answer: connection refused');
    expect(bad(fs)).toContain('CRITICAL one-writable@cluster: no writable node: every node that answers is in recovery or down');
  });

  it('replay lag over the threshold is CRITICAL, over half of it WARNING; paused replay blocks the candidate', () => {
    const c = healthy();
    (c.nodes[0] as Up).senders = [{ applicationName: 'pg2', state: 'streaming', replayLagBytes: 20_000_000 }];
    c.nodes[1] = node('pg2', { replayPause: 'paused' });
    const fs = all(c);
    expect(bad(fs)).toContain('CRITICAL replay-lag@pg2: pg2: replay lag 20000000 B (19.1 MB) behind pg1, threshold 16777216 B');
    expect(bad(fs)).toContain('CRITICAL candidate-replay@pg2: pg2: replay is paused: failover refuses until pg_wal_replay_resume()');
    expect(bad(fs)).toContain('CRITICAL candidate-lag@pg2: pg2: lag 20000000 B (19.1 MB), max_lag_on_failover 16777216 B');
    (c.nodes[0] as Up).senders = [{ applicationName: 'pg2', state: 'streaming', replayLagBytes: 10_000_000 }];
    expect(healthFindings(c).find((f) => f.check === 'replay-lag')!.level).toBe(WARNING);
  });

  it('a standby that does not stream, an inactive or lost slot', () => {
    const c = healthy();
    (c.nodes[0] as Up).senders = [];
    (c.nodes[0] as Up).slots = [{ name: 'pg2', active: false, walStatus: 'lost', retainedBytes: 5 }];
    const b = bad(healthFindings(c));
    expect(b.join('\n')).toContain('CRITICAL streaming@pg2: pg2 does not stream from pg1');
    expect(b.join('\n')).toContain('CRITICAL slot@pg1: pg1: slot pg2 INACTIVE');
    (c.nodes[0] as Up).slots = [{ name: 'pg2', active: true, walStatus: 'extended', retainedBytes: 1900 * 1024 * 1024 }];
    expect(bad(healthFindings(c)).join('\n')).toContain('WARNING slot@pg1: pg1: slot pg2 active, retains 1992294400 B (1900.0 MB), max_slot_wal_keep_size 2147483648 B: retains over 80 %');
  });

  it('split brain, archive failures, the VIP in the wrong place', () => {
    const c = healthy();
    c.nodes[1] = node('pg2', { inRecovery: false, holdsVip: true });
    (c.nodes[0] as Up).archiveMode = 'on';
    (c.nodes[0] as Up).archiver = { failedCount: 3, failingNow: true, lastFailedWal: '000000010000000000000003' };
    const b = bad(healthFindings(c)).join('\n');
    expect(b).toContain('CRITICAL one-writable@cluster: pg1 and pg2 are all writable (split brain)');
    expect(b).toContain('CRITICAL archive@pg1: pg1: archiving fails (pg_stat_archiver.failed_count 3, last failed 000000010000000000000003 after the last success)');
    expect(b).toContain('CRITICAL vip@pg1,pg2: VIP 10.0.0.100 is on pg1 and pg2, and no node is the one primary');
    const none = healthy();
    (none.nodes[0] as Up).holdsVip = false;
    expect(bad(healthFindings(none))).toEqual(['CRITICAL vip@pg1: no node holds VIP 10.0.0.100 (the primary is pg1)']);
    const noVip = healthy();
    noVip.vip = undefined;
    (noVip.nodes[0] as Up).holdsVip = false;
    expect(bad(healthFindings(noVip))).toEqual([]);
  });

  it('file sync: a stale last success is CRITICAL, files kept on a target WARNING, no schedule CRITICAL', () => {
    const c = healthy();
    (c.nodes[1] as Up).syncs = [{ name: 'files', source: 'pg1', interval: 10, lastSuccess: 1000, now: 1100, kept: ['a.txt'], scheduled: true, lastFailed: 'rsync exit 255 for /srv/files' }];
    const b = bad(healthFindings(c));
    expect(b).toContain('CRITICAL file-sync@pg2: pg2: file sync files from pg1: last success 100 s ago, threshold 30 s (last run failed: rsync exit 255 for /srv/files)');
    expect(b).toContain('WARNING file-sync-kept@pg2: pg2: file sync files: 1 file(s) written here kept, not overwritten: a.txt');
    (c.nodes[1] as Up).syncs = [{ name: 'files', source: 'pg1', interval: 10, lastSuccess: null, now: 1100, kept: [], scheduled: false }];
    expect(bad(healthFindings(c))).toEqual(['CRITICAL file-sync@pg2: pg2: file sync files from pg1 has no schedule here']);
  });

  it('readiness: fence refused, no rewind prerequisites, system ids differ, archive backlog, too few senders and slots', () => {
    const c = healthy();
    c.fence = { action: 'refuse', evidence: 'unknown', reason: 'pg1 may still be a writable primary' };
    (c.nodes[0] as Up).walLogHints = false;
    (c.nodes[0] as Up).readyFiles = 150;
    c.nodes[1] = node('pg2', { systemIdentifier: '1', maxWalSenders: 1, maxReplicationSlots: 1, senders: [{ applicationName: 'x', state: 'streaming', replayLagBytes: 0 }], slots: [{ name: 'x', active: true, walStatus: 'reserved', retainedBytes: 0 }] });
    const b = bad(readinessFindings(c)).join('\n');
    expect(b).toContain('CRITICAL fence@pg1: pg1: failover would REFUSE (evidence unknown)');
    expect(b).toContain('WARNING rewind-prerequisites@pg1: pg1: wal_log_hints off, data checksums off');
    expect(b).toContain('CRITICAL system-identifier@cluster: system identifiers differ');
    expect(b).toContain('CRITICAL archive-backlog@pg1: pg1: 150 WAL file(s) waiting to be archived (.ready), threshold 10');
    expect(b).toContain('CRITICAL candidate-senders@pg2: pg2: 0 free WAL sender(s) of max_wal_senders 1, needs 1');
    expect(b).toContain('CRITICAL candidate-slots@pg2: pg2: 0 free replication slot(s) of max_replication_slots 1, needs 1');
    c.candidate = { error: 'no healthy standby to promote' };
    expect(bad(readinessFindings(c))).toEqual(['CRITICAL candidate@cluster: failover has no candidate: no healthy standby to promote']);
  });

  it('unreachable node: CRITICAL, and a fence command that cannot run', () => {
    const c = healthy();
    c.nodes[0] = { host: 'pg1', reachable: false, error: 'connect ETIMEDOUT' };
    c.fence = { action: 'command', evidence: 'fence-command', reason: 'pg1: SSH unreachable: run fence_command', command: { line: 'ipmi-off pg1', runnable: false, detail: 'ipmi-off is not found on this machine' } };
    const b = bad(all(c)).join('\n');
    expect(b).toContain('CRITICAL reachable@pg1: pg1 cannot be reached over SSH: connect ETIMEDOUT');
    expect(b).toContain('CRITICAL fence@pg1: pg1: failover would fence by command (evidence fence-command)');
  });
});

describe('runbook check formats', () => {
  const c = healthy();
  (c.nodes[0] as Up).senders = [{ applicationName: 'pg2', state: 'streaming', replayLagBytes: 20_000_000 }];
  const fs = all(c);
  it('nagios: status line with the reason and perfdata, then one line per finding', () => {
    const text = formatNagios(fs);
    const [first, ...rest] = text.trimEnd().split('\n');
    expect(first).toMatch(/^RUNBOOK CHECK CRITICAL - 2 critical: pg2: replay lag 20000000 B/);
    expect(first).toContain(" | 'pg2_replay-lag'=20000000B;;16777216");
    expect(rest[0]).toMatch(/^\[CRITICAL\] /);
    expect(formatNagios(all(healthy()))).toMatch(/^RUNBOOK CHECK OK - \d+ checks passed/);
  });
  it('json and junit', () => {
    const j = JSON.parse(formatJson(fs, { candidate: 'pg2' }));
    expect(j).toMatchObject({ status: 'CRITICAL', code: 2, candidate: 'pg2' });
    expect(j.findings.find((f: { check: string }) => f.check === 'replay-lag').status).toBe('CRITICAL');
    const x = formatJunit(fs);
    expect(x).toContain('failures="2" errors="0"');
    expect(x).toContain('<testcase classname="runbook.check.health" name="replay-lag@pg2"><failure type="CRITICAL"');
  });
});

describe('health query rows', () => {
  it('parses node, archiver, sender and slot rows', () => {
    const h = parseHealthRows([
      ['node', 'f', null, null, null, '77', '10', '10', '2048', 'on', 'off', 'on', '3'],
      ['archiver', '2', 'false', '0000000100000000000000A1', null, null, null, null, null, null, null, null, null],
      ['sender', 'pg2', 'streaming', '128', null, null, null, null, null, null, null, null, null],
      ['slot', 'pg2', 'true', 'reserved', '4096', null, null, null, null, null, null, null, null],
    ]);
    expect(h).toMatchObject({ inRecovery: false, systemIdentifier: '77', maxSlotWalKeepSizeMb: 2048, walLogHints: true, dataChecksums: false, archiveMode: 'on', readyFiles: 3 });
    expect(h.archiver).toEqual({ failedCount: 2, failingNow: false, lastFailedWal: '0000000100000000000000A1' });
    expect(h.senders).toEqual([{ applicationName: 'pg2', state: 'streaming', replayLagBytes: 128 }]);
    expect(h.slots).toEqual([{ name: 'pg2', active: true, walStatus: 'reserved', retainedBytes: 4096 }]);
  });
});
