import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseIpAddr, parseKeepalived } from '../../../src/modules/vip/facts.js';
import { PSQL_BIN } from '../../../src/modules/postgres/facts.js';
import {
  interfaceFor,
  keepalivedReload,
  keepalivedService,
  nodeViews,
  priorityFor,
  renderCheckScript,
  renderKeepalivedConf,
  vipCheck,
  vipHolders,
  vipProblem,
  vipSteps,
  type NodeView,
} from '../../../src/modules/vip/vip.js';

const ipAddr = readFileSync(new URL('../../fixtures/nfs/ip-addr.txt', import.meta.url), 'utf8');
const VIP = '10.231.0.100';

describe('keepalived.conf', () => {
  it('refuses an inventory value keepalived cannot carry in a word, naming it', () => {
    const spec = { node: 'pg1', interface: 'eth0', sourceIp: '10.231.0.11', peers: ['10.231.0.12'], vip: VIP, prefix: 24, virtualRouterId: 51, priority: 150, advertInt: 0.5 };
    expect(() => renderKeepalivedConf({ ...spec, node: 'pg1 }\nvrrp_script x {' })).toThrow(/router_id \(inventory host name\): holds a space/);
    expect(() => renderKeepalivedConf({ ...spec, peers: ['10.0.0.1"'] })).toThrow(/unicast_peer/);
  });

  const conf = renderKeepalivedConf({
    node: 'pg1',
    interface: 'eth0',
    sourceIp: '10.231.0.11',
    peers: ['10.231.0.12'],
    vip: VIP,
    prefix: 24,
    virtualRouterId: 51,
    priority: 150,
    advertInt: 0.5,
  });

  it('is unicast, BACKUP + nopreempt, tracks the writable check, notifies a log-only script', () => {
    expect(conf).toMatch(/state BACKUP\n {4}nopreempt\n/);
    expect(conf).toMatch(/unicast_src_ip 10\.231\.0\.11\n {4}unicast_peer \{\n {8}10\.231\.0\.12\n {4}\}/);
    expect(conf).toContain('10.231.0.100/24 dev eth0');
    expect(conf).toMatch(/track_script \{\n {8}runbook_pg_writable\n/);
    // The release flag: a non-zero value faults the node at once (weight 0), created as 0, never overwritten.
    expect(conf).toMatch(/track_file runbook_pg_release \{\n {4}file "\/etc\/keepalived\/runbook-vip-release"\n {4}weight 0\n {4}init_file 0\n\}/);
    expect(conf).toMatch(/track_file \{\n {8}runbook_pg_release\n {4}\}/);
    expect(conf).toContain('notify "/etc/keepalived/runbook-notify.sh"');
    // Hysteresis: one slow check (timeout 8 s) does not drop the VIP (fall 3); taking it needs 2 passes.
    expect(conf).toMatch(/ {4}interval 1\n {4}timeout 8\n {4}fall 3\n {4}rise 1\n/);
    expect(conf).toMatch(/vrrp_script runbook_pg_writable \{\n {4}script "\/etc\/keepalived\/runbook-pg-writable.sh"\n {4}interval 1\n/);
    expect(conf).not.toMatch(/state MASTER|mcast|notify_master/);
  });

  it('the check script succeeds only on a writable server', () => {
    expect(renderCheckScript(5433)).toContain(`[ "$(echo 'SELECT NOT pg_is_in_recovery()' | PGCONNECT_TIMEOUT=5 setpriv --reuid=postgres --regid=postgres --init-groups ${PSQL_BIN} -XAtq -p 5433 -d postgres 2>/dev/null)" = t ]`);
  });

  it('keepalived starts as a plain process and the start waits for its pid file', () => {
    const svc = keepalivedService();
    const start = svc.commands!.start.toString();
    expect(start).toMatch(/^setsid keepalived -n -l -P -f \/etc\/keepalived\/keepalived.conf -p \/run\/keepalived.pid /);
    expect(start).toContain(`for i in $(seq 50); do { ${svc.commands!.status.toString()}; } && break`);
    expect(keepalivedReload({ init: 'none', pid: 7 })?.toString()).toBe('kill -HUP 7');
    expect(keepalivedReload({ init: 'none' })).toBeUndefined();
  });

  it('priorities are distinct in inventory order', () => {
    expect(priorityFor('pg1', ['pg1', 'pg2'])).toBeGreaterThan(priorityFor('pg2', ['pg1', 'pg2']));
  });
});

describe('facts', () => {
  it('reads interface addresses, the VIP included', () => {
    const addrs = parseIpAddr(ipAddr);
    expect(addrs).toEqual([
      { ifname: 'lo', address: '127.0.0.1', prefix: 8 },
      { ifname: 'eth0', address: '10.231.0.11', prefix: 24 },
      { ifname: 'eth0', address: VIP, prefix: 24 },
    ]);
    expect(interfaceFor('10.231.0.11', addrs)).toEqual({ ifname: 'eth0', address: '10.231.0.11', prefix: 24 });
    expect(interfaceFor('10.231.0.99', addrs)).toBeUndefined();
    expect(parseIpAddr('5: eth0@if6    inet 10.0.0.2/16 scope global eth0')).toEqual([{ ifname: 'eth0', address: '10.0.0.2', prefix: 16 }]);
  });

  it('reads the keepalived process', () => {
    expect(parseKeepalived('binary=/usr/sbin/keepalived\npid=77\ninit=none\n')).toEqual({ binary: '/usr/sbin/keepalived', pid: 77, init: 'none' });
    expect(parseKeepalived('binary=\npid=\ninit=systemd\n')).toEqual({ init: 'systemd' });
    expect(parseKeepalived('pid=9\ninit=none\nnotify=2026-12-02T11:41:07+0000 INSTANCE runbook_pg_vip FAULT 130\n')).toEqual({
      pid: 9,
      init: 'none',
      vrrp: { state: 'FAULT', at: '2026-12-02T11:41:07+0000' },
    });
    expect(parseKeepalived('pid=9\ninit=none\nnotify=\n')).toEqual({ pid: 9, init: 'none' });
    // The release flag: set only for a non-zero value; a missing file (keepalived creates it) is not set.
    expect(parseKeepalived('pid=9\ninit=none\nrelease=1\n')).toEqual({ pid: 9, init: 'none', released: true });
    expect(parseKeepalived('pid=9\ninit=none\nrelease=0\n')).toEqual({ pid: 9, init: 'none' });
    expect(parseKeepalived('pid=9\ninit=none\nrelease=\n')).toEqual({ pid: 9, init: 'none' });
  });
});

describe('who holds the VIP', () => {
  const node = (host: string, holdsVip: boolean, role: NodeView['role']): NodeView => ({ host, holdsVip, role });

  it('none, one, two holders', () => {
    expect(vipHolders([node('pg1', false, 'primary'), node('pg2', false, 'standby')])).toEqual({ kind: 'none' });
    expect(vipHolders([node('pg1', true, 'primary'), node('pg2', false, 'standby')])).toMatchObject({ kind: 'one', holder: { host: 'pg1' } });
    expect(vipHolders([node('pg1', true, 'primary'), node('pg2', true, 'standby')])).toMatchObject({ kind: 'duplicate' });
  });

  it('problems are named precisely', () => {
    expect(vipProblem(VIP, [node('pg1', true, 'primary'), node('pg2', false, 'standby')])).toBeUndefined();
    expect(vipProblem(VIP, [node('pg1', true, 'primary'), node('pg2', true, 'standby')])).toMatch(
      /^VIP 10\.231\.0\.100 is held by pg1 \(primary\) and pg2 \(standby\) at once: a duplicate VIP/,
    );
    expect(vipProblem(VIP, [node('pg1', false, 'primary'), node('pg2', false, 'standby')])).toBe('no node holds VIP 10.231.0.100 (primary: pg1)');
    expect(vipProblem(VIP, [node('pg1', true, 'down'), node('pg2', false, 'primary')])).toBe('VIP 10.231.0.100 is on pg1, which is not answering; the primary is pg2');
    expect(vipProblem(VIP, [node('pg1', false, 'standby'), node('pg2', true, 'standby')])).toBe('VIP 10.231.0.100 is on pg2, which is a standby');
    expect(vipProblem(VIP, [node('pg1', true, 'primary'), node('pg2', false, 'primary')])).toMatch(/more than one writable node \(pg1, pg2\): split brain/);
  });

  it('the full check needs PostgreSQL answering on the VIP too', () => {
    const addrs = parseIpAddr(ipAddr);
    const facts = { answers: true as const, 'addr:pg1': addrs, 'role:pg1': 'primary' as const, 'addr:pg2': [], 'role:pg2': 'standby' as const };
    expect(nodeViews(VIP, facts)).toEqual([node('pg1', true, 'primary'), node('pg2', false, 'standby')]);
    expect(vipCheck(VIP, facts)).toEqual({ ok: true, message: 'VIP 10.231.0.100 is on pg1 only, the primary; PostgreSQL answers on it' });
    expect(vipCheck(VIP, { ...facts, answers: 'no response' })).toEqual({ ok: false, message: 'PostgreSQL does not answer on 10.231.0.100: no response' });
  });

  it('a VIP that is not where it should be comes with keepalived\'s own state per node', () => {
    const facts = {
      answers: 'no response',
      'addr:pg1': [],
      'role:pg1': 'down' as const,
      'keepalived:pg1': { init: 'none' as const },
      'addr:pg2': [],
      'role:pg2': 'primary' as const,
      'keepalived:pg2': { pid: 7, init: 'none' as const, vrrp: { state: 'FAULT', at: '2026-12-02T11:41:07+0000' } },
      'addr:pg3': [],
      'role:pg3': 'standby' as const,
      'keepalived:pg3': { pid: 8, init: 'none' as const },
    };
    expect(vipCheck(VIP, facts)).toEqual({
      ok: false,
      message: 'no node holds VIP 10.231.0.100 (primary: pg2); keepalived: pg1 not running, pg2 FAULT since 2026-12-02T11:41:07+0000, pg3 no state logged',
    });
  });
});

describe('reusable steps', () => {
  type P = { vip?: string };
  const steps = vipSteps<P>({ nodes: 'db', vip: (p) => p.vip });
  const ctx = (vip?: string) => ({ params: { vip }, hosts: [], select: () => [], checkMode: false, host: { name: 'pg1', vars: {}, groups: [], address: '' }, state: {} });
  const addrs = parseIpAddr(ipAddr);

  it('skip without a VIP; run once on the nodes', () => {
    expect(steps.map((s) => s.id)).toEqual(['vip-no-duplicate', 'vip-follows-primary']);
    expect(steps.every((s) => s.runOnce && s.on === 'db')).toBe(true);
    expect(steps[0]!.when!(ctx())).toBe('no VIP configured');
    expect(steps[0]!.when!(ctx(VIP))).toBe(true);
  });

  it('a duplicate blocks at once; a VIP not yet on the primary is a wait that verify polls', () => {
    const dup = { answers: true as const, 'addr:pg1': addrs, 'role:pg1': 'primary' as const, 'addr:pg2': addrs, 'role:pg2': 'standby' as const };
    expect(steps[0]!.plan!(dup, ctx(VIP))).toMatchObject({ kind: 'blocked', reason: expect.stringContaining('at once: a duplicate VIP') });
    const moving = { answers: true as const, 'addr:pg1': addrs, 'role:pg1': 'standby' as const, 'addr:pg2': [], 'role:pg2': 'primary' as const };
    const plan = steps[1]!.plan!(moving, ctx(VIP));
    expect(plan).toMatchObject({ kind: 'change', commands: [], summary: expect.stringContaining('wait up to 20 s for the VIP to follow the primary (now: VIP 10.231.0.100 is on pg1, which is a standby; the primary is pg2)') });
    expect(steps[1]!.verify?.assertions?.(ctx(VIP) as never)[0]).toMatchObject({ timeoutMs: 20_000 });
    const settled = { ...moving, 'addr:pg1': [], 'addr:pg2': addrs };
    expect(steps[1]!.plan!(settled, ctx(VIP)).kind).toBe('noop');
  });

  it('a VIP that keepalived does not manage on these nodes is nothing to follow', () => {
    const none = { init: 'none' as const };
    const unmanaged = { answers: 'no response', 'addr:pg1': [], 'role:pg1': 'standby' as const, 'keepalived:pg1': none, 'addr:pg2': [], 'role:pg2': 'primary' as const, 'keepalived:pg2': none };
    for (const step of steps) expect(step.plan!(unmanaged, ctx(VIP))).toMatchObject({ kind: 'noop', reason: expect.stringContaining('not managed on these nodes') });
    // keepalived running somewhere: the VIP is managed, and not being on the primary is a wait.
    const managed = { ...unmanaged, 'keepalived:pg2': { init: 'none' as const, pid: 42 } };
    expect(steps[1]!.plan!(managed, ctx(VIP)).kind).toBe('change');
  });
});
