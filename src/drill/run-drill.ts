/**
 * `runbook drill`: rehearse a failover and a failback on a cluster, measuring what users feel.
 * Phases: baseline → probe (and workload) → fault → failover → recovery (→ link-restore after a
 * partition) → failback → exit checks. The drill judges by what it reads itself (ClusterReader,
 * the probe, pgbench's counters), takes the runbooks' exit codes at their word, and whatever
 * happens it does not leave two writable nodes behind. Nothing here needs a lab: every fault is
 * made over SSH, and a fault that cuts the drill off undoes itself on the host.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Socket } from 'node:net';
import { BadInputError, ConfirmationError, EnvironmentError, ExitCode } from '../errors.js';
import { connectionSpec, loadInventory, selectHosts, type ConnectionOverrides, type LoadOptions } from '../inventory/index.js';
import type { InventoryHost } from '../inventory/types.js';
import { hostTransport } from '../transport/hosts.js';
import { stopCommand, fenceCommand } from '../modules/postgres/control.js';
import { PEER_CONNECT_TIMEOUT_SEC, parseRows, psqlCommand } from '../modules/postgres/facts.js';
import { connOfLayout } from '../modules/postgres/cluster.js';
import { joinCommands, raw, sh } from '../shell/command.js';
import { maskSecrets, type Secret } from '../shell/secret.js';
import { sql } from '../shell/sql.js';
import { defaultBudget, lossBudgets, promisesNoLoss, describeMode, type ReplicationMode } from './budget.js';
import { ClusterReader, writable, type NodeSnapshot } from './cluster-reader.js';
import { compareDrills, type Difference } from './compare.js';
import { describeFault, faultCommand, replayLagCommand, replayPauseCommand } from './faults.js';
import { Heartbeat } from './heartbeat.js';
import { computeMeasures, writeGaps } from './measures.js';
import {
  TOOLS_PROBE, chooseCutTool, cutPresentCommand, guardCommand, isIpv4, parseGuardLog, routeSource, toolsOf, type GuardSpec,
} from './partition.js';
import { ClusterLock, lockHolder } from '../core/lock.js';
import { newRunId } from '../engine/journal.js';
import { jobFact, startDetached, waitDetached, type JobExec } from '../core/detached.js';
import { WriteProbe } from './probe.js';
import { PROBE_ROLE, PROBE_TABLE, clientAddressSeenBy, prepareProbe, prepareWorkloadDb, probeIdsOn } from './probe-setup.js';
import { writeDrillReport, type ReportPaths } from './report-files.js';
import { checkRunbooksAccept, failureSummary, fenceEvidence, runRunbook, stepTimings, type RunbookArgs, type RunbookRun } from './runbook-runner.js';
import type { DrillReport, ExitCheck, FaultKind, FenceEvidence, LagRecord, Marker, PartitionRecord, PhaseRecord } from './types.js';
import { FAILBACK_LEDGER_STEP, describeDrillLedger, ledgerOfFailback, type DrillLedger } from './ledger.js';
import { PgbenchWorkload, WORKLOAD_DB, describeHistory, findPgbench, initPgbench, withHistory, type WorkloadResult, type WorkloadSpec } from './workload.js';

export interface DrillOptions extends RunbookArgs {
  /** -v count for the drill's own commands (its runbooks get -v through hostsArgs). */
  verbose?: number;
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
  /** --max-lost-writes; undefined: the default of the fault and the replication mode. */
  maxLostWrites?: number;
  /** --workload pgbench[:clients][@tps] */
  workload?: WorkloadSpec;
  /** How long a partition lasts before the host's guard restores the link (seconds). */
  faultSeconds: number;
  /** --fault lag: the standby whose replay is paused (default: the one failover would pick first). */
  lagStandby?: string;
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
const VIP_SETTLE_MS = 30_000;
const PROBE_INTERVAL_MS = 100;
/** After the deadline, how long the partitioned host may take to answer SSH again. */
const RESTORE_GRACE_MS = 60_000;

interface ClusterPlan {
  nodes: InventoryHost[];
  primary: string;
  vip?: string;
  port: number;
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
  return { nodes: hosts, primary, port, ...(vip ? { vip } : {}) };
}

