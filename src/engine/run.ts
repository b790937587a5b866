/**
 * `runbook run`: load the runbook and inventory, resolve params, refuse what needs approval
 * (all before any host is touched), then schedule, journal, report, and return the exit code.
 */
import { performance } from 'node:perf_hooks';
import { BadInputError, ConfirmationError, ExitCode, UnreachableError } from '../errors.js';
import { fact } from './define.js';
import { maskSecrets } from '../shell/secret.js';
import type { Inventory, InventoryHost } from '../inventory/types.js';
import type { ExecOptions, HostConnection, Transport } from '../transport/types.js';
import type { Command } from '../shell/command.js';
import type { Ui } from '../ui/types.js';
import { renderJson, type RunReport, writeReportFile } from '../report/json.js';
import { type EngineOptions, FactCache, HostPool, Interrupt, type Engine } from './context.js';
import * as inv from '../inventory/index.js';
import { ClusterLock, LOCK_ENV, lockHolder } from '../core/lock.js';
import { Journal, completedPairs, lastRunId, newRunId, readJournal } from './journal.js';
import { loadRunbook, type LoadedRunbook } from './loader.js';
import { resolveParams, uncarriable } from './params.js';
import { loadStateMemo, saveStateMemo } from './state-memo.js';
import { exitCodeOf, recap, type StepResult } from './results.js';
import { Scheduler, allSteps, selectedByTags, type ResumeState } from './scheduler.js';
import type { HostView, RunContext, RunbookDef } from './types.js';

export interface RunCliOptions {
  inventory: string[];
  limit?: string;
  extraVars: string[];
  secrets: string[];
  check: boolean;
  diff: boolean;
  yes: boolean;
  approve: string[];
  step: boolean;
  /** Hosts in parallel; undefined: all selected hosts. */
  forks?: number;
  reports: string[];
  resume?: string;
  knownHosts?: string;
  /** Connection flags (-u, -b, --private-key, --accept-new-host-keys…): they win over the inventory. */
  overrides?: inv.ConnectionOverrides;
  /** How to load the inventory (vault passwords). */
  loadOptions?: inv.LoadOptions;
  tags: string[];
  skipTags: string[];
  /** --max-output MB: output kept per command and stream. */
  maxOutputMb?: number;
  /** --break-lock RUN_ID: remove that (dead) run's cluster lock first. */
  breakLock?: string;
  /** -v count: commands, their output, SSH events (transport/verbose.ts). */
  verbose?: number;
}

/** How long running remote commands get to finish after Ctrl-C before connections are dropped. */
const INTERRUPT_DEADLINE_MS = 10_000;

export function hostView(h: InventoryHost): HostView {
  const addr = h.vars.ansible_host;
  return { name: h.name, vars: h.vars, groups: h.groups, address: typeof addr === 'string' ? addr : h.name };
}

export interface Prepared {
  loaded: LoadedRunbook;
  inventory: Inventory;
  run: RunContext<any>;
  params: Record<string, unknown>;
  hostByName(name: string): HostView;
  connect(name: string): Promise<HostConnection>;
  /** Close every connection the transport made (if it was ever loaded). */
  closeTransport(): Promise<void>;
}

/** Everything that needs no host: runbook, inventory, selection, params, validate. */
export async function prepare(ref: string, o: Pick<RunCliOptions, 'inventory' | 'limit' | 'extraVars' | 'secrets' | 'knownHosts' | 'check' | 'maxOutputMb' | 'overrides' | 'loadOptions' | 'verbose'>, previousParams?: Record<string, unknown>): Promise<Prepared> {
  const loaded = await loadRunbook(ref);
  const def = loaded.def;
  if (o.inventory.length === 0) throw new BadInputError('no inventory: give -i FILE');
  const inventory = await inv.loadInventory(o.inventory, o.loadOptions);
  const pattern = o.limit ?? def.hosts;
  const selected = inv.selectHosts(inventory, pattern);
  if (selected.length === 0) throw new BadInputError(`no host matches ${pattern ? `"${pattern}"` : 'the inventory'}`);
  const views = new Map([...inventory.hosts.values()].map((h) => [h.name, hostView(h)]));
  const hosts = selected.map((h) => views.get(h.name)!);
  const params = resolveParams(def.params, {
    extraVars: o.extraVars,
    secrets: o.secrets,
    groupVars: inventory.groups.get('all')?.vars ?? {},
    hostVars: hosts.map((h) => h.vars),
    ...(previousParams ? { previous: previousParams } : {}),
  });
  const run: RunContext<any> = {
    params,
    hosts,
    checkMode: o.check,
    now: () => new Date(),
    select: (p) => inv.selectHosts(inventory, p).map((h) => views.get(h.name)!),
  };
  // A value no command can carry is bad input now, not a failure at its step after others changed hosts.
  const uncarried = hosts.flatMap((h) => Object.entries(h.vars).flatMap(([k, v]) => {
    const why = uncarriable(v);
    return why ? [`host ${h.name}: var ${k}: ${why}`] : [];
  }));
  if (uncarried.length) throw new BadInputError(`inventory values no command can carry:\n  - ${uncarried.slice(0, 20).join('\n  - ')}`);
  const problems = def.validate?.(params, run) ?? [];
  if (problems.length) throw new BadInputError(`runbook ${def.id}: invalid params:\n  - ${problems.map(maskSecrets).join('\n  - ')}`);
  // One transport for the run, loaded on first connect (list/describe never load ssh2); memoise the
  // promise, or concurrent first connects would each make one.
  let transport: Promise<Transport> | undefined;
  const getTransport = () => (transport ??= import('../transport/hosts.js').then((m) =>
    m.hostTransport({ ...(o.maxOutputMb ? { maxOutputBytes: Math.round(o.maxOutputMb * (1 << 20)) } : {}), verbose: o.verbose ?? 0 }),
  ));
  return {
    loaded,
    inventory,
    run,
    params,
    hostByName: (name) => {
      const v = views.get(name);
      if (!v) throw new BadInputError(`host ${name} is not in the inventory`);
      return v;
    },
    closeTransport: async () => {
      if (transport) await (await transport).closeAll();
    },
    connect: async (name) => {
      const h = inventory.hosts.get(name);
      if (!h) throw new BadInputError(`host ${name} is not in the inventory`);
      const spec = inv.connectionSpec(h, { ...o.overrides, ...(o.knownHosts ? { knownHostsFile: o.knownHosts } : {}) });
      return (await getTransport()).connect(spec);
    },
  };
}

