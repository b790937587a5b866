/**
 * setup-vip: keepalived on the database nodes so that the service VIP sits on the writable
 * PostgreSQL node only. Unicast VRRP (no multicast), both nodes BACKUP + nopreempt, a track
 * script that faults every node but the primary, notify scripts that only log (seed 002's VIP,
 * without its notify_master promotion). Ends by proving: one holder, the primary, PostgreSQL
 * answering on the VIP.
 */
import { blocked, change, defineRunbook, noop, param, stepsFor } from '../src/index.js';
import type { ParamsOf } from '../src/index.js';
import { addressesFact, keepalivedFact, pgRoleFact, type InterfaceAddress, type KeepalivedFacts, type PgRole } from '../src/modules/vip/index.js';
import { directory, file } from '../src/index.js';
import { service } from '../src/index.js';
import { isValidClient } from '../src/modules/nfs/index.js';
import {
  CHECK_SCRIPT,
  KEEPALIVED_CONF,
  NOTIFY_SCRIPT,
  NOTIFY_SCRIPT_TEXT,
  RELEASE_FILE,
  interfaceFor,
  keepalivedReload,
  keepalivedService,
  priorityFor,
  renderCheckScript,
  renderKeepalivedConf,
  vipSteps,
} from '../src/modules/vip/index.js';
import { sh } from '../src/index.js';
import { keepalivedWordProblem } from '../src/modules/vip/index.js';

const params = {
  vip: param.string({ description: 'the service VIP (inventory var vip)', required: true }),
  nodes: param.string({ description: 'database node pattern', default: 'postgres' }),
  virtualRouterId: param.number({ description: 'VRRP router id, unique on the network segment', default: 51 }),
  // 0.1 s: a node whose check passes takes a VIP nobody holds after 3 adverts (~0.35 s, not 1.7 s
  // at 0.5). Safe from flapping: a node whose check fails is in FAULT whatever the adverts say.
  advertInt: param.number({ description: 'seconds between VRRP adverts (VRRPv3: fractions allowed)', default: 0.1 }),
  port: param.number({ description: 'PostgreSQL port', default: 5432 }),
};
type P = ParamsOf<typeof params>;
const { step, phase } = stepsFor<P>();

type VipState = { vipIface?: InterfaceAddress };
const onNodes = (ctx: { select(p: string): Array<{ name: string }>; params: P }) => ctx.select(ctx.params.nodes).map((h) => h.name);