export async function runDrill(o: DrillOptions): Promise<DrillOutcome> {
  const inventory = await loadInventory(o.inventory, o.loadOptions);
  const plan = clusterPlan(selectHosts(inventory, o.clusterGroup), o.clusterGroup);
  const standbys = plan.nodes.map((h) => h.name).filter((n) => n !== plan.primary);
  const lagging = o.fault === 'lag' ? (o.lagStandby ?? standbys[0]!) : undefined;
  if (o.fault === 'lag') {
    if (standbys.length < 2) throw new BadInputError(`--fault lag needs at least two standbys (one lags, another is promoted); group "${o.clusterGroup}" has ${standbys.join(', ')}`);
    if (!standbys.includes(lagging!)) throw new BadInputError(`--lag-standby ${lagging}: not a standby of group "${o.clusterGroup}" (${standbys.join(', ')})`);
  }
  if (!Number.isInteger(o.faultSeconds) || o.faultSeconds < 20 || o.faultSeconds > 3600) {
    throw new BadInputError(`--fault-seconds ${o.faultSeconds}: a whole number of seconds from 20 to 3600 (the failover must finish inside it)`);
  }
  const pgbench = o.workload ? await findPgbench() : undefined;
  if (o.workload && !pgbench) throw new EnvironmentError('--workload pgbench: pgbench is not installed on this machine (Debian: postgresql-contrib or postgresql-15; RHEL: postgresql15-contrib)');
  const previous = o.compare ? await readPrevious(o.compare) : undefined;
  await checkRunbooksAccept(['failover', 'failback'], o, o);
  const serviceAddress = plan.vip ?? addressOf(plan.nodes.find((h) => h.name === plan.primary)!);
  const planLines = [
    `drill on ${plan.nodes.map((h) => h.name).join(', ')} (primary ${plan.primary}), service address ${serviceAddress}:${plan.port}`,
    `  1. baseline: one writable node (${plan.primary}), ${standbys.join(', ')} streaming, lag 0${plan.vip ? `, VIP ${plan.vip} on ${plan.primary} only` : ''}; replication mode read`,
    `  2. write probe: role ${PROBE_ROLE}, table ${PROBE_TABLE}, one insert every ${PROBE_INTERVAL_MS} ms against ${serviceAddress}${o.workload ? `; pgbench with ${o.workload.clients} clients${o.workload.rate ? ` at ${o.workload.rate} tx/s` : ', flat out'} (database ${WORKLOAD_DB})` : ''}`,
    `  3. fault: ${describeFault(o.fault, plan.primary, lagging)}${o.fault === 'partition' ? `; the link comes back ${o.faultSeconds} s after the cut` : ''}`,
    o.fault === 'lag'
      ? `  4. runbook failover -e candidate=${lagging} (must be refused), then runbook failover --yes, then wait for writes to come back`
      : `  4. runbook failover --yes (its fencing decides whether ${plan.primary} is proved dead or fenced), then wait for writes to come back`,
    `  5. runbook failback --yes (rejoin ${plan.primary}, planned switchover back)${approvesLedger(o) ? `; --approve ${FAILBACK_LEDGER_STEP} when the fault's loss budget allows loss (the ledger keeps what the rejoin discards)` : ''}`,
    `  6. exit checks: original topology, latest timeline on all, no inactive slots, lag 0${plan.vip ? ', VIP on the primary only' : ''}; loss budgets`,
  ];
  for (const l of planLines) o.log(l);
  if (o.dryRun) {
    o.log('dry run: nothing was touched');
    return { exitCode: ExitCode.ok };
  }
  await approve(o, plan.primary);

  const transport = hostTransport({ verbose: o.verbose ?? 0, write: o.log });
  const specs = new Map(plan.nodes.map((h) => [h.name, connectionSpec(h, { ...o.overrides, ...(o.knownHosts ? { knownHostsFile: o.knownHosts } : {}) })]));
  const reader = new ClusterReader(transport, specs, new Map(plan.nodes.map((h) => [h.name, h.vars])), plan.vip);
  const nodes = plan.nodes.map((h) => h.name);
  // One lock across the drill's runbooks (docs/locks.md): no other run changes the cluster meanwhile.
  const runId = `drill-${newRunId()}`;
  let lock: ClusterLock;
  try {
    lock = await ClusterLock.acquire(reader, nodes, lockHolder(runId, 'drill'), { log: o.log });
  } catch (error) {
    await transport.closeAll();
    throw error;
  }
  const runbookArgs: RunbookArgs = { ...o, lockHeld: runId };
  const phases: PhaseRecord[] = [];
  const exitChecks: ExitCheck[] = [];
  const timings: Record<string, number> = {};
  const markers: Marker[] = [];
  const startedAt = Date.now();
  let faultAt = startedAt;
  let lagBefore: number | null = null;
  let failbackWindow: { startedAt: number; endedAt: number } | undefined;
  let failure: string | undefined;
  let exitCode: number = ExitCode.ok;
  let probe: WriteProbe | undefined;
  let workload: PgbenchWorkload | undefined;
  let primaryAfterFailover: string | undefined;
  let mode: ReplicationMode | undefined;
  let fence: FenceEvidence | undefined;
  let partition: CutRecord | undefined;
  let lag: LagRecord | undefined;
  let lagPaused = false;
  let ledger: DrillLedger | undefined;
  /** Hosts the drill must not touch over SSH (cut off: their connections hang). */
  const unreachable = new Set<string>();

  const heartbeat = new Heartbeat(o.log, () => {
    if (!probe) return undefined;
    const last = [...probe.samples].reverse().find((s) => s.ackAt !== undefined);
    return `probe: ${probe.acknowledged} acknowledged${last ? `, last ${((Date.now() - last.ackAt!) / 1000).toFixed(1)} s ago` : ''}${workload ? `; pgbench: ${workload.committed} committed` : ''}`;
  });
  const log = heartbeat.log;
  heartbeat.start();
  const roles = new RoleWatcher(reader, nodes, unreachable);

  const phase = async <T>(name: string, body: () => Promise<T>): Promise<T> => {
    const record: PhaseRecord = { name, startedAt: Date.now(), endedAt: 0, ok: false };
    phases.push(record);
    heartbeat.enter(name);
    log(`▶ ${name}`);
    try {
      const value = await body();
      record.ok = true;
      return value;
    } catch (error) {
      record.detail = maskSecrets(error instanceof Error ? error.message : String(error));
      throw error;
    } finally {
      record.endedAt = Date.now();
      heartbeat.leave();
      log(`${record.ok ? '✔' : '✘'} ${name} (${record.endedAt - record.startedAt} ms)${record.detail ? `: ${record.detail}` : ''}`);
    }
  };
  const wait = (what: string, timeoutMs: number, problem: () => Promise<string | undefined>): Promise<void> => {
    heartbeat.waiting(what);
    return waitFor(what, timeoutMs, problem);
  };
  const runbook = async (id: string, extra: string[] = []): Promise<RunbookRun> => {
    heartbeat.waiting(`runbook ${id}`);
    const run = await runRunbook(id, runbookArgs, log, extra);
    Object.assign(timings, stepTimings(id + (extra.length ? `(${extra.join(' ')})` : ''), run));
    return run;
  };

  try {
    await phase('baseline', async () => {
      let problems = topologyProblems(await reader.snapshot(nodes), plan.primary, plan.vip);
      // keepalived may still be settling (a reload, a slow check on a loaded host): give the VIP
      // alone time to come to the primary; a wrong role is refused at once.
      const vipSettles = Date.now() + VIP_SETTLE_MS;
      while (problems.length && problems.every((p) => p.startsWith('VIP ')) && Date.now() < vipSettles) {
        heartbeat.waiting(`VIP ${plan.vip} on ${plan.primary}`);
        await new Promise((r) => setTimeout(r, 500));
        problems = topologyProblems(await reader.snapshot(nodes), plan.primary, plan.vip);
      }
      if (problems.length) {
        // Only the VIP wrong: keepalived is missing or elsewhere, not the database roles.
        const fix = problems.every((p) => p.startsWith('VIP ')) ? 'run setup-vip, or failback if the VIP follows another primary' : 'run setup-warm-standby or failback first';
        throw new PhaseFailure(`the cluster is not in its original topology, so there is nothing to rehearse from: ${problems.join('; ')} (${fix})`, ExitCode.blocked);
      }
      await wait('replication lag 0', 15_000, async () => laggingStandbys(await reader.senders(plan.primary), reader, standbys));
      mode = await reader.replicationMode(plan.primary);
      log(`  replication: ${describeMode(mode)}`);
    });

    await phase('probe', async () => {
      const pw = await prepareProbe(reader, plan.primary, nodes);
      probe = new WriteProbe({ host: serviceAddress, port: plan.port, user: PROBE_ROLE, password: pw, database: 'postgres', table: PROBE_TABLE }, { intervalMs: PROBE_INTERVAL_MS });
      probe.start();
      if (o.workload) workload = await startWorkload(reader, plan, serviceAddress, pw, pgbench!, o.workload, log);
      await wait('the probe writes', 10_000, async () => (probe!.acknowledged >= 5 ? undefined : `${probe!.acknowledged} acknowledged`));
      if (workload) {
        const w = workload;
        await wait('pgbench commits', 20_000, async () =>
          w.committed > 0 ? undefined : w.rounds.length ? `no commit in ${w.rounds.length} rounds: ${w.rounds.at(-1)?.error ?? ''}` : 'first round running',
        );
      }
      const senders = await reader.senders(plan.primary);
      lagBefore = Math.max(0, ...senders.map((s) => s.replayLagBytes ?? 0));
    });

    await phase('fault', async () => {
      if (o.fault === 'partition') {
        partition = await cutPrimary(reader, plan, standbys, o.faultSeconds, log, wait);
        unreachable.add(plan.primary);
        faultAt = partition.log?.cutAt ?? Date.now();
      } else if (o.fault === 'lag') {
        const l = await reader.layout(lagging!);
        await reader.exec(lagging!, replayPauseCommand(l, true), { become: true, check: true });
        lagPaused = true;
        markers.push({ name: 'replay paused', at: Date.now(), detail: lagging! });
        let bytes = 0;
        await wait(`replay on ${lagging} to fall behind`, 20_000, async () => {
          const r = await reader.exec(lagging!, replayLagCommand(l), { become: true, check: true });
          bytes = Number(parseRows(r.stdout)[0]?.[0] ?? 0);
          return bytes > 0 ? undefined : 'replay not behind yet';
        });
        lag = { standby: lagging!, lag_bytes: bytes };
        log(`  ${lagging}: replay paused, ${bytes} bytes received and not replayed`);
        faultAt = Date.now();
        const cmd = faultCommand('stop', await reader.layout(plan.primary));
        log(`  ${plan.primary} $ ${cmd.toString()}`);
        await reader.exec(plan.primary, cmd, { become: true, check: true });
      } else {
        const cmd = faultCommand(o.fault, await reader.layout(plan.primary));
        log(`  ${plan.primary} $ ${cmd.toString()}`);
        faultAt = Date.now();
        await reader.exec(plan.primary, cmd, { become: true, check: true });
      }
      roles.start();
    });

    if (o.fault === 'lag') {
      await phase('failover-refused', async () => {
        const run = await runbook('failover', ['-e', `candidate=${lagging}`]);
        const snap = (await reader.snapshot([lagging!]))[0]!;
        if (snap.status.up && !snap.status.inRecovery) throw new PhaseFailure(`failover promoted ${lagging}, whose replay is paused and behind: the candidate checks did not hold`);
        if (run.exitCode !== ExitCode.blocked) throw new PhaseFailure(`failover -e candidate=${lagging} should have been refused by its guard (exit 8); it exited ${run.exitCode}: ${failureSummary('failover', run)}`);
        lag!.refused = refusal(run);
        log(`  refused as it should: ${lag!.refused}`);
      });
    }

    await phase('failover', async () => {
      const run = await runbook('failover');
      fence = fenceEvidence(run, plan.primary);
      if (fence) log(`  fence evidence for ${plan.primary}: ${fence.verdict} (${fence.detail})`);
      if (run.exitCode !== 0) throw new PhaseFailure(failureSummary('failover', run), run.exitCode === ExitCode.blocked ? ExitCode.blocked : ExitCode.topologyNotRestored);
      const promoted = writable(await reader.snapshot(standbys));
      if (promoted.length !== 1) {
        throw new PhaseFailure(`failover exited 0 but ${promoted.length} standbys are writable (${promoted.map((p) => p.host).join(', ') || 'none'})`);
      }
      primaryAfterFailover = promoted[0]!.host;
      if (lag) {
        lag.promoted = primaryAfterFailover;
        if (primaryAfterFailover === lagging) throw new PhaseFailure(`failover promoted ${lagging}, the lagging standby`);
      }
    });

    if (lagPaused) {
      await reader.exec(lagging!, replayPauseCommand(await reader.layout(lagging!), false), { become: true, check: true });
      lagPaused = false;
      markers.push({ name: 'replay resumed', at: Date.now(), detail: lagging! });
    }

    await phase('recovery', async () => {
      await wait('the first acknowledged write after the fault', RECOVERY_TIMEOUT_MS, async () =>
        probe!.samples.some((s) => s.sentAt > faultAt && s.ackAt !== undefined && s.error === undefined && hadFailureBefore(probe!, s.id, faultAt))
          ? undefined
          : 'no write acknowledged yet',
      );
    });

    if (partition) {
      await phase('link-restore', async () => {
        await awaitRestore(reader, plan.primary, partition!, log, wait);
        unreachable.delete(plan.primary);
        markers.push({ name: 'link restored', at: partition!.log?.restoredAt ?? Date.now() });
      });
    }

    await phase('failback', async () => {
      // A loss the budget allows must not stop the rejoin: the ledger step keeps the discarded WAL
      // on the node and its numbers go into this report; a budget of 0 leaves its refusal standing.
      const run = await runbook('failback', approvesLedger(o, mode) ? ['--approve', FAILBACK_LEDGER_STEP] : []);
      ledger = ledgerOfFailback(run.report);
      if (ledger) log(`  divergence ledger: ${describeDrillLedger(ledger)}`);
      if (run.exitCode !== 0) throw new PhaseFailure(failureSummary('failback', run));
      // The rejoin does not interrupt writes (the new primary serves them): the longest gap in the
      // failback's window is the planned switchover's outage.
      failbackWindow = { startedAt: run.startedAt, endedAt: run.endedAt };
    });

    await phase('exit-checks', async () => {
      await wait('writes on the final primary', SETTLE_TIMEOUT_MS, async () =>
        probe!.samples.some((s) => s.sentAt > failbackWindow!.endedAt && s.ackAt !== undefined) ? undefined : 'no write acknowledged since failback',
      );
      exitChecks.push(...(await finalChecks(reader, nodes, plan.primary, standbys, plan.vip)));
      const bad = exitChecks.filter((c) => !c.ok);
      if (bad.length) throw new PhaseFailure(`exit checks failed: ${bad.map((c) => `${c.name}: ${c.detail}`).join('; ')}`);
    });
  } catch (error) {
    failure = maskSecrets(error instanceof Error ? error.message : String(error));
    exitCode = error instanceof PhaseFailure ? error.exitCode : error instanceof ConfirmationError ? ExitCode.confirmation : ExitCode.topologyNotRestored;
    if (lagPaused) await reader.exec(lagging!, replayPauseCommand(await reader.layout(lagging!), false), { become: true }).catch(() => undefined);
    if (partition && unreachable.has(plan.primary)) {
      // The drill cannot lift the cut (it cannot reach the host): the host's guard does, at the deadline.
      await phase('link-restore', async () => {
        await awaitRestore(reader, plan.primary, partition!, log, wait);
        unreachable.delete(plan.primary);
      }).catch((e: unknown) => {
        failure = `${failure}; ${e instanceof Error ? e.message : String(e)}`;
      });
    }
    if (phases.some((p) => p.name === 'fault')) {
      // Say what state the failure left, as far as it can be read.
      exitChecks.push(...(await finalChecks(reader, nodes.filter((n) => !unreachable.has(n)), plan.primary, standbys, plan.vip).catch(() => [])));
    }
  }

  heartbeat.enter('wrap-up');
  heartbeat.waiting('the probe and the workload to stop');
  await roles.stop();
  const samples = probe ? await probe.stop() : [];
  let workloadResult: WorkloadResult | undefined = workload ? await workload.stop() : undefined;
  const reachable = nodes.filter((n) => !unreachable.has(n));
  const safety = await neverTwoWritable(reader, reachable, plan.primary, log);
  if (safety) failure = failure ? `${failure}; ${safety}` : safety;
  const finalSnaps = await reader.snapshot(reachable);
  const finalPrimary = writable(finalSnaps)[0]?.host;
  const idsOnFinal = finalPrimary && samples.length ? await probeIdsOn(reader, finalPrimary).catch(() => new Set<number>()) : new Set<number>();
  if (workloadResult && finalPrimary) {
    const rows = await historyRows(reader, finalPrimary).catch(() => undefined);
    if (rows !== undefined) workloadResult = withHistory(workloadResult, rows);
    log(`  ${describeHistory(workloadResult)}`);
  }
  heartbeat.stop();
  await lock.release();
  await transport.closeAll();

  markers.push(...roles.markers(plan.primary, faultAt, failbackWindow));
  const measures = computeMeasures({ samples, faultAt, idsOnFinalPrimary: idsOnFinal, ...(failbackWindow ? { switchover: failbackWindow } : {}) });
  const budgets = lossBudgets({
    fault: o.fault,
    ...(o.maxLostWrites !== undefined ? { maxLostWrites: o.maxLostWrites } : {}),
    ...(mode ? { mode } : {}),
    probeLostFault: measures.rpo_lost_writes - measures.switchover_lost_writes,
    probeLostSwitchover: measures.switchover_lost_writes,
    ...(workloadResult?.lost !== undefined ? { workloadLost: workloadResult.lost } : {}),
    ...(ledger !== undefined ? { ledger: describeDrillLedger(ledger) } : {}),
  });
  const over = budgets.filter((b) => !b.ok);
  if (over.length) {
    const text = `loss budget exceeded: ${over.map((b) => `${b.name}: ${b.detail}`).join('; ')}`;
    failure = failure ? `${failure}; ${text}` : text;
    if (exitCode === ExitCode.ok) exitCode = ExitCode.verifyFailed;
  }
  const report: DrillReport = {
    version: 2,
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
    probe_interval_ms: PROBE_INTERVAL_MS,
    markers: markers.sort((a, b) => a.at - b.at),
    write_gaps: writeGaps(samples, 1000),
    ...(mode ? { replication_mode: { ...(mode as ReplicationMode), promises_no_loss: promisesNoLoss(mode) } } : {}),
    budgets,
    ...(workloadResult ? { workload: workloadResult } : {}),
    ...(fence ? { fence } : {}),
    ...(partition ? { partition: partitionRecord(partition) } : {}),
    ...(lag ? { lag } : {}),
    ...(ledger !== undefined ? { ledger } : {}),
  };
  const differences = previous ? compareDrills(previous, report) : undefined;
  const paths = await writeDrillReport(o.reportDir, report, differences);
  return { exitCode, report, paths, ...(differences ? { differences } : {}) };
}

