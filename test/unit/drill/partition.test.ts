import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { lossBudgets, promisesNoLoss, type ReplicationMode } from '../../../src/drill/budget.js';
import { chooseCutTool, cutCommands, guardCommand, guardScript, parseGuardLog, routeSource, toolsOf } from '../../../src/drill/partition.js';
import { conninfo, describeHistory, inFlightBound, parsePgbenchOutput, parseTransactionLog, parseWorkloadSpec, withHistory } from '../../../src/drill/workload.js';
import { perSecond } from '../../../src/drill/measures.js';

describe('partition: what cuts, and its undo', () => {
  it('prefers a firewall, falls back to blackhole routes', () => {
    expect(chooseCutTool(toolsOf('nft\niptables\nip\n'))).toBe('nft');
    expect(chooseCutTool(toolsOf('iptables\nip\n'))).toBe('iptables');
    expect(chooseCutTool(toolsOf('ip\n'))).toBe('blackhole');
    expect(chooseCutTool(toolsOf(''))).toBeUndefined();
  });

  it('cuts exactly the given addresses, both ways, and undoes only that', () => {
    const bh = cutCommands({ tool: 'blackhole', addresses: ['10.231.9.1', '10.231.9.12'] });
    expect(bh.install.toString()).toBe("ip route replace blackhole 10.231.9.1/32 && ip route replace blackhole 10.231.9.12/32");
    expect(bh.undo.toString()).toBe('ip route del blackhole 10.231.9.1/32 2>/dev/null; ip route del blackhole 10.231.9.12/32 2>/dev/null; true');
    const ipt = cutCommands({ tool: 'iptables', addresses: ['10.0.0.2'] });
    expect(ipt.install.toString()).toContain('iptables -w -I INPUT -s 10.0.0.2 -m comment --comment runbook-drill -j DROP');
    expect(ipt.install.toString()).toContain('-I OUTPUT -d 10.0.0.2');
    expect(ipt.undo.toString()).toContain('iptables -w -D INPUT -s 10.0.0.2');
    const nft = cutCommands({ tool: 'nft', addresses: ['10.0.0.2', '10.0.0.3'] });
    expect(nft.install.toString()).toContain('ip saddr { 10.0.0.2, 10.0.0.3 } drop');
    expect(nft.undo.toString()).toContain('nft delete table inet runbook_drill');
  });

  it('refuses anything that is not an IPv4 address (nothing unquoted reaches a shell)', () => {
    expect(() => cutCommands({ tool: 'blackhole', addresses: ['10.0.0.1; reboot'] })).toThrow(/not IPv4/);
    expect(() => cutCommands({ tool: 'nft', addresses: [] })).toThrow(/no address/);
  });

  it('the guard cuts after its delay, restores at the deadline, also on TERM, and logs both', () => {
    const script = guardScript({ id: 'partition-ab12', tool: 'blackhole', addresses: ['10.231.9.1'], deadline: 1_800_000_000, delaySec: 1 });
    expect(script).toContain("trap '' HUP INT PIPE");
    expect(script).toContain("trap 'restore; exit 0' TERM");
    expect(script).toContain('sleep 1');
    expect(script).toContain('-lt 1800000000');
    expect(script.indexOf('ip route replace')).toBeLessThan(script.indexOf('while'));
    // A detached job's command: no stdin, no secret, the script one quoted word.
    const cmd = guardCommand({ id: 'drill-partition-ab12', tool: 'blackhole', addresses: ['10.231.9.1'], deadline: 1_800_000_000, delaySec: 1 });
    expect(cmd.stdin).toBeUndefined();
    expect(cmd.hasSecrets).toBe(false);
    expect(cmd.toString().startsWith("/bin/sh -c '# runbook drill partition guard")).toBe(true);
    expect(() => guardCommand({ id: 'x; rm', tool: 'nft', addresses: ['10.0.0.1'], deadline: 1, delaySec: 1 })).toThrow(/guard id/);
  });

  it('the guard restores early once the server that ran at the cut has stopped (the failover fenced it)', () => {
    const script = guardScript({ id: 'p', tool: 'blackhole', addresses: ['10.231.9.1'], deadline: 1_800_000_000, delaySec: 1, pidFile: "/var/lib/postgresql/15/it's/postmaster.pid" });
    expect(script).toContain(`pg_up() { [ -s '/var/lib/postgresql/15/it'\\''s/postmaster.pid' ] && kill -0 "$(head -n 1 '/var/lib/postgresql/15/it'\\''s/postmaster.pid')" 2>/dev/null; }`);
    expect(script).toContain('watch=0; if pg_up; then watch=1; fi');
    expect(script).toMatch(/if \[ "\$watch" = 1 \] && ! pg_up; then echo "pg-stopped \$\(stamp\)"; break; fi/);
    expect(script.indexOf('watch=0')).toBeGreaterThan(script.indexOf('ip route replace'));
    expect(spawnSync('/bin/sh', ['-n', '-c', script]).status).toBe(0);
    // Without a pid file nothing is watched.
    expect(guardScript({ id: 'p', tool: 'nft', addresses: ['10.0.0.1'], deadline: 1, delaySec: 1 })).toContain('pg_up() { false; }');
    expect(parseGuardLog('cut 1760000001.105\npg-stopped 1760000020.5\nrestored 1760000020.9\n')).toEqual({ cutAt: 1760000001105, pgStoppedAt: 1760000020500, restoredAt: 1760000020900 });
  });

  it('reads the guard log and the source address of a route', () => {
    expect(parseGuardLog('guard 123 1760000000.100\ncut 1760000001.105\nrestored 1760000061.002\n')).toEqual({ startedAt: 1760000000100, cutAt: 1760000001105, restoredAt: 1760000061002 });
    expect(parseGuardLog('guard 1 1.0\ncut-failed 2.0\n').failed).toBe('cut-failed');
    expect(routeSource('10.231.9.11 dev eth0 src 10.231.9.12 uid 0 \\    cache')).toBe('10.231.9.12');
    expect(routeSource('RTNETLINK answers: Network is unreachable')).toBeUndefined();
  });
});

