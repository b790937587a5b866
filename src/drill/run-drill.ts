/**
 * `runbook drill`: rehearse a failover and a failback on a cluster, measuring what users feel.
 * Phases: baseline → probe → fault → failover → recovery → failback → exit checks. The drill
 * judges by what it reads itself (ClusterReader, the probe), never by a runbook's own report, and
 * whatever happens it does not leave two writable nodes behind.
 */
import { readFile } from 'node:fs/promises';
import { BadInputError, ConfirmationError, ExitCode } from '../errors.js';
import { connectionSpec, loadInventory, selectHosts, type ConnectionOverrides, type LoadOptions } from '../inventory/index.js';
import type { InventoryHost } from '../inventory/types.js';
import { SshTransport } from '../transport/index.js';
import { stopCommand, fenceCommand } from '../modules/postgres/control.js';
import { joinCommands } from '../shell/command.js';
import { maskSecrets } from '../shell/secret.js';
import { ClusterReader, writable, type NodeSnapshot } from './cluster-reader.js';
import { compareDrills, type Difference } from './compare.js';
import { describeFault, faultCommand, LabHands } from './faults.js';
import { computeMeasures } from './measures.js';
import { WriteProbe } from './probe.js';
import { PROBE_ROLE, PROBE_TABLE, prepareProbe, probeIdsOn } from './probe-setup.js';
import { writeDrillReport, type ReportPaths } from './report-files.js';
import { failureSummary, runRunbook, stepTimings, type RunbookArgs } from './runbook-runner.js';
import type { DrillReport, ExitCheck, FaultKind, PhaseRecord } from './types.js';

export interface DrillOptions extends RunbookArgs {
  fault: FaultKind;
  reportDir: string;
  compare?: string;
  yes: boolean;
  dryRun: boolean;
  clusterGroup: string;
  /** Connection flags that win over the inventory (-u, -b, --private-key, --accept-new-host-keys). */
  overrides?: ConnectionOverrides;
  loadOptions?: LoadOptions;
  log: (line: string) => void;
  /** Asks the admin (TTY only); undefined without a TTY. */
  confirm?: (message: string) => Promise<boolean>;
}

export interface DrillOutcome {
  exitCode: number;
  report?: DrillReport;
  paths?: ReportPaths;
  differences?: Difference[];
}

/** Failure inside a phase: the drill goes to its safety net and reports. */
class PhaseFailure extends Error {
  constructor(message: string, readonly exitCode: number = ExitCode.topologyNotRestored) {
    super(message);
  }
}

const RECOVERY_TIMEOUT_MS = 60_000;
const SETTLE_TIMEOUT_MS = 20_000;

interface ClusterPlan {
  nodes: InventoryHost[];
  primary: string;
  vip?: string;
  port: number;
  labName?: unknown;
}

function clusterPlan(hosts: InventoryHost[], group: string): ClusterPlan {
  if (hosts.length < 2) throw new BadInputError(`the drill needs a group "${group}" with at least two database hosts`);
  const vars = hosts[0]!.vars;
  const primary = vars.pg_primary;
  if (typeof primary !== 'string' || !hosts.some((h) => h.name === primary)) {
    throw new BadInputError(`group "${group}" needs a var pg_primary naming one of its hosts (${hosts.map((h) => h.name).join(', ')})`);
  }
  const vip = typeof vars.vip === 'string' ? vars.vip : undefined;
  const port = typeof vars.pg_port === 'number' ? vars.pg_port : 5432;
  return { nodes: hosts, primary, port, labName: vars.lab_name, ...(vip ? { vip } : {}) };
}