function partitionRecord(p: CutRecord): PartitionRecord {
  const { spec: _spec, reach: _reach, ...rest } = p;
  return rest;
}

/** The guard's refusal, in its words: the first blocked step's message. */
function refusal(run: RunbookRun): string {
  const blocked = (run.report?.results ?? []).find((r) => r.status === 'blocked');
  return blocked ? `${blocked.stepId}@${blocked.host}: ${blocked.message.split('\n')[0]}` : run.tail.slice(-1).join('');
}

/**
 * Whether the failback may discard what the ledger lists: when the fault's budget allows a loss
 * (none set under asynchronous replication, or --max-lost-writes above 0). Before the baseline
 * has read the mode (the plan), any budget other than an explicit 0 counts.
 */
function approvesLedger(o: DrillOptions, mode?: ReplicationMode): boolean {
  const max = o.maxLostWrites ?? (mode || o.fault === 'stop' || o.fault === 'lag' ? defaultBudget(o.fault, mode).max : null);
  return max === null || max > 0;
}

async function startWorkload(
  reader: ClusterReader,
  plan: ClusterPlan,
  serviceAddress: string,
  password: Secret,
  bin: string,
  spec: WorkloadSpec,
  log: (l: string) => void,
): Promise<PgbenchWorkload> {
  await prepareWorkloadDb(reader, plan.primary);
  const target = { host: serviceAddress, port: plan.port, user: PROBE_ROLE, password, database: WORKLOAD_DB };
  await initPgbench(bin, target);
  log(`  pgbench: tables initialised in ${WORKLOAD_DB} (scale 1), ${spec.clients} clients${spec.rate ? ` at ${spec.rate} tx/s` : ''} against ${serviceAddress}:${plan.port}`);
  const w = new PgbenchWorkload(bin, target, spec.clients, spec.rate);
  w.start();
  return w;
}

