/**
 * The service VIP that follows the writable PostgreSQL node: keepalived.conf and its scripts
 * (pure renderers), the analysis of who holds the VIP, and reusable steps that failover and
 * failback include to prove the VIP followed the role (or that it is held twice).
 *
 * Including the steps (failover / failback), after the promotion step:
 *   import { vipSteps } from '../../src/modules/vip/vip.js';
 *   steps: [ …, phase('vip', vipSteps<P>({ nodes: 'postgres', vip: (p) => p.vip })) ]
 * - `vip` returning undefined skips both steps ("no VIP configured"): runbooks work without one.
 *   A `vip` param is filled from the inventory var of the same name.
 * - Both steps run once and read every node: a node that cannot be reached fails them, since
 *   "the VIP is nowhere else" cannot be proven. To leave out a fenced, unreachable node, pass
 *   `nodes: (ctx) => [...names]` instead of a pattern.
 * - `vip-no-duplicate` blocks at once on two holders; `vip-follows-primary` waits up to
 *   `timeoutMs` (20 s: a loaded host's checks and a reload of keepalived take seconds) for
 *   keepalived to move it, then fails naming where the VIP is.
 * - Both carry the tag `vip-verify` (`--tags vip-verify` runs only them); `idPrefix` keeps ids
 *   unique when a runbook includes them twice (before and after a switchover).
 */
import { change, noop, onHost, stepsFor } from '../../engine/define.js';
import type { Assertion, FactMap, Plan, RunContext, StepContext, StepDef } from '../../engine/types.js';
import { KEEPALIVED_PID_FILE, NOTIFY_LOG, RELEASE_FILE, addressesFact, keepalivedFact, pgAnswersFact, pgRoleFact, type InterfaceAddress, type KeepalivedFacts, type PgRole } from './facts.js';
import { sh, type Command } from '../../shell/index.js';
import { keepalivedScript, keepalivedWord } from '../../shell/config-text.js';
import type { ServiceArgs } from '../../core/service.js';
import { PSQL_BIN } from '../postgres/facts.js';
import type { SwitchoverRouting } from '../postgres/steps/switchover.js';
import { execOn } from '../../engine/actions.js';

// ---------------------------------------------------------------- keepalived.conf

export const KEEPALIVED_CONF = '/etc/keepalived/keepalived.conf';
export const CHECK_SCRIPT = '/etc/keepalived/runbook-pg-writable.sh';
export const NOTIFY_SCRIPT = '/etc/keepalived/runbook-notify.sh';

export interface KeepalivedSpec {
  /** This node's inventory name (router_id, for logs). */
  node: string;
  interface: string;
  /** This node's address: the unicast source. */
  sourceIp: string;
  /** The other nodes' addresses: unicast peers (no multicast). */
  peers: string[];
  vip: string;
  prefix: number;
  virtualRouterId: number;
  priority: number;
  /** Seconds between adverts; VRRPv3 allows fractions, so failover stays well under 5 s. */
  advertInt: number;
}

/**
 * Both nodes BACKUP + nopreempt: no node grabs the VIP back on its own. The track script puts a
 * node that is not the writable PostgreSQL into FAULT, so only the primary can hold the VIP; the
 * release flag (RELEASE_FILE) lets a switchover take it off the old primary at once.
 */