describe('loss budgets', () => {
  const sync: ReplicationMode = { synchronous_standby_names: 'ANY 1 (pg2, pg3)', synchronous_commit: 'on', sync_standbys: ['pg2', 'pg3'] };
  const async: ReplicationMode = { synchronous_standby_names: '', synchronous_commit: 'on', sync_standbys: [] };

  it('what the replication mode promises', () => {
    expect(promisesNoLoss(sync)).toBe(true);
    expect(promisesNoLoss(async)).toBe(false);
    expect(promisesNoLoss({ ...sync, synchronous_commit: 'local' })).toBe(false);
    expect(promisesNoLoss({ ...sync, sync_standbys: [] })).toBe(false); // configured, but no standby in sync right now
  });

  it('stop and the switchover: 0; kill: 0 under synchronous replication, reported only otherwise', () => {
    const [stop, sw] = lossBudgets({ fault: 'stop', probeLostFault: 1, probeLostSwitchover: 0 });
    expect(stop).toMatchObject({ max: 0, lost: 1, ok: false });
    expect(sw).toMatchObject({ max: 0, lost: 0, ok: true });
    expect(lossBudgets({ fault: 'kill', mode: sync, probeLostFault: 0, probeLostSwitchover: 0, workloadLost: 1 })[0]).toMatchObject({ max: 0, lost: 1, ok: false });
    const reported = lossBudgets({ fault: 'kill', mode: async, probeLostFault: 2, probeLostSwitchover: 0, workloadLost: 3, ledger: 'lsn 0/3000060 → 0/30001A0, 1 commit' })[0]!;
    expect(reported).toMatchObject({ max: null, lost: 5, ok: true });
    expect(reported.detail).toContain('ledger: lsn 0/3000060');
    expect(lossBudgets({ fault: 'partition', mode: async, maxLostWrites: 4, probeLostFault: 2, probeLostSwitchover: 0, workloadLost: 3 })[0]).toMatchObject({ max: 4, lost: 5, ok: false });
  });
});