async function historyRows(reader: ClusterReader, host: string): Promise<number> {
  const conn = { ...connOfLayout(await reader.layout(host)), db: WORKLOAD_DB };
  const r = await reader.exec(host, psqlCommand(conn, sql`SELECT count(*) FROM pgbench_history;`), { become: true, check: true });
  return Number(parseRows(r.stdout)[0]?.[0] ?? NaN);
}

/** The partition as the drill tracks it: the record plus the guard's spec and how to reach the host. */
type CutRecord = PartitionRecord & { spec: GuardSpec; reach: { address: string; sshPort: number } };

type Wait = (what: string, timeoutMs: number, problem: () => Promise<string | undefined>) => Promise<void>;

/**
 * Cut the primary off: find what it can cut with, which addresses the others and this
 * controller reach it from, start the guard (which cuts a second later and restores at the
 * deadline), then check from outside that the cut holds.
 */
async function cutPrimary(
  reader: ClusterReader,
  plan: ClusterPlan,
  standbys: string[],
  faultSeconds: number,
  log: (l: string) => void,
  wait: Wait,
): Promise<CutRecord> {
  const primary = plan.primary;
  const tools = toolsOf((await reader.exec(primary, TOOLS_PROBE, { check: true })).stdout);
  const tool = chooseCutTool(tools);
  if (!tool) throw new PhaseFailure(`${primary} has neither nft, iptables nor ip: cannot cut it`, ExitCode.environment);
  const own = (await reader.exec(primary, raw('hostname -I 2>/dev/null || true'), { check: true })).stdout.split(/\s+/).filter(Boolean);
  const controller = await clientAddressSeenBy(reader, primary);
  const primaryAddress = addressOf(plan.nodes.find((h) => h.name === primary)!);
  const addresses = [controller];
  for (const s of standbys) {
    const r = await reader.exec(s, sh`ip -o route get "$(getent ahostsv4 ${primaryAddress} | awk 'NR == 1 { print $1 }')" 2>/dev/null || true`, { check: true });
    const src = routeSource(r.stdout) ?? addressOf(plan.nodes.find((h) => h.name === s)!);
    if (!isIpv4(src)) throw new PhaseFailure(`cannot tell the IPv4 address ${s} reaches ${primary} from (got "${src}")`, ExitCode.environment);
    addresses.push(src);
  }
  const selfCut = addresses.filter((a) => own.includes(a) || a.startsWith('127.'));
  if (selfCut.length) throw new PhaseFailure(`cannot partition ${primary} from ${selfCut.join(', ')}: that is ${primary}'s own address (is the drill running on ${primary}?)`, ExitCode.badInput);
  const unique = [...new Set(addresses)];
  const id = `drill-partition-${randomBytes(4).toString('hex')}`;
  // Long enough for the start command's reply to leave before the cut, on a loaded host.
  const delaySec = 3;
  const deadline = Math.ceil(Date.now() / 1000) + delaySec + faultSeconds;
  const pidFile = `${(await reader.layout(primary)).dataDir}/postmaster.pid`;
  const spec: GuardSpec = { id, tool, addresses: unique, deadline, delaySec, pidFile };
  log(`  ${primary}: cutting ${unique.join(', ')} by ${tool === 'blackhole' ? 'blackhole routes' : `${tool} rules`}; guard job ${id} restores the link at ${new Date(deadline * 1000).toISOString()}, or once PostgreSQL on ${primary} has stopped (fenced)`);
  const sshPort = Number(plan.nodes.find((h) => h.name === primary)!.vars.ansible_port ?? 22);
  const record: CutRecord = { spec, reach: { address: primaryAddress, sshPort }, tool, addresses: unique, guard: id, deadline: new Date(deadline * 1000).toISOString() };
  const started = await startDetached(jobExec(reader, primary), id, guardCommand(spec), { timeoutSec: delaySec + faultSeconds + 120 });
  if (started.state.state === 'running') record.guard = `${id} (detached job, PID ${started.state.pid})`;
  // The SSH connection is about to go silent: never use it again.
  reader.forget(primary);
  record.log = { cutAt: Date.now() + delaySec * 1000 };
  // The RTO clock runs from the cut: the three probes of the cut run side by side in each poll,
  // not one after another (they took 6 s of the partition's RTO in a row). The cut holds once all
  // three, made at the same moment, say so.
  const peer = standbys[0]!;
  const l = await reader.layout(peer);
  const isready = sh`${`${l.binDir}/pg_isready`} -h ${primaryAddress} -p ${plan.port} -t ${PEER_CONNECT_TIMEOUT_SEC} || true`;
  let seen = '';
  await wait(`the cut of ${primary} to hold`, 15_000, async () => {
    const [ssh, pg, fromPeer] = await Promise.all([tcpAnswers(primaryAddress, sshPort, 1500), tcpAnswers(primaryAddress, plan.port, 1500), reader.exec(peer, isready, { check: true })]);
    if (ssh || pg) return `${primaryAddress} still answers on ${[ssh ? sshPort : 0, pg ? plan.port : 0].filter(Boolean).join(' and ')}`;
    seen = fromPeer.stdout.trim();
    return /accepting connections/.test(seen) ? `${peer} still reaches ${primary}: ${seen}` : undefined;
  });
  record.cut_verified = `this controller: ${primaryAddress}:${sshPort} and :${plan.port} do not answer; ${peer}: pg_isready says "${seen}"`;
  log(`  cut holds: ${record.cut_verified}`);
  return record;
}

