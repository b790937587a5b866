/**
 * The partition fault over SSH, on any cluster: the primary drops all traffic to and from the
 * other nodes and the controller (so its PostgreSQL and SSH ports are unreachable from them), by
 * nftables or iptables rules where the host has them, by `ip route` blackholes where it has
 * neither. The cut cuts the drill off too, so the rules are installed *and removed* by a guard
 * that runs as a detached job on the host (src/core/detached.ts: its own session, PID and exit
 * recorded): it cuts a second after it starts, and restores the link at the deadline the drill
 * set, whatever happens to the controller or its SSH connection — or earlier, once the host's
 * PostgreSQL that ran at the cut is gone (the failover fenced it: the fault has been dealt with,
 * and a drill need not idle until the deadline). Pure: commands and the script.
 */
import { type Command, joinCommands, raw, sh } from '../shell/command.js';

export type CutTool = 'nft' | 'iptables' | 'blackhole';

const NFT_TABLE = 'runbook_drill';
const IPT_COMMENT = 'runbook-drill';

/** Which programs the primary has (`command -v`). */
export interface HostTools {
  nft: boolean;
  iptables: boolean;
  ip: boolean;
}

/** One line per tool found, for toolsOf(); as root, so that /usr/sbin is on the PATH. */
export const TOOLS_PROBE = raw('for t in nft iptables ip; do command -v "$t" >/dev/null 2>&1 && echo "$t"; done; true');

export function toolsOf(stdout: string): HostTools {
  const found = new Set(stdout.split('\n').map((l) => l.trim()));
  return { nft: found.has('nft'), iptables: found.has('iptables'), ip: found.has('ip') };
}