export function renderKeepalivedConf(s: KeepalivedSpec): string {
  // Every inventory value is a keepalived word (refused otherwise: keepalived has no quoting for it).
  const w = (source: string, v: string) => keepalivedWord(source, v);
  return `# Managed by runbook (setup-vip); edits are overwritten.
global_defs {
    router_id ${w('router_id (inventory host name)', s.node)}
    vrrp_version 3
    enable_script_security
    script_user root
}

vrrp_script runbook_pg_writable {
    script ${keepalivedScript('vrrp_script', [CHECK_SCRIPT])}
    interval ${CHECK_HYSTERESIS.interval}
    timeout ${CHECK_HYSTERESIS.timeout}
    fall ${CHECK_HYSTERESIS.fall}
    rise ${CHECK_HYSTERESIS.rise}
}

track_file runbook_pg_release {
    file "${RELEASE_FILE}"
    weight 0
    init_file 0
}

vrrp_instance runbook_pg_vip {
    state BACKUP
    nopreempt
    interface ${w('interface', s.interface)}
    virtual_router_id ${s.virtualRouterId}
    priority ${s.priority}
    advert_int ${s.advertInt}
    unicast_src_ip ${w('unicast_src_ip (ansible_host)', s.sourceIp)}
    unicast_peer {
${s.peers.map((p) => `        ${w('unicast_peer (ansible_host)', p)}`).join('\n')}
    }
    virtual_ipaddress {
        ${w('vip', s.vip)}/${s.prefix} dev ${w('interface', s.interface)}
    }
    track_script {
        runbook_pg_writable
    }
    track_file {
        runbook_pg_release
    }
    notify ${keepalivedScript('notify', [NOTIFY_SCRIPT])}
}
`;
}

/**
 * Hysteresis of the writable check: one slow or failed check is not enough to drop the VIP from
 * a healthy primary (fall 3: three in a row, ~3 s). One pass is enough to take it (rise 1): the
 * check passes only on a writable server, so a pass is never a false alarm, and a second pass
 * only delayed the VIP by a check interval after every promotion (the switchover's outage is
 * the VIP's wait). A check that does not end in 8 s is killed and counts as failed: psql alone
 * takes 1-2 s on a loaded host, and keepalived drops a node that has only just risen on its first
 * timed-out check, so 2 s made a healthy primary flap under load. A primary that is really gone
 * refuses the connection at once, so it still loses the VIP in about 3-4 s and the promoted
 * standby gets it within a check interval plus keepalived's master-down wait (3 adverts) after
 * its promotion; a hung one fails its checks after 5 s each (PGCONNECT_TIMEOUT: room for a
 * connection to a loaded host, under the script's 8 s).
 */
export const CHECK_HYSTERESIS = { interval: 1, timeout: 8, fall: 3, rise: 1 } as const;

/**
 * Exit 0 only on a writable PostgreSQL. keepalived runs it as root and it drops to postgres
 * itself: a `user postgres` line in vrrp_script makes `keepalived -t` (2.2.7) kill itself.
 */
export function renderCheckScript(port: number): string {
  return `#!/bin/sh
# Managed by runbook (setup-vip): exit 0 only when the local PostgreSQL is writable,
# so keepalived lets only the primary hold the VIP.
cd /
# setpriv, not runuser: no PAM session per check (keepalived runs this every second, and under
# load the PAM stack was most of its cost). A refused or missing socket fails at once; the
# connect timeout only bounds a hung server, below keepalived's own timeout for the script.
[ "$(echo 'SELECT NOT pg_is_in_recovery()' | PGCONNECT_TIMEOUT=5 setpriv --reuid=postgres --regid=postgres --init-groups ${PSQL_BIN} -XAtq -p ${port} -d postgres 2>/dev/null)" = t ]
`;
}

/** Notify only logs: promotion is a fenced, deliberate step (failover), never keepalived's. */
export const NOTIFY_SCRIPT_TEXT = `#!/bin/sh
# Managed by runbook (setup-vip): log VRRP state changes; never act on them.
# Arguments from keepalived: TYPE NAME STATE PRIORITY
printf '%s %s %s %s %s\\n' "$(date '+%Y-%m-%dT%H:%M:%S%z')" "$1" "$2" "$3" "$4" >> ${NOTIFY_LOG}
command -v logger >/dev/null 2>&1 && logger -t runbook-vip "$1 $2 is now $3" || true
`;

/** The interface and prefix that carry this node's address (where the VIP goes too). */
export function interfaceFor(address: string, addrs: InterfaceAddress[]): InterfaceAddress | undefined {
  return addrs.find((a) => a.address === address);
}

/** A distinct priority per node, in inventory order, so a simultaneous start has one winner. */
export function priorityFor(node: string, nodes: string[]): number {
  return 150 - 10 * Math.max(0, nodes.indexOf(node));
}