export async function runDrill(o: DrillOptions): Promise<DrillOutcome> {
  const inventory = await loadInventory(o.inventory, o.loadOptions);
  const plan = clusterPlan(selectHosts(inventory, o.clusterGroup), o.clusterGroup);
  const standbys = plan.nodes.map((h) => h.name).filter((n) => n !== plan.primary);
  const lab = o.fault === 'partition' ? LabHands.forInventory(plan.labName) : undefined;
  if (o.fault === 'partition' && !lab) {
    throw new BadInputError('--fault partition needs out-of-band access to cut and fence the host: it works on a lab inventory (var lab_name)');
  }
  const previous = o.compare ? await readPrevious(o.compare) : undefined;
  const serviceAddress = plan.vip ?? addressOf(plan.nodes.find((h) => h.name === plan.primary)!);
  const planLines = [
    `drill on ${plan.nodes.map((h) => h.name).join(', ')} (primary ${plan.primary}), service address ${serviceAddress}:${plan.port}`,
    `  1. baseline: one writable node (${plan.primary}), ${standbys.join(', ')} streaming, lag 0${plan.vip ? `, VIP ${plan.vip} on ${plan.primary} only` : ''}`,
    `  2. write probe: role ${PROBE_ROLE}, table ${PROBE_TABLE}, one insert every 100 ms against ${serviceAddress}`,
    `  3. fault: ${describeFault(o.fault, plan.primary)}`,
    `  4. runbook failover --yes, then wait for writes to come back`,
    `  5. runbook failback --yes (rejoin ${plan.primary}, planned switchover back)`,
    `  6. exit checks: original topology, latest timeline on all, no inactive slots, lag 0${plan.vip ? ', VIP on the primary only' : ''}`,
  ];
  for (const l of planLines) o.log(l);
  if (o.dryRun) {
    o.log('dry run: nothing was touched');
    return { exitCode: ExitCode.ok };
  }
  await approve(o, plan.primary);

  const transport = new SshTransport();
  const specs = new Map(plan.nodes.map((h) => [h.name, connectionSpec(h, { ...o.overrides, ...(o.knownHosts ? { knownHostsFile: o.knownHosts } : {}) })]));
  const reader = new ClusterReader(transport, specs, new Map(plan.nodes.map((h) => [h.name, h.vars])), plan.vip);
  const nodes = plan.nodes.map((h) => h.name);
  const phases: PhaseRecord[] = [];
  const exitChecks: ExitCheck[] = [];
  const timings: Record<string, number> = {};
  const startedAt = Date.now();
  let faultAt = startedAt;
  let lagBefore: number | null = null;
  let failbackWindow: { startedAt: number; endedAt: number } | undefined;
  let failure: string | undefined;
  let exitCode: number = ExitCode.ok;
  let probe: WriteProbe | undefined;
  let primaryAfterFailover: string | undefined;

  const phase = async <T>(name: string, body: () => Promise<T>): Promise<T> => {
    const record: PhaseRecord = { name, startedAt: Date.now(), endedAt: 0, ok: false };
    phases.push(record);
    o.log(`▶ ${name}`);
    try {
      const value = await body();
      record.ok = true;
      return value;
    } catch (error) {
      record.detail = maskSecrets(error instanceof Error ? error.message : String(error));
      throw error;
    } finally {
      record.endedAt = Date.now();
      o.log(`${record.ok ? '✔' : '✘'} ${name} (${record.endedAt - record.startedAt} ms)${record.detail ? `: ${record.detail}` : ''}`);
    }
  };

  try {
    await phase('baseline', async () => {
      const snaps = await reader.snapshot(nodes);
      const problems = topologyProblems(snaps, plan.primary, plan.vip);
      if (problems.length) {
        throw new PhaseFailure(`the cluster is not in its original topology, so there is nothing to rehearse from: ${problems.join('; ')} (run setup-warm-standby or failback first)`, ExitCode.blocked);
      }
      await waitFor('replication lag 0', 15_000, async () => laggingStandbys(await reader.senders(plan.primary), reader, standbys));
    });

    await phase('probe', async () => {
      const pw = await prepareProbe(reader, plan.primary, nodes);
      probe = new WriteProbe({ host: serviceAddress, port: plan.port, user: PROBE_ROLE, password: pw, database: 'postgres', table: PROBE_TABLE });
      probe.start();
      await waitFor('the probe writes', 10_000, async () => (probe!.acknowledged >= 5 ? undefined : `${probe!.acknowledged} acknowledged`));
      const senders = await reader.senders(plan.primary);
      lagBefore = Math.max(0, ...senders.map((s) => s.replayLagBytes ?? 0));
    });

    await phase('fault', async () => {
      faultAt = Date.now();
      if (o.fault === 'partition') {
        await lab!.setLink(plan.primary, false);
      } else {
        const cmd = faultCommand(o.fault, await reader.layout(plan.primary));
        o.log(`  ${plan.primary} $ ${cmd.toString()}`);
        await reader.exec(plan.primary, cmd, { become: true, check: true });
      }
    });

    await phase('failover', async () => {
      const run = await runRunbook('failover', o, o.log);
      Object.assign(timings, stepTimings('failover', run));
      const snaps = await reader.snapshot(standbys);
      const promoted = writable(snaps);
      if (promoted.length !== 1) {
        throw new PhaseFailure(`failover left ${promoted.length} writable standbys; ${failureSummary('failover', run)}`);
      }
      primaryAfterFailover = promoted[0]!.host;
      if (o.fault === 'partition') {
        // The cut-off old primary still believes it is primary: fence it out of band before the link returns.
        await lab!.fenceOutOfBand(plan.primary, await reader.layout(plan.primary));
      }
    });

    await phase('recovery', async () => {
      await waitFor('the first acknowledged write after the fault', RECOVERY_TIMEOUT_MS, async () =>
        probe!.samples.some((s) => s.sentAt > faultAt && s.ackAt !== undefined && s.error === undefined && hadFailureBefore(probe!, s.id, faultAt))
          ? undefined
          : 'no write acknowledged yet',
      );
      if (o.fault === 'partition') {
        await lab!.setLink(plan.primary, true);
        reader.forget(plan.primary);
      }
    });

    await phase('failback', async () => {
      const run = await runRunbook('failback', o, o.log);
      Object.assign(timings, stepTimings('failback', run));
      if (run.exitCode !== 0) throw new PhaseFailure(failureSummary('failback', run));
      // The rejoin does not interrupt writes (the new primary serves them): the longest gap in the
      // failback's window is the planned switchover's outage.
      failbackWindow = { startedAt: run.startedAt, endedAt: run.endedAt };
    });

    await phase('exit-checks', async () => {
      await waitFor('writes on the final primary', SETTLE_TIMEOUT_MS, async () =>
        probe!.samples.some((s) => s.sentAt > failbackWindow!.endedAt && s.ackAt !== undefined) ? undefined : 'no write acknowledged since failback',
      );
      exitChecks.push(...(await finalChecks(reader, nodes, plan.primary, standbys, plan.vip)));
      const bad = exitChecks.filter((c) => !c.ok);
      if (bad.length) throw new PhaseFailure(`exit checks failed: ${bad.map((c) => `${c.name}: ${c.detail}`).join('; ')}`);
    });
  } catch (error) {
    failure = maskSecrets(error instanceof Error ? error.message : String(error));
    exitCode = error instanceof PhaseFailure ? error.exitCode : error instanceof ConfirmationError ? ExitCode.confirmation : ExitCode.topologyNotRestored;
    if (o.fault === 'partition') await lab!.setLink(plan.primary, true).catch(() => undefined);
    if (phases.some((p) => p.name === 'fault')) {
      // Say what state the failure left, as far as it can be read.
      exitChecks.push(...(await finalChecks(reader, nodes, plan.primary, standbys, plan.vip).catch(() => [])));
    }
  }

  const samples = probe ? await probe.stop() : [];
  const safety = await neverTwoWritable(reader, nodes, plan.primary, o.log);
  if (safety) failure = failure ? `${failure}; ${safety}` : safety;
  const finalSnaps = await reader.snapshot(nodes);
  const finalPrimary = writable(finalSnaps)[0]?.host;
  const idsOnFinal = finalPrimary && samples.length ? await probeIdsOn(reader, finalPrimary).catch(() => new Set<number>()) : new Set<number>();
  await transport.closeAll();

  const measures = computeMeasures({ samples, faultAt, idsOnFinalPrimary: idsOnFinal, ...(failbackWindow ? { switchover: failbackWindow } : {}) });
  if (!failure && (measures.switchover_lost_writes > 0 || (o.fault === 'stop' && measures.rpo_lost_writes > 0))) {
    failure = `acknowledged writes were lost where none may be: ${measures.rpo_lost_writes} in all, ${measures.switchover_lost_writes} in the switchover`;
    exitCode = ExitCode.verifyFailed;
  }
  const report: DrillReport = {
    version: 1,
    fault: o.fault,
    started_at: new Date(startedAt).toISOString(),
    finished_at: new Date().toISOString(),
    ok: failure === undefined,
    ...(failure ? { failure } : {}),
    ...measures,
    primary_before: plan.primary,
    ...(primaryAfterFailover ? { primary_after_failover: primaryAfterFailover } : {}),
    ...(finalPrimary ? { primary_final: finalPrimary } : {}),
    service_address: serviceAddress,
    lag_before_fault_bytes: lagBefore,
    fault_at: faultAt,
    phases,
    exit_checks: exitChecks,
    step_timings: timings,
    samples,
  };
  const differences = previous ? compareDrills(previous, report) : undefined;
  const paths = await writeDrillReport(o.reportDir, report, differences);
  return { exitCode, report, paths, ...(differences ? { differences } : {}) };
}

