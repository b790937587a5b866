/**
 * Findings: where an idle connection would outlive a router's idle timeout unnoticed (seed 001:
 * no keepalive before the router drops it, then tcp_retries2 = 900 s of a hung client). And the
 * commands that fix each finding. Pure: facts in, findings and commands out.
 */
import type { KeepaliveFacts } from './facts.js';
import { editLine, type LineArgs } from '../../core/file-ops.js';
import { sh, sql, type Command } from '../../shell/index.js';

export interface KeepaliveTargets {
  /** The longest acceptable idle time before the first keepalive (below any router's timeout). */
  maxIdle: number;
  /** What a fix sets: idle seconds, probe interval, probe count. */
  idle: number;
  interval: number;
  count: number;
}

export type Component = 'postgresql' | 'sshd' | 'kernel';

export interface Finding {
  component: Component;
  setting: string;
  value: number;
  /** Seconds an idle connection stays silent, after defaults are resolved (Infinity: never probed). */
  effectiveIdle: number;
  message: string;
}

export function targetProblems(t: KeepaliveTargets): string[] {
  const problems: string[] = [];
  for (const [k, v] of Object.entries(t)) if (!Number.isInteger(v) || v < 1) problems.push(`${k} must be a whole number of seconds ≥ 1, got ${v}`);
  if (t.idle > t.maxIdle) problems.push(`idle (${t.idle}) must not exceed maxIdle (${t.maxIdle}): the fix would itself be a finding`);
  return problems;
}

const secs = (n: number): string => (Number.isFinite(n) ? `${n} s` : 'never');

export function keepaliveFindings(f: KeepaliveFacts, t: KeepaliveTargets): Finding[] {
  const out: Finding[] = [];
  const limit = `before the first probe (limit ${t.maxIdle} s)`;
  if (f.kernel.time > t.maxIdle)
    out.push({
      component: 'kernel',
      setting: 'net.ipv4.tcp_keepalive_time',
      value: f.kernel.time,
      effectiveIdle: f.kernel.time,
      message: `net.ipv4.tcp_keepalive_time=${f.kernel.time}: connections from this host (libpq, ssh) stay idle ${f.kernel.time} s ${limit}`,
    });
  if (f.pg) {
    const eff = f.pg.idle === 0 ? f.kernel.time : f.pg.idle;
    if (eff > t.maxIdle)
      out.push({
        component: 'postgresql',
        setting: 'tcp_keepalives_idle',
        value: f.pg.idle,
        effectiveIdle: eff,
        message: `PostgreSQL tcp_keepalives_idle=${f.pg.idle}${f.pg.idle === 0 ? ` (the kernel's ${f.kernel.time} s)` : ''}: idle ${eff} s ${limit}`,
      });
  }
  if (f.sshd) {
    const cai = f.sshd.clientAliveInterval;
    // Without ClientAliveInterval only TCPKeepAlive probes, at the kernel's idle time.
    const eff = cai > 0 ? cai : f.sshd.tcpKeepAlive ? f.kernel.time : Infinity;
    if (eff > t.maxIdle)
      out.push({
        component: 'sshd',
        setting: 'ClientAliveInterval',
        value: cai,
        effectiveIdle: eff,
        message: `sshd ClientAliveInterval ${cai}${cai === 0 ? ` (${f.sshd.tcpKeepAlive ? `TCPKeepAlive only, at the kernel's ${f.kernel.time} s` : 'and TCPKeepAlive no: never probed'})` : ''}: idle ${secs(eff)} ${limit}`,
      });
  }
  return out;
}

// ---------------------------------------------------------------- fixes

/**
 * ALTER SYSTEM (postgresql.auto.conf wins over every other file) and a reload: these are sighup
 * settings. As postgres from a root step; the SQL on stdin.
 */
export function pgFixCommand(t: KeepaliveTargets): Command {
  const n = (v: number) => sql.raw(String(Math.trunc(v)));
  return sh`cd / && runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d postgres`.withStdin(
    sql`ALTER SYSTEM SET tcp_keepalives_idle = ${n(t.idle)};
ALTER SYSTEM SET tcp_keepalives_interval = ${n(t.interval)};
ALTER SYSTEM SET tcp_keepalives_count = ${n(t.count)};
SELECT pg_reload_conf();
`,
  );
}

export const SYSCTL_FILE = '/etc/sysctl.d/90-runbook-keepalive.conf';

/** The persistent sysctl file; applied now with `sysctl -p FILE` (in the host's own netns). */
export function renderSysctl(t: KeepaliveTargets): string {
  return `# Managed by runbook (check-keepalives): probe idle connections before a router drops them.
net.ipv4.tcp_keepalive_time = ${t.idle}
net.ipv4.tcp_keepalive_intvl = ${t.interval}
net.ipv4.tcp_keepalive_probes = ${t.count}
`;
}

export const SSHD_CONFIG = '/etc/ssh/sshd_config';

/**
 * sshd reads the first value it meets: the first existing (or commented) line of the global section
 * is replaced in place; a missing one goes before the first Match block, where it applies globally.
 */
export function sshdLines(t: KeepaliveTargets): LineArgs[] {
  const at = { path: SSHD_CONFIG, first: true, before: /^\s*Match\s/i };
  return [
    { ...at, regexp: /^#?\s*ClientAliveInterval\b/i, line: `ClientAliveInterval ${t.idle}` },
    { ...at, regexp: /^#?\s*ClientAliveCountMax\b/i, line: `ClientAliveCountMax ${t.count}` },
  ];
}

/** sshd_config with each directive set (core's line editor, one directive after the other). */
export function sshdConfigWith(content: string, t: KeepaliveTargets): string {
  return sshdLines(t).reduce((text, a) => {
    const e = editLine(text, a);
    return 'noop' in e ? text : e.text;
  }, content);
}

/** Validate the new config, then reload: systemd's unit, else SIGHUP to the pid in /run/sshd.pid. */
export function sshdReload(init: KeepaliveFacts['init'], pid: number | undefined): Command[] {
  const check = sh`sshd -t`;
  if (init === 'systemd') return [check, sh`systemctl reload ssh || systemctl reload sshd`];
  return pid ? [check, sh`kill -HUP ${pid}`] : [check];
}

export const byComponent = (findings: Finding[], c: Component): Finding | undefined => findings.find((f) => f.component === c);