// ---------------------------------------------------------------- who holds the VIP

export interface NodeView {
  host: string;
  holdsVip: boolean;
  role: PgRole;
}

export type VipHolders = { kind: 'none' } | { kind: 'one'; holder: NodeView } | { kind: 'duplicate'; holders: NodeView[] };

export function vipHolders(nodes: NodeView[]): VipHolders {
  const holders = nodes.filter((n) => n.holdsVip);
  if (holders.length === 0) return { kind: 'none' };
  if (holders.length === 1) return { kind: 'one', holder: holders[0]! };
  return { kind: 'duplicate', holders };
}

/** What is wrong with the VIP, or undefined when exactly one node, the only primary, holds it. */
export function vipProblem(vip: string, nodes: NodeView[]): string | undefined {
  const primaries = nodes.filter((n) => n.role === 'primary').map((n) => n.host);
  const h = vipHolders(nodes);
  if (h.kind === 'duplicate')
    return `VIP ${vip} is held by ${h.holders.map((n) => `${n.host} (${n.role})`).join(' and ')} at once: a duplicate VIP, clients may reach either node; stop keepalived on the wrong node or remove the address there`;
  if (primaries.length > 1) return `more than one writable node (${primaries.join(', ')}): split brain, the VIP cannot follow "the" primary`;
  if (h.kind === 'none') return `no node holds VIP ${vip}${primaries.length ? ` (primary: ${primaries[0]})` : ' and no node is writable'}`;
  if (h.holder.role !== 'primary') return `VIP ${vip} is on ${h.holder.host}, which is ${h.holder.role === 'down' ? 'not answering' : 'a standby'}${primaries.length ? `; the primary is ${primaries[0]}` : ''}`;
  return undefined;
}

// ---------------------------------------------------------------- reusable steps

export interface VipStepOptions<P> {
  /** The database nodes: a pattern, or names from the run (e.g. leave out a fenced, unreachable node). */
  nodes: string | ((ctx: RunContext<P>) => string[]);
  /** The VIP; undefined skips the steps. */
  vip: (params: P) => string | undefined;
  /** How long the VIP may take to follow the primary (default 5 s). */
  timeoutMs?: number;
  /** PostgreSQL port for the "answers on the VIP" check (default 5432). */
  port?: (params: P) => number;
  /** Prefix for step ids when a runbook includes the steps twice. */
  idPrefix?: string;
}

interface VipFacts {
  [key: string]: InterfaceAddress[] | PgRole | KeepalivedFacts | true | string;
}

function nodeNames<P>(o: VipStepOptions<P>, ctx: RunContext<P>): string[] {
  return typeof o.nodes === 'string' ? ctx.select(o.nodes).map((h) => h.name) : o.nodes(ctx);
}

/** Facts for the VIP picture: addresses and role of every node, pg_isready on the VIP from here. */
function vipFactMap<P>(o: VipStepOptions<P>, ctx: StepContext<P>, vip: string): FactMap<VipFacts> {
  const map: FactMap<VipFacts> = { answers: pgAnswersFact(vip, o.port?.(ctx.params)) } as FactMap<VipFacts>;
  for (const n of nodeNames(o, ctx)) {
    map[`addr:${n}`] = onHost(n, addressesFact);
    map[`role:${n}`] = onHost(n, pgRoleFact);
    map[`keepalived:${n}`] = onHost(n, keepalivedFact);
  }
  return map;
}

export function nodeViews(vip: string, facts: VipFacts): NodeView[] {
  // Sorted: facts arrive in completion order, messages should not.
  return Object.keys(facts)
    .filter((k) => k.startsWith('addr:'))
    .sort()
    .map((k) => {
      const host = k.slice(5);
      return { host, holdsVip: (facts[k] as InterfaceAddress[]).some((a) => a.address === vip), role: facts[`role:${host}`] as PgRole };
    });
}

/**
 * Why the VIP is not ours to check, if it is not: an inventory may name a service address that
 * keepalived does not manage on these nodes (setup-vip never ran). Then there is nothing to follow.
 */
