/**
 * check-keepalives on the lab: a host with the defaults (kernel 7200 s, PostgreSQL 0, sshd
 * ClientAliveInterval 0) is flagged; after fix=true it is quiet, and the values are really in
 * force (read inside the host, not through the runbook). afterAll puts the defaults back.
 * Runs the compiled CLI (`npm run build` first).
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { inHost, psqlInHost } from '../../support/lab.js';

const inventory = inject('labInventory');
const cli = new URL('../../../bin/runbook.js', import.meta.url).pathname;

function run(...args: string[]): { code: number; out: string } {
  const r = spawnSync(process.execPath, [cli, 'run', 'check-keepalives', '-i', inventory, '-l', 'pg1', ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, CI: '1' } });
  return { code: r.status ?? -1, out: `${r.stdout}\n${r.stderr}` };
}

const KEEPALIVE_SETTINGS = ['tcp_keepalives_idle', 'tcp_keepalives_interval', 'tcp_keepalives_count'];

/**
 * Kernel, sshd and PostgreSQL defaults: what a fresh Debian host has. PostgreSQL's are pinned to 0
 * with ALTER SYSTEM (it wins over config files), since an earlier runbook on this shared lab
 * (setup-warm-standby) may have set keepalives in its own file.
 */
async function defaults(pin: 'pin' | 'unpin'): Promise<void> {
  await inHost('pg1', 'rm -f /etc/sysctl.d/90-runbook-keepalive.conf; sysctl -qw net.ipv4.tcp_keepalive_time=7200 net.ipv4.tcp_keepalive_intvl=75 net.ipv4.tcp_keepalive_probes=9');
  await inHost('pg1', "sed -i -e 's/^ClientAliveInterval .*/#ClientAliveInterval 0/' -e 's/^ClientAliveCountMax .*/#ClientAliveCountMax 3/' /etc/ssh/sshd_config && kill -HUP $(cat /run/sshd.pid)");
  for (const name of KEEPALIVE_SETTINGS) await psqlInHost('pg1', pin === 'pin' ? `ALTER SYSTEM SET ${name} = 0` : `ALTER SYSTEM RESET ${name}`);
  await psqlInHost('pg1', 'SELECT pg_reload_conf()');
}

describe.skipIf(!inventory)('check-keepalives', () => {
  beforeAll(() => defaults('pin'));
  afterAll(() => defaults('unpin'));

  it('flags the defaults: --check reports (exit 7), a run without fix=true refuses (exit 8)', () => {
    const check = run('--check');
    expect(check.code, check.out).toBe(7);
    expect(check.out).toContain('pg1: would change: PostgreSQL tcp_keepalives_idle=0 (the kernel\'s 7200 s)');
    expect(check.out).toContain('pg1: would change: sshd ClientAliveInterval 0');
    expect(check.out).toContain('pg1: would change: net.ipv4.tcp_keepalive_time=7200');
    const refused = run();
    expect(refused.code).toBe(8);
    expect(refused.out).toMatch(/Fix with -e fix=true/);
  });

  it('fix=true sets all three, and the host is quiet afterwards', async () => {
    const fixed = run('-e', 'fix=true');
    expect(fixed.code, fixed.out).toBe(0);
    expect((await inHost('pg1', 'cat /proc/sys/net/ipv4/tcp_keepalive_time')).stdout.trim()).toBe('60');
    expect((await inHost('pg1', 'sshd -T | grep -i "^clientaliveinterval"')).stdout.trim()).toBe('clientaliveinterval 60');
    const pg = await psqlInHost('pg1', "SELECT string_agg(name || '=' || reset_val, ',' ORDER BY name) FROM pg_settings WHERE name LIKE 'tcp_keepalives_%'");
    expect(pg.stdout.trim()).toBe('tcp_keepalives_count=6,tcp_keepalives_idle=60,tcp_keepalives_interval=10');
    const quiet = run('--check');
    expect(quiet.code, quiet.out).toBe(0);
    expect(quiet.out).toContain('pg1: ok: idle connections are probed within 300 s');
  });
});
