/**
 * setup-vip on the lab: keepalived on pg1 and pg2, the VIP on the writable node only, PostgreSQL
 * reachable through it, the VIP following a promotion within 5 s, a forced duplicate reported.
 *
 * Needs a streaming pair. Until setup-warm-standby and failover/failback exist, this file makes
 * one itself (pg_basebackup of pg1 onto pg2, trust lines for the lab subnet) and promotes by hand;
 * afterAll puts both nodes back as it found them. Runs the compiled CLI (`npm run build` first).
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { inHost, labHost, psqlInHost } from '../support/lab.js';

const inventory = inject('labInventory');
const cli = new URL('../../bin/runbook.js', import.meta.url).pathname;
const MARK = '# runbook-e2e-vip';
const DATA = '/var/lib/postgresql/15/main';
const HBA = '/etc/postgresql/15/main/pg_hba.conf';

function run(runbook: string, ...args: string[]): { code: number; out: string } {
  const r = spawnSync(process.execPath, [cli, 'run', runbook, '-i', inventory, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, CI: '1' } });
  return { code: r.status ?? -1, out: `${r.stdout}\n${r.stderr}` };
}

async function sh(host: string, script: string): Promise<string> {
  const r = await inHost(host, script);
  if (r.code !== 0) throw new Error(`${host}: ${script}: exit ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Which of the nodes have the address on an interface (read inside each host, not over SSH). */
async function holders(vip: string): Promise<string[]> {
  const out: string[] = [];
  for (const h of ['pg1', 'pg2']) if ((await inHost(h, `ip -o -4 addr show | grep -qF ' ${vip}/'`)).code === 0) out.push(h);
  return out;
}

describe.skipIf(!inventory)('setup-vip', () => {
  let vip: string;
  let subnet: string;
  let madePair = false;

  beforeAll(async () => {
    const pg1 = labHost('pg1').address;
    subnet = pg1.replace(/\.\d+$/, '.0/24');
    vip = pg1.replace(/\.\d+$/, '.100');
    const inRecovery = (await psqlInHost('pg2', 'SELECT pg_is_in_recovery()')).stdout.trim();
    if (inRecovery !== 't') {
      // Trust from the lab subnet: replication for pg_basebackup, psql through the VIP.
      for (const h of ['pg1', 'pg2'])
        await sh(h, `printf '%s\\n' 'host replication postgres ${subnet} trust ${MARK}' 'host all postgres ${subnet} trust ${MARK}' >> ${HBA} && su -s /bin/sh postgres -c "psql -XAtqc 'SELECT pg_reload_conf()'"`);
      await sh('pg2', `pg_ctlcluster 15 main stop && mv ${DATA} ${DATA}.e2e-vip && su -s /bin/sh postgres -c 'cd / && pg_basebackup -h ${pg1} -U postgres -D ${DATA} -R -X stream -c fast' && pg_ctlcluster 15 main start`);
      madePair = true;
    }
    expect((await psqlInHost('pg2', 'SELECT pg_is_in_recovery()')).stdout.trim()).toBe('t');
  });

  afterAll(async () => {
    for (const h of ['pg1', 'pg2'])
      await inHost(h, `p=$(cat /run/keepalived.pid 2>/dev/null) && kill "$p"; sleep 1; ip addr del ${vip}/24 dev eth0 2>/dev/null; rm -f /etc/keepalived/keepalived.conf; true`);
    if (madePair) {
      await inHost('pg2', `pg_ctlcluster 15 main stop; rm -rf ${DATA} && mv ${DATA}.e2e-vip ${DATA}`);
      for (const h of ['pg1', 'pg2']) await inHost(h, `sed -i '/${MARK}/d' ${HBA}; pg_ctlcluster 15 main start 2>/dev/null; su -s /bin/sh postgres -c "psql -XAtqc 'SELECT pg_reload_conf()'"; true`);
    }
  });

  it('puts the VIP on the primary only, and PostgreSQL answers on it from another host', async () => {
    const r = run('setup-vip', '--yes');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain(`VIP ${vip} is on pg1 only, the primary; PostgreSQL answers on it`);
    expect(await holders(vip)).toEqual(['pg1']);
    const conf = await sh('pg2', 'cat /etc/keepalived/keepalived.conf');
    expect(conf).toMatch(new RegExp(`unicast_src_ip ${labHost('pg2').address}\\n\\s+unicast_peer \\{\\n\\s+${labHost('pg1').address.replace(/\./g, '\\.')}\\n`));
    expect(conf).toMatch(/state BACKUP\n\s+nopreempt/);
    // From nfs1, a third host: the VIP reaches the writable server, which holds the VIP.
    const via = await sh('nfs1', `cd / && psql -XAt -h ${vip} -U postgres -d postgres -c 'SELECT pg_is_in_recovery(), inet_server_addr()'`);
    expect(via).toBe(`f|${vip}`);
  });

  it('a second run in check mode finds nothing to change', () => {
    const r = run('setup-vip', '--check');
    expect(r.code, r.out).toBe(0);
  });

  it('reports a VIP held by two nodes at once', async () => {
    await sh('pg2', `ip addr add ${vip}/24 dev eth0`);
    try {
      expect(await holders(vip)).toEqual(['pg1', 'pg2']);
      const r = run('setup-vip', '--check');
      expect(r.code).not.toBe(0);
      expect(r.out).toContain(`VIP ${vip} is held by pg1 (primary) and pg2 (standby) at once: a duplicate VIP`);
    } finally {
      await sh('pg2', `ip addr del ${vip}/24 dev eth0`);
    }
  });

  it('follows a promotion to pg2 within 5 s, and the reusable check agrees', async () => {
    await sh('pg1', 'pg_ctlcluster 15 main stop -m immediate');
    await sh('pg2', 'pg_ctlcluster 15 main promote');
    const started = Date.now();
    let now: string[] = [];
    while (Date.now() - started < 5000) {
      now = await holders(vip);
      if (now.length === 1 && now[0] === 'pg2') break;
      await new Promise((res) => setTimeout(res, 100));
    }
    const took = Date.now() - started;
    expect(now, `VIP holders after ${took} ms`).toEqual(['pg2']);
    expect(took).toBeLessThan(5000);
    const r = run('setup-vip', '--check', '--tags', 'vip-verify');
    expect(r.out).toContain(`VIP ${vip} is on pg2 only, the primary; PostgreSQL answers on it`);
  });
});