/** Commands on `host` as root, for detached jobs (which never fail on an exit code). */
function jobExec(reader: ClusterReader, host: string): JobExec {
  return (command, options) => reader.exec(host, command, { become: true, ...options, check: false });
}

/** Wait for the guard's deadline, then for SSH to answer; check the guard's log and the rules. */
async function awaitRestore(reader: ClusterReader, primary: string, p: CutRecord, log: (l: string) => void, wait: Wait): Promise<void> {
  const deadlineMs = p.spec.deadline * 1000;
  const toDeadline = deadlineMs - Date.now();
  if (toDeadline > 0) log(`  ${primary} is cut off until its guard restores the link, in ${(toDeadline / 1000).toFixed(0)} s`);
  await wait(`${primary}'s guard to restore the link (deadline ${p.deadline})`, Math.max(0, toDeadline) + RESTORE_GRACE_MS, async () => {
    // Before the deadline the guard restores once the server stopped (fenced): SSH answering says so.
    if (Date.now() < deadlineMs && !(await tcpAnswers(p.reach.address, p.reach.sshPort, 1500))) return `deadline in ${((deadlineMs - Date.now()) / 1000).toFixed(0)} s`;
    try {
      const job = await reader.read(primary, jobFact(p.spec.id), 10);
      return job.state === 'exited' ? undefined : `guard job ${job.state}`;
    } catch (e) {
      reader.forget(primary);
      return `SSH to ${primary}: ${e instanceof Error ? e.message : String(e)}`;
    }
  });
  const done = await waitDetached(jobExec(reader, primary), p.spec.id, { timeoutMs: 10_000 });
  p.log = { ...p.log, ...parseGuardLog(done.outputTail) };
  if (done.exitCode !== 0 || !p.log.restoredAt) throw new PhaseFailure(`${primary}: the partition guard ended with exit ${done.exitCode}: ${done.outputTail.trim().split('\n').slice(-2).join(' | ')}`);
  const present = await reader.exec(primary, cutPresentCommand(p.spec), { become: true, check: true });
  if (present.stdout.includes('cut')) throw new PhaseFailure(`${primary}: the guard logged its restore but rules of the cut are still in place`);
  const early = p.log.pgStoppedAt ? `, ${((p.spec.deadline * 1000 - p.log.restoredAt) / 1000).toFixed(0)} s before its deadline: PostgreSQL on ${primary} had stopped (fenced)` : ' (its deadline)';
  p.restored_verified = `guard restored the link at ${new Date(p.log.restoredAt).toISOString()}${early}; SSH answers again; no rule of the cut left`;
  log(`  ${p.restored_verified}`);
}