describe('pgbench workload', () => {
  it('parses --workload, pgbench summaries and per-transaction logs', () => {
    expect(parseWorkloadSpec('pgbench')).toEqual({ clients: 4 });
    expect(parseWorkloadSpec('pgbench:8')).toEqual({ clients: 8 });
    expect(parseWorkloadSpec('pgbench:2@50')).toEqual({ clients: 2, rate: 50 });
    expect(parseWorkloadSpec('pgbench@100')).toEqual({ clients: 4, rate: 100 });
    expect(parseWorkloadSpec('pgbench:2@0')).toBeUndefined();
    expect(parseWorkloadSpec('pgbench:2@')).toBeUndefined();
    expect(parseWorkloadSpec('pgbench:0')).toBeUndefined();
    expect(parseWorkloadSpec('sysbench')).toBeUndefined();
    const out = 'number of clients: 4\nnumber of transactions actually processed: 14020\nnumber of failed transactions: 0 (0.000%)\n';
    const err = 'pgbench: error: client 1 aborted in command 4 (SQL) of script 0; perhaps the backend died\npgbench: error: client 3 aborted in command 5\npgbench: error: Run was aborted; the above results are incomplete.\n';
    expect(parsePgbenchOutput(out, err)).toEqual({ committed: 14020, failed: 0, abortedClients: 2 });
    // No summary (pgbench ended early): its count is unknown, not 0.
    expect(parsePgbenchOutput('', 'pgbench: error: could not create connection for client 2\n').committed).toBeUndefined();
    // The form pgbench 15 prints when a query of a running transaction fails (the server died).
    const killed = 'pgbench: error: client 0 script 0 aborted in command 5 query 0: FATAL:  terminating connection due to unexpected postmaster exit\npgbench: error: client 2 aborted while establishing connection\n';
    expect(parsePgbenchOutput(out, killed).abortedClients).toBe(2);
    // client_id transaction_no time script_no time_epoch time_us [schedule_lag]: "failed" and "skipped" were not acknowledged.
    const log = '0 0 1520 0 1760000000 100\n1 0 2210 0 1760000000 900\n0 1 1300 0 1760000001 5 120\n1 1 failed 0 1760000001 7\n2 0 skipped 0 1760000001 9 0\npartial li';
    expect(parseTransactionLog(log)).toEqual({ committed: 3, perSecond: [[1760000000, 2], [1760000001, 1]] });
    expect(perSecond([[5, 1], [4, 2], [5, 3]])).toEqual([[4, 2], [5, 4]]);
    // a second without a transaction is a zero, so the line drops during an outage
    expect(perSecond([[2, 3], [5, 1]])).toEqual([[2, 3], [3, 0], [4, 0], [5, 1]]);
  });

  it('compares the acknowledged count with pgbench_history', () => {
    const base = { tool: 'pgbench' as const, clients: 4, rounds: 3, committed: 100, summary_committed: 100, in_flight_at_abort: 4, failed: 0, aborted_clients: 4, refused_rounds: 1, per_second: [] };
    expect(withHistory(base, 99)).toMatchObject({ lost: 1, unacknowledged_present: 0 });
    expect(describeHistory(withHistory(base, 99))).toContain('1 acknowledged transactions are missing');
    expect(withHistory(base, 102)).toMatchObject({ lost: 0, unacknowledged_present: 2 });
    expect(describeHistory(withHistory(base, 102))).toMatch(/2 more rows from transactions in flight .*at most 4 possible\)$/);
    expect(describeHistory(withHistory(base, 110))).toContain('6 more than that');
    expect(describeHistory(withHistory(base, 100))).toContain('nothing more');
  });

  it('bounds the transactions a round may have committed without acknowledging them', () => {
    expect(inFlightBound({ exitCode: 0, summaryCommitted: 50, abortedClients: 0, committed: 50 }, 4)).toBe(0);
    // Summary printed: one per aborted client (each had at most one END in flight).
    expect(inFlightBound({ exitCode: 2, summaryCommitted: 50, abortedClients: 3, committed: 50 }, 4)).toBe(3);
    // No summary after transactions ran: any client may have been mid-way.
    expect(inFlightBound({ exitCode: 1, abortedClients: 0, committed: 20 }, 4)).toBe(4);
    // Refused at connect: nothing ran.
    expect(inFlightBound({ exitCode: 1, abortedClients: 0, committed: 0 }, 4)).toBe(0);
  });

  it('quotes conninfo values and never carries the password', () => {
    const c = conninfo({ host: '10.0.0.1', port: 5432, user: "o'brien", database: 'runbook_drill' });
    expect(c).toContain("user='o\\'brien'");
    expect(c).toContain('tcp_user_timeout=4000');
    expect(c).not.toMatch(/password/);
  });
});
