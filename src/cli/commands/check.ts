/**
 * `runbook check -i INV`: health and failover readiness of a PostgreSQL cluster, for monitoring
 * and CI. Read-only (SELECTs, cat, stat, ip addr; the fence command is looked up, never run).
 * Exit codes are the monitoring plugin convention: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN — also
 * for bad input, since a monitoring system shows exit 2 as CRITICAL.
 */
import { spawnSync } from 'node:child_process';
import type { Command as Program } from 'commander';
import { RunbookError } from '../../errors.js';
import { connectionSpec, loadInventory, selectHosts } from '../../inventory/index.js';
import type { HostView } from '../../engine/types.js';
import { hostTransport } from '../../transport/hosts.js';
import { ClusterReader } from '../../drill/cluster-reader.js';
import { connOfLayout, resolveCluster, type PgCluster } from '../../modules/postgres/cluster.js';
import { chooseCandidate, receiverFact, type NodeView } from '../../modules/postgres/candidate.js';
import { type PortState, type SshView, classifyPort, decideFence, fenceCommandFor } from '../../modules/postgres/fence.js';
import { type PeerView, peerViewFact } from '../../modules/postgres/facts.js';
import { dataDirFact } from '../../modules/postgres/layout-facts.js';
import type { Secret } from '../../shell/secret.js';
import { sh } from '../../shell/index.js';
import { formatFindings, type CheckFormat } from '../../modules/health/format.js';
import { readNodes } from '../../modules/health/read.js';
import { DEFAULT_THRESHOLDS, UNKNOWN, healthFindings, overall, readinessFindings, type ClusterFacts, type NodeFacts, type Thresholds } from '../../modules/health/verdicts.js';
import { connectionDefaults, inventoryOption } from '../options.js';

interface CheckOptions {
  inventory: string[];
  format: CheckFormat;
  clusterGroup: string;
  part: 'all' | 'health' | 'readiness';
  maxLag: string;
  maxLagOnFailover: string;
  readyBacklog: string;
  syncIntervals: string;
  vip?: string;
  knownHosts?: string;
}

class CheckInputError extends RunbookError {
  constructor(message: string) {
    super(`check: ${message}`, UNKNOWN);
  }
}

/** "16MB", "512kB", "1048576" → bytes. */
export function parseBytes(name: string, v: string): number {
  const m = /^(\d+)\s*(B|kB|KB|MB|GB)?$/i.exec(v.trim());
  if (!m) throw new CheckInputError(`${name} ${JSON.stringify(v)}: bytes, e.g. 16MB, 512kB, 1048576`);
  const mult: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };
  return Number(m[1]) * mult[(m[2] ?? 'b').toLowerCase()]!;
}

function positive(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new CheckInputError(`${name} ${JSON.stringify(v)}: a positive number`);
  return n;
}

/** fence_command checked on this machine without running it: /bin/sh -n parses it. */
function fenceCommandView(line: string): { line: string; runnable: boolean; detail: string } {
  const r = spawnSync('/bin/sh', ['-n', '-c', line], { encoding: 'utf8' });
  return r.status === 0 ? { line, runnable: true, detail: 'parses as a shell line here; not run by check' } : { line, runnable: false, detail: `not a valid shell line: ${r.stderr.trim()}` };
}

/**
 * How failover would fence `old` (ha's decideFence), from the same evidence: the old primary's
 * PostgreSQL port as the candidate sees it (a node SSH cannot reach may still refuse on its port,
 * which is proof; one SSH reaches may not answer the candidate), and pg_ctl status over SSH.
 */
async function fenceOf(cluster: PgCluster, reader: ClusterReader, old: NodeFacts | undefined, candidate: string | undefined): Promise<ClusterFacts['fence']> {
  if (!old) return undefined;
  const node = cluster.nodes.find((n) => n.name === old.host);
  const line = fenceCommandFor(undefined, node?.vars ?? {});
  let port: { state: PortState; detail: string };
  if (candidate && node) {
    const seen = await reader.read(candidate, peerViewFact({ port: node.port, host: node.address, user: cluster.replicationUser })).catch((e: Error): PeerView => ({ answers: false, error: `not probed: ${candidate} unreachable (${e.message})` }));
    port = classifyPort(seen);
  } else port = { state: 'error', detail: 'no candidate to look from' };
  let ssh: SshView = { reachable: false, reason: old.error ?? 'unreachable' };
  if (old.reachable) {
    const dd = await reader
      .layout(old.host)
      .then((l) => reader.read(old.host, dataDirFact(l)))
      .catch((e: Error) => e);
    ssh = dd instanceof Error ? { reachable: false, reason: dd.message } : { reachable: true, running: dd.running, hasCluster: Boolean(dd.pgVersion), standbySignal: dd.standbySignal };
  }
  const d = decideFence({ node: old.host, port, ssh, hasFenceCommand: line !== undefined, approvedUnfenced: false });
  return { action: d.action, evidence: d.evidence, reason: d.reason, ...(line ? { command: fenceCommandView(line) } : {}) };
}

