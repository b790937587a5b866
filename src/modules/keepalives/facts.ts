/**
 * Keepalive settings that decide whether an idle TCP connection survives a router's idle timeout
 * (seed 001: a 900 s outage): the kernel's defaults in the host's network namespace, sshd's
 * ClientAliveInterval, PostgreSQL's tcp_keepalives_*.
 */
import { fact } from '../../engine/define.js';
import type { Fact } from '../../engine/types.js';
import { raw, sh } from '../../shell/index.js';
import { parseKeyValues } from '../../core/key-values.js';

export interface KernelKeepalive {
  /** net.ipv4.tcp_keepalive_time: idle seconds before the first probe (default 7200). */
  time: number;
  intvl: number;
  probes: number;
}

export interface SshdKeepalive {
  clientAliveInterval: number;
  clientAliveCountMax: number;
  /** sshd's TCPKeepAlive (kernel keepalives, at the kernel's idle time). */
  tcpKeepAlive: boolean;
  /** From /run/sshd.pid, for the reload without an init system. */
  pid?: number;
}

export interface PgKeepalive {
  /** 0 means "the kernel's default". */
  idle: number;
  interval: number;
  count: number;
}

export interface KeepaliveFacts {
  kernel: KernelKeepalive;
  /** undefined: no sshd on this host. */
  sshd?: SshdKeepalive;
  /** undefined: no PostgreSQL answering on this host. */
  pg?: PgKeepalive;
  init: 'systemd' | 'none';
}

const num = (kv: Map<string, string>, key: string): number | undefined => {
  const v = kv.get(key);
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
};

export function parseKeepalives(stdout: string): KeepaliveFacts {
  const kv = parseKeyValues(stdout);
  const kernel = { time: num(kv, 'kernel.time') ?? 7200, intvl: num(kv, 'kernel.intvl') ?? 75, probes: num(kv, 'kernel.probes') ?? 9 };
  const cai = num(kv, 'sshd.clientaliveinterval');
  const sshd: SshdKeepalive | undefined =
    cai === undefined
      ? undefined
      : {
          clientAliveInterval: cai,
          clientAliveCountMax: num(kv, 'sshd.clientalivecountmax') ?? 3,
          tcpKeepAlive: kv.get('sshd.tcpkeepalive') !== 'no',
          ...(num(kv, 'sshd.pid') !== undefined ? { pid: num(kv, 'sshd.pid')! } : {}),
        };
  const idle = num(kv, 'pg.tcp_keepalives_idle');
  const pg: PgKeepalive | undefined =
    idle === undefined ? undefined : { idle, interval: num(kv, 'pg.tcp_keepalives_interval') ?? 0, count: num(kv, 'pg.tcp_keepalives_count') ?? 0 };
  return { kernel, ...(sshd ? { sshd } : {}), ...(pg ? { pg } : {}), init: kv.get('init') === 'systemd' ? 'systemd' : 'none' };
}

// PostgreSQL: reset_val, not setting. Over the Unix socket psql uses here, SHOW and pg_settings.setting
// report 0 for tcp_keepalives_* whatever is configured (they read the socket); reset_val is the value
// the server runs with for TCP sessions.
const PG_QUERY = `SELECT 'pg.' || name || '=' || reset_val FROM pg_settings WHERE name LIKE 'tcp_keepalives_%'`;

/** Read as root: sshd -T needs it, and psql runs through runuser when a postgres user exists. */
export const keepaliveFact: Fact<KeepaliveFacts> = fact({
  name: 'keepalives',
  become: true,
  command: sh`q=${PG_QUERY}; ${raw(
    [
      `for k in time intvl probes; do echo "kernel.$k=$(cat /proc/sys/net/ipv4/tcp_keepalive_$k)"; done`,
      `PATH="$PATH:/usr/sbin:/sbin"`,
      `if command -v sshd >/dev/null; then sshd -T 2>/dev/null | awk '$1 ~ /^(clientaliveinterval|clientalivecountmax|tcpkeepalive)$/ { print "sshd." $1 "=" $2 }'; echo "sshd.pid=$(cat /run/sshd.pid 2>/dev/null)"; fi`,
      `if id postgres >/dev/null 2>&1 && command -v psql >/dev/null; then printf '%s\\n' "$q" | (cd / && PGCONNECT_TIMEOUT=3 runuser -u postgres -- psql -XAtq -d postgres 2>/dev/null); fi`,
      `[ -d /run/systemd/system ] && echo init=systemd || echo init=none`,
    ].join('\n'),
  )}`,
  parse: (r) => parseKeepalives(r.stdout),
});
