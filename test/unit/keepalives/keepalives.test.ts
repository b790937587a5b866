import { describe, expect, it } from 'vitest';
import { parseKeepalives } from '../../../src/modules/keepalives/facts.js';
import { keepaliveFindings, pgFixCommand, renderSysctl, sshdConfigWith, sshdLines, sshdReload, targetProblems } from '../../../src/modules/keepalives/keepalives.js';

const targets = { maxIdle: 300, idle: 60, interval: 10, count: 6 };

// What a fresh Debian host with PostgreSQL and sshd answers (kernel and daemon defaults).
const defaults = `kernel.time=7200
kernel.intvl=75
kernel.probes=9
sshd.clientaliveinterval=0
sshd.clientalivecountmax=3
sshd.tcpkeepalive=yes
sshd.pid=41
pg.tcp_keepalives_count=0
pg.tcp_keepalives_idle=0
pg.tcp_keepalives_interval=0
init=none
`;

describe('keepalive facts', () => {
  it('parses kernel, sshd and PostgreSQL values', () => {
    expect(parseKeepalives(defaults)).toEqual({
      kernel: { time: 7200, intvl: 75, probes: 9 },
      sshd: { clientAliveInterval: 0, clientAliveCountMax: 3, tcpKeepAlive: true, pid: 41 },
      pg: { idle: 0, interval: 0, count: 0 },
      init: 'none',
    });
  });

  it('a host without sshd or PostgreSQL has neither', () => {
    expect(parseKeepalives('kernel.time=60\nkernel.intvl=10\nkernel.probes=6\ninit=systemd\n')).toEqual({ kernel: { time: 60, intvl: 10, probes: 6 }, init: 'systemd' });
  });
});

describe('findings', () => {
  it('defaults: all three would let a router drop idle connections silently', () => {
    const f = keepaliveFindings(parseKeepalives(defaults), targets);
    expect(f.map((x) => [x.component, x.setting, x.effectiveIdle])).toEqual([
      ['kernel', 'net.ipv4.tcp_keepalive_time', 7200],
      ['postgresql', 'tcp_keepalives_idle', 7200],
      ['sshd', 'ClientAliveInterval', 7200],
    ]);
    expect(f[0]!.message).toBe('net.ipv4.tcp_keepalive_time=7200: connections from this host (libpq, ssh) stay idle 7200 s before the first probe (limit 300 s)');
    expect(f[1]!.message).toBe("PostgreSQL tcp_keepalives_idle=0 (the kernel's 7200 s): idle 7200 s before the first probe (limit 300 s)");
    expect(f[2]!.message).toBe("sshd ClientAliveInterval 0 (TCPKeepAlive only, at the kernel's 7200 s): idle 7200 s before the first probe (limit 300 s)");
  });

  it('a PostgreSQL value of 0 is fine when the kernel default is short; quiet after a fix', () => {
    const fixed = parseKeepalives(defaults.replace('kernel.time=7200', 'kernel.time=60').replace('sshd.clientaliveinterval=0', 'sshd.clientaliveinterval=60'));
    expect(keepaliveFindings(fixed, targets)).toEqual([]);
  });

  it('sshd without TCPKeepAlive and without ClientAliveInterval never probes', () => {
    const f = keepaliveFindings(parseKeepalives(defaults.replace('sshd.tcpkeepalive=yes', 'sshd.tcpkeepalive=no').replace('kernel.time=7200', 'kernel.time=60')), targets);
    expect(f).toEqual([expect.objectContaining({ component: 'sshd', effectiveIdle: Infinity, message: expect.stringContaining('never probed): idle never before') })]);
  });

  it('an explicit PostgreSQL idle above the limit is flagged even with a short kernel default', () => {
    const f = keepaliveFindings(parseKeepalives(defaults.replace('kernel.time=7200', 'kernel.time=60').replace('pg.tcp_keepalives_idle=0', 'pg.tcp_keepalives_idle=900')), targets);
    expect(f.map((x) => `${x.component}:${x.value}`)).toEqual(['postgresql:900']);
  });
});

describe('fixes', () => {
  it('PostgreSQL: ALTER SYSTEM for the three settings, then a reload', () => {
    const c = pgFixCommand(targets);
    // The SQL goes on stdin: nothing but psql's own flags on its command line.
    expect(c.toString().split('\n')[0]).toBe("cd / && runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d postgres <<'STDIN'");
    expect(c.toString()).not.toContain(' -c ');
    expect(c.stdin?.map((p) => ('text' in p ? p.text : '')).join('')).toBe(
      'ALTER SYSTEM SET tcp_keepalives_idle = 60;\nALTER SYSTEM SET tcp_keepalives_interval = 10;\nALTER SYSTEM SET tcp_keepalives_count = 6;\nSELECT pg_reload_conf();\n',
    );
  });

  it('sysctl file and sshd lines carry the targets', () => {
    expect(renderSysctl(targets)).toMatch(/net\.ipv4\.tcp_keepalive_time = 60\nnet\.ipv4\.tcp_keepalive_intvl = 10\nnet\.ipv4\.tcp_keepalive_probes = 6\n$/);
    const [interval, count] = sshdLines(targets);
    expect(interval!.line).toBe('ClientAliveInterval 60');
    expect(interval!.regexp!.test('#ClientAliveInterval 0')).toBe(true);
    expect(count!.line).toBe('ClientAliveCountMax 6');
  });

  it('sshd is validated before the reload: SIGHUP to its pid without systemd', () => {
    expect(sshdReload('none', 41).map(String)).toEqual(['sshd -t', 'kill -HUP 41']);
    expect(sshdReload('systemd', undefined).map(String)).toEqual(['sshd -t', 'systemctl reload ssh || systemctl reload sshd']);
  });

  it('sshd directives: first match replaced, missing ones go before the first Match block', () => {
    const conf = '#ClientAliveInterval 0\nPort 22\nMatch User backup\n  ClientAliveCountMax 1\n';
    expect(sshdConfigWith(conf, targets)).toBe('ClientAliveInterval 60\nPort 22\nClientAliveCountMax 6\nMatch User backup\n  ClientAliveCountMax 1\n');
    expect(sshdConfigWith('Port 22', targets)).toBe('Port 22\nClientAliveInterval 60\nClientAliveCountMax 6\n');
    // The first of two global lines is the one sshd reads: that one is replaced.
    expect(sshdConfigWith('ClientAliveInterval 0\nClientAliveInterval 5\nClientAliveCountMax 6\n', targets)).toBe('ClientAliveInterval 60\nClientAliveInterval 5\nClientAliveCountMax 6\n');
  });

  it('targets are checked', () => {
    expect(targetProblems(targets)).toEqual([]);
    expect(targetProblems({ ...targets, idle: 600 })).toEqual(['idle (600) must not exceed maxIdle (300): the fix would itself be a finding']);
    expect(targetProblems({ ...targets, count: 0 })).toEqual(['count must be a whole number of seconds ≥ 1, got 0']);
  });
});