function tcpAnswers(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.connect(port, host);
  });
}

/**
 * Who is writable, every half second, on the hosts the drill can reach: the moment a standby
 * became writable is the promotion, the moment the intended primary became writable again during
 * the failback is the switchover. Read by the drill itself, not taken from a runbook's log.
 */
class RoleWatcher {
  readonly events: Array<{ at: number; host: string; writable: boolean }> = [];
  #running = false;
  #loop: Promise<void> | undefined;

  constructor(
    private readonly reader: ClusterReader,
    private readonly nodes: string[],
    private readonly skip: ReadonlySet<string>,
  ) {}

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = (async () => {
      const last = new Map<string, boolean>();
      while (this.#running) {
        const t = Date.now();
        await Promise.all(
          this.nodes.filter((n) => !this.skip.has(n)).map(async (host) => {
            const s = await this.reader.status(host, 5).catch(() => undefined);
            const w = Boolean(s?.up && !s.inRecovery);
            if (s && last.get(host) !== w) {
              last.set(host, w);
              this.events.push({ at: t, host, writable: w });
            }
          }),
        );
        await new Promise((r) => setTimeout(r, Math.max(0, t + 500 - Date.now())));
      }
    })();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }

  markers(primary: string, faultAt: number, failback?: { startedAt: number; endedAt: number }): Marker[] {
    const out: Marker[] = [];
    const promote = this.events.find((e) => e.at >= faultAt && e.writable && e.host !== primary);
    if (promote) out.push({ name: 'promote', at: promote.at, detail: `${promote.host} writable` });
    if (failback) {
      const back = this.events.find((e) => e.at >= failback.startedAt && e.writable && e.host === primary);
      if (back) out.push({ name: 'switchover', at: back.at, detail: `${primary} writable again` });
    }
    return out;
  }
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
  const p = snaps.find((s) => s.host === primary)?.status;
  const timeline = p?.up ? p.timeline : -1;
  const tl: string[] = [];
  for (const s of standbys.filter((n) => nodes.includes(n))) {
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