/** The candidate failover would pick now: ha's chooseCandidate on the same views. */
async function candidateOf(cluster: PgCluster, reader: ClusterReader, maxLag: number): Promise<ClusterFacts['candidate']> {
  const views: NodeView[] = await Promise.all(
    cluster.nodes.map(async (n): Promise<NodeView> => {
      const priority = Number(n.vars.pg_priority ?? 100);
      try {
        const status = await reader.status(n.name);
        const receiver = await reader.read(n.name, receiverFact(connOfLayout(await reader.layout(n.name))));
        return { name: n.name, priority, reachable: true, status, receiver };
      } catch (e) {
        return { name: n.name, priority, reachable: false, unreachableReason: (e as Error).message };
      }
    }),
  );
  const writable = views.filter((v) => v.status?.up && !v.status.inRecovery);
  const known = writable.length === 1 && writable[0]!.status!.up ? writable[0]!.status!.currentLsn : null;
  // the same inputs as failover's candidate step: the intended primary is what it would move away from
  const v = chooseCandidate({ views, named: undefined, maxLagBytes: maxLag, knownPrimaryLsn: known, approved: () => false, intendedPrimary: cluster.intendedPrimary.name });
  return v.kind === 'go' ? { host: v.candidate, why: v.reason } : { error: v.reason };
}

export function registerCheck(program: Program): void {
  inventoryOption(program.command('check'))
    .description('Health and failover readiness of the PostgreSQL cluster; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN')
    .option('--format <format>', 'nagios (plugin text with perfdata), json or junit', 'nagios')
    .option('--cluster-group <group>', 'inventory group of the cluster nodes', 'postgres')
    .option('--part <part>', 'all, health or readiness', 'all')
    .option('--max-lag <bytes>', 'replay lag a standby may have (CRITICAL over it, WARNING over half)', '16MB')
    .option('--max-lag-on-failover <bytes>', "the candidate's lag failover accepts", '16MB')
    .option('--ready-backlog <files>', '.ready WAL files waiting for the archiver (WARNING over it, CRITICAL over 10x)', '10')
    .option('--sync-intervals <n>', 'file sync: last success older than n intervals is CRITICAL', '3')
    .option('--vip <address>', 'the service VIP (default: the inventory var vip, checked where keepalived is set up)')
    .option('--known-hosts <file>', 'known_hosts file to verify host keys against')
    .action(async (o: CheckOptions) => {
      if (!['nagios', 'json', 'junit'].includes(o.format)) throw new CheckInputError(`--format ${o.format}: nagios, json or junit`);
      if (!['all', 'health', 'readiness'].includes(o.part)) throw new CheckInputError(`--part ${o.part}: all, health or readiness`);
      const t: Thresholds = {
        ...DEFAULT_THRESHOLDS,
        maxLagBytes: parseBytes('--max-lag', o.maxLag),
        maxLagOnFailover: parseBytes('--max-lag-on-failover', o.maxLagOnFailover),
        readyBacklog: positive('--ready-backlog', o.readyBacklog),
        syncIntervals: positive('--sync-intervals', o.syncIntervals),
      };
      let inventory;
      try {
        inventory = await loadInventory(o.inventory);
      } catch (e) {
        throw new CheckInputError((e as Error).message);
      }
      const view = (pattern: string): HostView[] =>
        selectHosts(inventory, pattern).map((h) => ({ name: h.name, vars: h.vars, groups: h.groups, address: String(h.vars.ansible_host ?? h.name) }));
      // The password is not needed to read: the cluster's shape only.
      const c = resolveCluster({ select: view }, { cluster_group: o.clusterGroup, replication_user: 'replicator', replication_password: 'unused' as unknown as Secret, vip: undefined });
      if (Array.isArray(c)) throw new CheckInputError(c.join('; '));
      const cluster: PgCluster = c;
      const hosts = selectHosts(inventory, o.clusterGroup);
      const vipVar = o.vip ?? (typeof hosts[0]?.vars.vip === 'string' ? (hosts[0].vars.vip as string) : undefined);

      const transport = hostTransport();
      const specs = new Map(hosts.map((h) => [h.name, connectionSpec(h, { defaults: connectionDefaults(), ...(o.knownHosts ? { knownHostsFile: o.knownHosts } : {}) })]));
      const reader = new ClusterReader(transport, specs, new Map(hosts.map((h) => [h.name, h.vars])), vipVar);
      try {
        // The VIP is checked where keepalived is set up (a VIP var alone is not a VIP).
        let vip = vipVar;
        if (vipVar && !o.vip) {
          const configured = await Promise.all(hosts.map((h) => reader.exec(h.name, sh`test -f /etc/keepalived/keepalived.conf`, { become: true }).then((r) => r.exitCode === 0, () => false)));
          if (!configured.some(Boolean)) vip = undefined;
        }
        const nodes = await readNodes(
          cluster.nodes.map((n) => ({ host: n.name, applicationName: n.applicationName, conn: { port: n.port } })),
          (host, f) => reader.read(host, f),
          { vip, conn: async (h) => connOfLayout(await reader.layout(h)) },
        );
        const candidate = await candidateOf(cluster, reader, t.maxLagOnFailover);
        const writable = nodes.filter((n) => n.reachable && n.up && !n.inRecovery);
        const oldName = writable.length === 1 ? writable[0]!.host : cluster.intendedPrimary.name;
        const candidateHost = 'host' in candidate ? candidate.host : undefined;
        const fence = candidateHost === oldName ? undefined : await fenceOf(cluster, reader, nodes.find((n) => n.host === oldName), candidateHost);
        const facts: ClusterFacts = { nodes, intendedPrimary: cluster.intendedPrimary.name, vip, candidate, fence };
        const findings = [...(o.part !== 'readiness' ? healthFindings(facts, t) : []), ...(o.part !== 'health' ? readinessFindings(facts, t) : [])];
        process.stdout.write(formatFindings(o.format, findings, { candidate: 'host' in candidate ? candidate.host : null }));
        process.exitCode = overall(findings);
      } finally {
        await transport.closeAll();
      }
    });
}