/** Steps that will ask for confirmation on at least one selected host and lack an approval. */
export function unapprovedDestructiveSteps(def: RunbookDef<any, any>, run: RunContext<any>, o: Pick<RunCliOptions, 'yes' | 'approve' | 'tags' | 'skipTags'>): string[] {
  if (o.yes) return [];
  const selected = new Set(run.hosts.map((h) => h.name));
  return allSteps(def)
    .concat(def.handlers ?? [])
    .filter((s) => s.confirm?.destructive && !o.approve.includes(s.id) && selectedByTags(s, o.tags, o.skipTags))
    .filter((s) => {
      if (typeof s.on !== 'string') return true;
      return run.select(s.on).some((h) => selected.has(h.name));
    })
    .map((s) => s.id);
}

export async function runRunbook(ref: string, o: RunCliOptions, makeUi: (interactive: boolean) => Promise<Ui>): Promise<number> {
  const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  if (o.step && !interactive) throw new BadInputError('--step needs a terminal (it asks before every changing step)');
  if (o.forks !== undefined && (!Number.isInteger(o.forks) || o.forks < 1)) throw new BadInputError('--forks must be a positive integer');
  const reports = o.reports.map(parseReportArg);

  let resume: ResumeState | undefined;
  let resumedFrom: ReturnType<typeof readJournal> | undefined;
  if (o.resume) {
    const runId = o.resume === 'last' ? lastRunId() : o.resume;
    resumedFrom = readJournal(runId);
    resume = { runId, completed: completedPairs(resumedFrom) };
  }
  const start = resumedFrom?.find((e) => e.type === 'start');
  const prep = await prepare(ref, o, start && start.type === 'start' ? start.params : undefined);
  const def = prep.loaded.def;
  if (start && start.type === 'start') {
    if (start.hash !== prep.loaded.hash)
      throw new BadInputError(`--resume ${resume!.runId}: the runbook changed since that run (${prep.loaded.file}); start a new run instead`);
    if (start.runbook !== def.id) throw new BadInputError(`--resume ${resume!.runId}: that run was of runbook ${start.runbook}, not ${def.id}`);
  }

  // Refuse before connecting: no terminal to ask and no approval for a destructive step.
  if (!o.check && !interactive) {
    const missing = unapprovedDestructiveSteps(def, prep.run, o);
    if (missing.length)
      throw new ConfirmationError(
        `step${missing.length > 1 ? 's' : ''} ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} destructive and needs confirmation, but there is no terminal: ` +
          `pass --yes (or --approve ${missing[0]}) to approve it. No host was touched.`,
      );
  }

  const ui = await makeUi(interactive);
  const runId = resume?.runId ?? newRunId();
  const interrupt = new Interrupt();
  const pool = new HostPool(prep.connect, interrupt);

  const options: EngineOptions = {
    checkMode: o.check,
    diff: o.diff,
    forks: o.forks ?? Math.max(1, prep.run.hosts.length),
    stepMode: o.step,
    approvals: { all: o.yes, steps: new Set(o.approve) },
    tags: o.tags,
    skipTags: o.skipTags,
  };
  let journal: Journal | undefined;
  const engine: Engine = {
    run: prep.run,
    pool,
    factCache: new FactCache(),
    options,
    interrupt,
    state: new Map(),
    hostByName: prep.hostByName,
    // Written before the action starts: after a kill -9 the journal says what may have run.
    onAction: (e) => journal?.write({ type: 'action', ...e }),
    onPlanned: (e) => journal?.write({ type: 'planned', ...e }),
    ...(o.check ? { wouldChange: new Set<string>() } : {}),
    // What the last run of this runbook left per host: a guess of what to read ahead, no more.
    stateGuess: loadStateMemo(def.id, prep.run.hosts),
  };
  const scheduler = new Scheduler(engine, def, ui, { onResult: (r) => journal?.write({ type: 'result', ...r }) }, resume);

  // One changing run per cluster: refuse (exit 11) before any step when another live run holds a host.
  let lock: ClusterLock | undefined;
  if (!o.check) {
    try {
      // Not through pool.exec: the lock must still be released after Ctrl-C.
      const direct = { exec: async (h: string, c: Command, x?: ExecOptions) => (await pool.connection(h)).exec(c, x) };
      lock = await ClusterLock.acquire(direct, prep.run.hosts.map((h) => h.name), lockHolder(runId, def.id), {
        ...(o.breakLock ? { breakRunId: o.breakLock } : {}),
        ...(process.env[LOCK_ENV] ? { heldBy: process.env[LOCK_ENV] } : {}),
        log: (line) => ui.info(line),
        // The lock goes at the head of each host's first batch of reads (one round trip for both);
        // that host's reads are kept only when the lock was taken. A batch that fails as a whole
        // (sudo, an interrupt) leaves the lock to a plain exec, as without the batch.
        attemptAll: (command, hosts) => {
          const sent = scheduler.firstReads({
            hosts,
            fact: () => fact({ name: 'run lock', command, become: true, cache: false, parse: (r) => r }),
            accept: (_h, r) => r.exitCode === 0 && /^acquired /m.test(r.stdout),
          });
          return new Map(hosts.map((h) => [h, sent.get(h)!.catch((e: unknown) => (e instanceof UnreachableError ? Promise.reject(e) : direct.exec(h, command, { become: true, timeoutSec: 30 })))]));
        },
      });
    } catch (error) {
      await prep.closeTransport();
      throw error;
    }
  }

  if (lock) {
    const held = lock;
    engine.runLock = { releaseCommand: (h) => held.releaseCommandFor(h), released: (h, r) => held.releasedOn(h, r), beforeApply: () => held.retake() };
  }

  journal = new Journal(runId);
  if (resume) journal.write({ type: 'resume', runId });
  else
    journal.write({ type: 'start', runId, runbook: def.id, hash: prep.loaded.hash, source: prep.loaded.file, params: prep.params, hosts: prep.run.hosts.map((h) => h.name), checkMode: o.check });
  ui.info(`run ${runId}: ${def.id} on ${prep.run.hosts.map((h) => h.name).join(', ')}${o.check ? ' (check mode)' : ''}${resume ? ` (resuming)` : ''}`);

  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  let onSignal: (() => void) | undefined;
  const interrupted = new Promise<void>((resolve) => {
    onSignal = () => {
      if (interrupt.interrupted) return;
      interrupt.interrupted = true;
      ui.info(`interrupted: no new command starts; waiting up to ${INTERRUPT_DEADLINE_MS / 1000}s for running ones`);
      setTimeout(resolve, INTERRUPT_DEADLINE_MS).unref();
    };
  });
  process.on('SIGINT', onSignal!);
  process.on('SIGTERM', onSignal!);
  let results: StepResult[];
  try {
    await Promise.race([scheduler.run(), interrupted]);
    results = scheduler.results;
  } finally {
    process.off('SIGINT', onSignal!);
    process.off('SIGTERM', onSignal!);
    await lock?.release().catch(() => undefined);
    await prep.closeTransport(); // closes every connection the pool opened (closing twice waits on a dead socket)
    saveStateMemo(def.id, prep.run.hosts, engine.state);
  }
  const durationMs = performance.now() - t0;
  const exitCode = exitCodeOf(results, { checkMode: o.check, interrupted: interrupt.interrupted });
  journal.write({ type: 'end', exitCode, interrupted: interrupt.interrupted });
  const rows = recap(results, prep.run.hosts.map((h) => h.name));
  ui.recap(rows, results, durationMs);

  const report: RunReport = {
    runId,
    runbook: { id: def.id, description: def.description, hash: prep.loaded.hash },
    mode: o.check ? 'check' : 'apply',
    startedAt,
    durationMs,
    exitCode,
    interrupted: interrupt.interrupted,
    params: prep.params,
    recap: rows,
    results,
  };
  for (const r of reports) {
    const text = r.kind === 'json' ? renderJson(report) : (await import('../report/junit.js')).renderJunit(report);
    writeReportFile(r.path, text);
  }
  if (exitCode !== ExitCode.ok) ui.info(`exit code ${exitCode}; journal ${journal.path}`);
  return exitCode;
}

export function parseReportArg(arg: string): { kind: 'json' | 'junit'; path: string } {
  const m = /^(json|junit)=(.+)$/.exec(arg);
  if (!m) throw new BadInputError(`--report ${arg}: expected json=PATH or junit=PATH`);
  return { kind: m[1] as 'json' | 'junit', path: m[2]! };
}