export function unmanagedVip(vip: string, facts: VipFacts): string | undefined {
  const running = Object.keys(facts).some((k) => k.startsWith('keepalived:') && (facts[k] as KeepalivedFacts).pid !== undefined);
  if (running || nodeViews(vip, facts).some((v) => v.holdsVip)) return undefined;
  return `VIP ${vip} is not managed on these nodes: keepalived runs on none of them and none holds it (run setup-vip)`;
}

/**
 * keepalived's own view, as evidence when the VIP is not where it should be: each node's last
 * VRRP state from the notify log ("pg3 FAULT since …" says its writable check keeps failing).
 */
export function vrrpStates(facts: VipFacts): string {
  const states = Object.keys(facts)
    .filter((k) => k.startsWith('keepalived:'))
    .sort()
    .map((k) => {
      const kf = facts[k] as KeepalivedFacts;
      const host = k.slice('keepalived:'.length);
      if (kf.pid === undefined) return `${host} not running`;
      const released = kf.released ? ` (released: ${RELEASE_FILE} is set, a switchover did not end; setup-vip clears it)` : '';
      return `${host} ${kf.vrrp ? `${kf.vrrp.state} since ${kf.vrrp.at}` : 'no state logged'}${released}`;
    });
  return states.length ? `; keepalived: ${states.join(', ')}` : '';
}

/** The full check: one holder, the only primary, and PostgreSQL answering on the VIP. */
export function vipCheck(vip: string, facts: VipFacts): { ok: boolean; message: string } {
  const views = nodeViews(vip, facts);
  const problem = vipProblem(vip, views);
  if (problem) return { ok: false, message: `${problem}${vrrpStates(facts)}` };
  if (facts.answers !== true) return { ok: false, message: `PostgreSQL does not answer on ${vip}: ${String(facts.answers)}` };
  const holder = views.find((v) => v.holdsVip)!;
  return { ok: true, message: `VIP ${vip} is on ${holder.host} only, the primary; PostgreSQL answers on it` };
}

/**
 * Steps for failover / failback / setup-vip: (1) no duplicate VIP right now (blocked at once:
 * two holders is never a transition keepalived makes); (2) the VIP follows the primary within
 * the timeout, polled, with PostgreSQL answering on it.
 */
export function vipSteps<P>(o: VipStepOptions<P>): Array<StepDef<P, VipFacts>> {
  const { step } = stepsFor<P>();
  const id = (s: string) => `${o.idPrefix ?? ''}${s}`;
  const timeoutMs = o.timeoutMs ?? 20_000;
  const skip = (ctx: StepContext<P>): true | string => (o.vip(ctx.params) ? true : 'no VIP configured');
  const on = typeof o.nodes === 'string' ? o.nodes : (ctx: RunContext<P>) => (o.nodes as (c: RunContext<P>) => string[])(ctx);

  /** A VIP step: every node's view gathered, and nothing to check when keepalived manages no VIP here. */
  const vipStep = (suffix: string, title: string, plan: (vip: string, facts: VipFacts) => Plan) => ({
    id: id(suffix),
    title,
    on,
    runOnce: true,
    tags: ['vip', 'vip-verify'],
    when: skip,
    gather: (ctx: StepContext<P>) => vipFactMap(o, ctx, o.vip(ctx.params)!),
    plan: (facts: VipFacts, ctx: StepContext<P>): Plan => {
      const vip = o.vip(ctx.params)!;
      const unmanaged = unmanagedVip(vip, facts);
      return unmanaged ? noop(unmanaged) : plan(vip, facts);
    },
  });

  const noDuplicate = step<VipFacts>(
    vipStep('vip-no-duplicate', 'The VIP is not held by two nodes', (vip, facts) => {
      const h = vipHolders(nodeViews(vip, facts));
      if (h.kind === 'duplicate') return { kind: 'blocked', reason: vipProblem(vip, nodeViews(vip, facts))! };
      return noop(h.kind === 'one' ? `VIP ${vip} is held by ${h.holder.host} only` : `no node holds VIP ${vip}`);
    }),
  );

  const follows = step<VipFacts>({
    ...vipStep('vip-follows-primary', `The VIP follows the primary (within ${timeoutMs / 1000} s)`, (vip, facts) => {
      const r = vipCheck(vip, facts);
      if (r.ok) return noop(r.message);
      // Nothing to run: keepalived moves the VIP; applying means waiting for it (verify polls).
      return change(`wait up to ${timeoutMs / 1000} s for the VIP to follow the primary (now: ${r.message})`, []);
    }),
    verify: {
      converge: false,
      assertions: (ctx): Assertion<P>[] => [
        {
          name: `VIP ${o.vip(ctx.params)} on the primary only`,
          intervalMs: 200,
          timeoutMs,
          check: async (actx) => {
            const vip = o.vip(actx.params)!;
            const map = vipFactMap(o, actx, vip) as Record<string, Parameters<typeof actx.read>[0]>;
            const entries = await Promise.all(Object.entries(map).map(async ([k, f]) => [k, await actx.read(f)] as const));
            const r = vipCheck(vip, Object.fromEntries(entries) as VipFacts);
            return r.ok ? true : r.message;
          },
        },
      ],
    },
  });
  return [noDuplicate, follows];
}