/** Firewall rules where there is a firewall, blackhole routes where there is none. */
export function chooseCutTool(t: HostTools): CutTool | undefined {
  if (t.nft) return 'nft';
  if (t.iptables) return 'iptables';
  if (t.ip) return 'blackhole';
  return undefined;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

export interface CutPlan {
  tool: CutTool;
  /** IPv4 addresses the primary stops talking to: the other nodes and the controller. */
  addresses: string[];
}

/** The cut and its undo. The undo removes only what the cut added and never fails half-way. */
export function cutCommands(plan: CutPlan): { install: Command; undo: Command } {
  const bad = plan.addresses.filter((a) => !IPV4.test(a));
  if (bad.length) throw new Error(`partition: not IPv4 addresses: ${bad.join(', ')}`);
  if (plan.addresses.length === 0) throw new Error('partition: no address to cut');
  switch (plan.tool) {
    case 'nft': {
      const set = plan.addresses.join(', ');
      const ruleset = `table inet ${NFT_TABLE} {\n chain input { type filter hook input priority -300; policy accept; ip saddr { ${set} } drop; }\n chain output { type filter hook output priority -300; policy accept; ip daddr { ${set} } drop; }\n}\n`;
      return {
        install: sh`printf '%s' ${ruleset} | nft -f -`,
        undo: sh`nft delete table inet ${NFT_TABLE} 2>/dev/null; true`,
      };
    }
    case 'iptables': {
      const rule = (chain: string, flag: string, a: string, op: string): Command =>
        sh`iptables -w ${op} ${chain} ${flag} ${a} -m comment --comment ${IPT_COMMENT} -j DROP`;
      return {
        install: joinCommands(plan.addresses.flatMap((a) => [rule('INPUT', '-s', a, '-I'), rule('OUTPUT', '-d', a, '-I')]), ' && '),
        undo: joinCommands([...plan.addresses.flatMap((a) => [rule('INPUT', '-s', a, '-D'), rule('OUTPUT', '-d', a, '-D')]), raw('true')], ' 2>/dev/null; '),
      };
    }
    case 'blackhole':
      return {
        install: joinCommands(plan.addresses.map((a) => sh`ip route replace blackhole ${`${a}/32`}`), ' && '),
        undo: joinCommands([...plan.addresses.map((a) => sh`ip route del blackhole ${`${a}/32`}`), raw('true')], ' 2>/dev/null; '),
      };
  }
}

/** Whether any of the cut's rules is still in place: prints "cut" if so. */
export function cutPresentCommand(plan: CutPlan): Command {
  switch (plan.tool) {
    case 'nft':
      return sh`if nft list table inet ${NFT_TABLE} >/dev/null 2>&1; then echo cut; fi`;
    case 'iptables':
      return sh`if iptables -w -S 2>/dev/null | grep -q -- ${IPT_COMMENT}; then echo cut; fi`;
    case 'blackhole':
      return joinCommands(
        plan.addresses.map((a) => sh`if ip route show type blackhole | awk -v a=${a} '$2 == a { f = 1 } END { exit !f }'; then echo cut; fi`),
        '; ',
      );
  }
}

export interface GuardSpec extends CutPlan {
  /** The detached job's id, unique per drill. */
  id: string;
  /** Epoch seconds at which the guard restores the link. */
  deadline: number;
  /** Seconds between the guard's start and the cut (so the SSH command that started it returns). */
  delaySec: number;
  /** The primary's postmaster.pid: the link comes back early once the server it names has stopped. */
  pidFile?: string;
}

/**
 * The guard: cut, wait for the deadline, undo, confirm. It ignores hangups and the signals a
 * dying SSH session sends; TERM (the job's own timeout, a cancel, a shutdown) still undoes, so no
 * cut outlives its guard. Its output (the job's log) says when it cut and when it restored, in
 * epoch seconds with ms.
 */
export function guardScript(g: GuardSpec): string {
  const { install, undo } = cutCommands(g);
  const present = cutPresentCommand(g);
  // Watched only when the server ran at the cut: a server already down restores nothing early.
  const pgUp = g.pidFile ? sh`[ -s ${g.pidFile} ] && kill -0 "$(head -n 1 ${g.pidFile})" 2>/dev/null`.toString() : 'false';
  return [
    `# runbook drill partition guard ${g.id}: cut by ${g.tool}, restored at ${new Date(g.deadline * 1000).toISOString()}${g.pidFile ? ' or once PostgreSQL stops' : ''}`,
    'stamp() { date +%s.%N | cut -c1-14; }',
    `pg_up() { ${pgUp}; }`,
    `restore() { ${undo.toString()}; if [ -n "$(${present.toString()})" ]; then echo "restore-failed $(stamp)"; else echo "restored $(stamp)"; fi; }`,
    "trap '' HUP INT PIPE",
    "trap 'restore; exit 0' TERM",
    'echo "guard $$ $(stamp)"',
    `sleep ${g.delaySec}`,
    `if ${install.toString()}; then echo "cut $(stamp)"; else echo "cut-failed $(stamp)"; restore; exit 1; fi`,
    'watch=0; if pg_up; then watch=1; fi',
    `while [ "$(date +%s)" -lt ${g.deadline} ]; do if [ "$watch" = 1 ] && ! pg_up; then echo "pg-stopped $(stamp)"; break; fi; sleep 1; done`,
    'restore',
    '',
  ].join('\n');
}

/** The guard as a detached job's command (no stdin, no secret: the job records it as is). */
export function guardCommand(g: GuardSpec): Command {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(g.id)) throw new Error(`guard id "${g.id}": letters, digits, . _ - only`);
  return sh`/bin/sh -c ${guardScript(g)}`;
}

/** What the guard's log says: when it cut, when it restored (epoch ms), or that it failed. */
export interface GuardLog {
  startedAt?: number;
  cutAt?: number;
  /** When the guard saw the server stopped (fenced) and restored the link before its deadline. */
  pgStoppedAt?: number;
  restoredAt?: number;
  failed?: string;
}

export function parseGuardLog(text: string): GuardLog {
  const out: GuardLog = {};
  for (const line of text.split('\n')) {
    const [word, a, b] = line.trim().split(/\s+/);
    const at = (v: string | undefined): number | undefined => (v && /^\d+(\.\d+)?$/.test(v) ? Math.round(Number(v) * 1000) : undefined);
    if (word === 'guard') {
      const t = at(b);
      if (t !== undefined) out.startedAt = t;
    } else if (word === 'cut') {
      const t = at(a);
      if (t !== undefined) out.cutAt = t;
    } else if (word === 'pg-stopped') {
      const t = at(a);
      if (t !== undefined) out.pgStoppedAt = t;
    } else if (word === 'restored') {
      const t = at(a);
      if (t !== undefined) out.restoredAt = t;
    } else if (word === 'cut-failed' || word === 'restore-failed') {
      out.failed = word;
    }
  }
  return out;
}

/** `src` of `ip -o route get ADDR` on a peer: the address the primary sees it come from. */
export function routeSource(stdout: string): string | undefined {
  const m = /\bsrc\s+(\S+)/.exec(stdout);
  return m && IPV4.test(m[1]!) ? m[1] : undefined;
}

export function isIpv4(a: string): boolean {
  return IPV4.test(a);
}