async function approve(o: DrillOptions, primary: string): Promise<void> {
  if (o.yes) return;
  const message = `The drill injects a fault on ${primary}, the current primary, then fails over and back. Go ahead?`;
  if (!o.confirm) throw new ConfirmationError(`the drill needs approval to inject a fault on ${primary}: no TTY to ask on; pass --yes`);
  if (!(await o.confirm(message))) throw new ConfirmationError('drill declined: nothing was touched');
}

async function readPrevious(path: string): Promise<Partial<DrillReport>> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Partial<DrillReport>;
  } catch (error) {
    throw new BadInputError(`--compare: cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function addressOf(h: InventoryHost): string {
  return typeof h.vars.ansible_host === 'string' ? h.vars.ansible_host : h.name;
}

function hadFailureBefore(probe: WriteProbe, id: number, faultAt: number): boolean {
  return probe.samples.some((s) => s.id < id && s.sentAt >= faultAt && s.ackAt === undefined);
}

/** What differs from "intended primary writable, the rest standbys, VIP on the primary only". */
export function topologyProblems(snaps: NodeSnapshot[], primary: string, vip?: string): string[] {
  const problems: string[] = [];
  for (const s of snaps) {
    if (!s.status.up) problems.push(`${s.host} is down (${s.status.error})`);
    else if (s.host === primary && s.status.inRecovery) problems.push(`${primary} is in recovery, not primary`);
    else if (s.host !== primary && !s.status.inRecovery) problems.push(`${s.host} is writable`);
  }
  if (vip) {
    const holders = snaps.filter((s) => s.holdsVip).map((s) => s.host);
    if (holders.length !== 1 || holders[0] !== primary) problems.push(`VIP ${vip} is on ${holders.length ? holders.join(' and ') : 'no node'}, not on ${primary} only`);
  }
  return problems;
}

async function laggingStandbys(senders: Awaited<ReturnType<ClusterReader['senders']>>, reader: ClusterReader, standbys: string[]): Promise<string | undefined> {
  const names = new Map<string, string>();
  for (const s of standbys) names.set(s, String((reader.vars.get(s) ?? {}).pg_application_name ?? s));
  const problems: string[] = [];
  for (const [host, app] of names) {
    const sender = senders.find((x) => x.applicationName === app);
    if (!sender || sender.state !== 'streaming') problems.push(`${host} is not streaming`);
    else if ((sender.replayLagBytes ?? 0) !== 0) problems.push(`${host} lags ${sender.replayLagBytes} bytes`);
  }
  return problems.length ? problems.join('; ') : undefined;
}

async function finalChecks(reader: ClusterReader, nodes: string[], primary: string, standbys: string[], vip?: string): Promise<ExitCheck[]> {
  const snaps = await reader.snapshot(nodes);
  const checks: ExitCheck[] = [];
  const problems = topologyProblems(snaps, primary, vip);
  checks.push({ name: 'original topology', ok: problems.length === 0, detail: problems.join('; ') || `${primary} writable, ${standbys.join(', ')} in recovery` });
  const p = snaps.find((s) => s.host === primary)!.status;
  const timeline = p.up ? p.timeline : -1;
  const tl: string[] = [];
  for (const s of standbys) {
    const receiver = await reader.walReceiver(s).catch(() => null);
    if (!receiver || receiver.receivedTli !== timeline) tl.push(`${s} receives timeline ${receiver?.receivedTli ?? 'none'}`);
  }
  checks.push({ name: 'latest timeline', ok: tl.length === 0, detail: tl.join('; ') || `all on timeline ${timeline}` });
  const inactive = (await reader.slots(primary).catch(() => [])).filter((s) => !s.active).map((s) => s.name);
  checks.push({ name: 'no inactive slots', ok: inactive.length === 0, detail: inactive.length ? `inactive: ${inactive.join(', ')}` : 'every slot active' });
  let lag: string | undefined;
  try {
    await waitFor('lag 0', 15_000, async () => laggingStandbys(await reader.senders(primary), reader, standbys));
  } catch (error) {
    lag = error instanceof Error ? error.message : String(error);
  }
  checks.push({ name: 'lag 0', ok: lag === undefined, detail: lag ?? 'every standby streaming with replay lag 0' });
  if (vip) {
    const holders = snaps.filter((s) => s.holdsVip).map((s) => s.host);
    checks.push({ name: 'VIP on the primary only', ok: holders.length === 1 && holders[0] === primary, detail: `held by ${holders.join(', ') || 'no node'}` });
  }
  return checks;
}

/**
 * The one outcome a drill must never leave: two writable nodes. Keep the node on the newest
 * timeline (it has the writes since the failover); stop and fence the others.
 */
async function neverTwoWritable(reader: ClusterReader, nodes: string[], intended: string, log: (l: string) => void): Promise<string | undefined> {
  const primaries = writable(await reader.snapshot(nodes));
  if (primaries.length < 2) return undefined;
  const timelineOf = (s: NodeSnapshot): number => (s.status.up ? s.status.timeline : -1);
  const keep = [...primaries].sort((a, b) => timelineOf(b) - timelineOf(a) || Number(b.host === intended) - Number(a.host === intended))[0]!;
  const fenced: string[] = [];
  for (const s of primaries.filter((x) => x !== keep)) {
    const layout = await reader.layout(s.host);
    await reader.exec(s.host, joinCommands([stopCommand(layout), fenceCommand(layout)], ' && '), { become: true, check: true });
    fenced.push(s.host);
  }
  const message = `two writable nodes found (${primaries.map((p) => p.host).join(', ')}): kept ${keep.host} (timeline ${timelineOf(keep)}), stopped and fenced ${fenced.join(', ')}`;
  log(`⚠ ${message}`);
  return message;
}

async function waitFor(what: string, timeoutMs: number, problem: () => Promise<string | undefined>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: string | undefined = 'not checked';
  while (Date.now() < deadline) {
    last = await problem().catch((e: unknown) => (e instanceof Error ? e.message : String(e)));
    if (last === undefined) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new PhaseFailure(`timed out after ${timeoutMs} ms waiting for ${what}: ${last}`);
}