// ---------------------------------------------------------------- keepalived as a service

/** keepalived as a plain process (no init system: the lab) or its systemd unit. */
export function keepalivedService(): ServiceArgs {
  const status = sh`p=$(cat ${KEEPALIVED_PID_FILE} 2>/dev/null) && [ "$(cat /proc/$p/comm 2>/dev/null)" = keepalived ]`;
  const log = '/var/log/keepalived.log';
  return {
    name: 'keepalived',
    state: 'running',
    enabled: true,
    commands: {
      // -n: stay in the foreground under setsid; -P: VRRP only; -l: log to the console (our log file).
      // Backgrounded, so wait (≤ 5 s) for its pid file: the step's verify re-reads the status at once.
      start: sh`setsid keepalived -n -l -P -f ${KEEPALIVED_CONF} -p ${KEEPALIVED_PID_FILE} -r /run/keepalived-vrrp.pid >>${log} 2>&1 </dev/null & for i in $(seq 50); do { ${status}; } && break; sleep 0.1; done; { ${status}; } || { tail -n 5 ${log} >&2; false; }`,
      stop: sh`kill $(cat ${KEEPALIVED_PID_FILE})`,
      status,
    },
  };
}

/**
 * The release flag set (1: take the VIP off this node now, e.g. right before a planned stop) or
 * cleared (0: it may hold the VIP again when its check passes). A node without the flag (setup-vip
 * never ran there, or ran before the flag existed) is left alone: its VIP then leaves after `fall`
 * failed checks, as before.
 */
export function releaseFlagCommand(released: boolean): Command {
  return sh`if [ -f ${RELEASE_FILE} ]; then echo ${released ? '1' : '0'} > ${RELEASE_FILE}; fi`;
}

/**
 * The switchover's routing through the VIP: the release flag set on the old primary right before
 * its stop (the VIP leaves at once; the new primary takes it once promoted, after its next check
 * and ~3 adverts), and cleared after the switchover or before a recovery restarts the old primary.
 */
export function vipSwitchoverRouting(vip: string): SwitchoverRouting {
  return {
    release: (old) => [execOn(old.name, releaseFlagCommand(true), { become: true, note: `VIP ${vip} off ${old.name} now (release flag), not after its failed checks` })],
    restore: (old) => [execOn(old.name, releaseFlagCommand(false), { become: true, note: `${old.name} may hold VIP ${vip} again when its check passes` })],
  };
}

/** SIGHUP makes keepalived re-read its config (VIPs it holds stay up). */
export function keepalivedReload(k: KeepalivedFacts): Command | undefined {
  if (k.init === 'systemd') return sh`systemctl reload keepalived`;
  return k.pid ? sh`kill -HUP ${k.pid}` : undefined;
}