export default defineRunbook({
  id: 'setup-vip',
  description: 'keepalived VIP that follows the writable PostgreSQL node (unicast VRRP, BACKUP + nopreempt)',
  params,
  validate: (p, ctx) => {
    const problems: string[] = [];
    const nodes = ctx.select(p.nodes);
    if (!isValidClient(p.vip) || !/^[\d.]+$/.test(p.vip)) problems.push(`vip ${JSON.stringify(p.vip)} is not an IPv4 address`);
    if (nodes.length < 2) problems.push(`nodes "${p.nodes}" must match at least two hosts, matches ${nodes.length}`);
    for (const n of nodes) {
      if (!/^[\d.]+$/.test(n.address)) problems.push(`${n.name}: ansible_host must be an IPv4 address (unicast VRRP peers), is ${n.address}`);
      if (n.address === p.vip) problems.push(`vip ${p.vip} is ${n.name}'s own address`);
      const word = keepalivedWordProblem(n.name);
      if (word) problems.push(`${n.name}: the host name becomes keepalived's router_id and ${word}`);
    }
    if (!Number.isInteger(p.virtualRouterId) || p.virtualRouterId < 1 || p.virtualRouterId > 255) problems.push(`virtualRouterId must be 1-255, is ${p.virtualRouterId}`);
    if (!(p.advertInt > 0 && p.advertInt <= 255)) problems.push(`advertInt must be > 0, is ${p.advertInt}`);
    return problems;
  },
  anyErrorsFatal: true,
  // The database nodes (the default of `nodes`); widen with --limit when nodes= names others.
  hosts: 'postgres',
  steps: [
    phase('check', [
      step<{ k: KeepalivedFacts; addrs: InterfaceAddress[]; role: PgRole }>({
        id: 'vip-node-check',
        title: 'keepalived installed, the interface of the node address, PostgreSQL role',
        on: onNodes,
        become: true,
        gather: () => ({ k: keepalivedFact, addrs: addressesFact, role: pgRoleFact }),
        plan: (f, ctx) => {
          if (!f.k.binary) return blocked('keepalived is not installed');
          const iface = interfaceFor(ctx.host.address, f.addrs);
          if (!iface) return blocked(`${ctx.host.address} is on no interface of ${ctx.host.name}`);
          return noop(`${iface.ifname} ${iface.address}/${iface.prefix}; keepalived ${f.k.pid ? `running (pid ${f.k.pid})` : 'not running'}; PostgreSQL ${f.role}`);
        },
        remember: (f, ctx): VipState => {
          const iface = interfaceFor(ctx.host.address, f.addrs);
          return iface ? { vipIface: iface } : {};
        },
      }),
    ]),
    phase('keepalived', [
      step({
        id: 'vip-keepalived-dir',
        title: '/etc/keepalived',
        on: onNodes,
        become: true,
        operation: () => directory({ path: '/etc/keepalived', mode: '0755', owner: 'root', group: 'root' }),
      }),
      step({
        id: 'vip-check-script',
        title: 'Track script: exit 0 only on the writable PostgreSQL',
        on: onNodes,
        become: true,
        operation: (ctx) => file({ path: CHECK_SCRIPT, content: renderCheckScript(ctx.params.port), mode: '0755', owner: 'root', group: 'root' }),
        notify: ['vip-keepalived-reload'],
      }),
      step({
        id: 'vip-notify-script',
        title: 'Notify script: logs state changes, never acts',
        on: onNodes,
        become: true,
        operation: () => file({ path: NOTIFY_SCRIPT, content: NOTIFY_SCRIPT_TEXT, mode: '0755', owner: 'root', group: 'root' }),
        notify: ['vip-keepalived-reload'],
      }),
      step({
        id: 'vip-keepalived-conf',
        title: 'keepalived.conf: unicast VRRP, BACKUP + nopreempt, tracked by the writable check',
        on: onNodes,
        become: true,
        operation: (ctx) => {
          const iface = (ctx.state as VipState).vipIface!;
          const nodes = ctx.select(ctx.params.nodes);
          const content = renderKeepalivedConf({
            node: ctx.host.name,
            interface: iface.ifname,
            sourceIp: ctx.host.address,
            peers: nodes.filter((n) => n.name !== ctx.host.name).map((n) => n.address),
            vip: ctx.params.vip,
            prefix: iface.prefix,
            virtualRouterId: ctx.params.virtualRouterId,
            priority: priorityFor(ctx.host.name, nodes.map((n) => n.name)),
            advertInt: ctx.params.advertInt,
          });
          return file({ path: KEEPALIVED_CONF, content, mode: '0644', owner: 'root', group: 'root', validate: (f) => sh`keepalived -t -f ${f}` });
        },
        notify: ['vip-keepalived-reload'],
      }),
      step({
        id: 'vip-release-flag',
        title: 'Release flag 0: this node may hold the VIP when its check passes (a switchover sets it for a moment)',
        on: onNodes,
        become: true,
        operation: () => file({ path: RELEASE_FILE, content: '0\n', mode: '0644', owner: 'root', group: 'root' }),
      }),
      step({
        id: 'vip-keepalived-running',
        title: 'keepalived running',
        on: onNodes,
        become: true,
        operation: () => service(keepalivedService()),
      }),
    ]),
    phase('verify', vipSteps<P>({ nodes: onNodes, vip: (p) => p.vip, port: (p) => p.port })),
  ],
  handlers: [
    step<{ k: KeepalivedFacts }>({
      id: 'vip-keepalived-reload',
      title: 'Reload keepalived',
      become: true,
      gather: () => ({ k: keepalivedFact }),
      plan: (f) => {
        const reload = keepalivedReload(f.k);
        return reload ? change('reload keepalived', [reload]) : noop('keepalived is not running: it reads the config when it starts');
      },
      verify: { converge: false },
    }),
  ],
});
