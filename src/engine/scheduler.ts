/**
 * The linear strategy: steps in order; each step runs on its hosts concurrently (up to --forks) in
 * three stages — check (gather + plan), gate (show the exact commands, confirm once per step),
 * apply (+ verify). A host that fails leaves the run; the others go on unless anyErrorsFatal.
 * `serial` runs the whole runbook batch by batch. Handlers flush at the end of a phase and of the run.
 */
import { maskSecrets } from '../shell/secret.js';
import type { Stage, TaskIO, Ui } from '../ui/types.js';
import { resultLine } from '../ui/types.js';
import { actionLines } from './actions.js';
import type { Engine } from './context.js';
import { type Lead, prefetchChecks } from './prefetch.js';
import { type Alongside, planAlongside } from './alongside.js';
import type { ExecResult } from '../transport/types.js';
import type { StepResult } from './results.js';
import { applyStep, type Checked, checkStep, stepContext } from './step-runner.js';
import type { PhaseDef, RunbookDef, StepDef } from './types.js';

type AnyStep = StepDef<any, any>;

export interface SchedulerHooks {
  onResult(result: StepResult): void;
}

export interface ResumeState {
  runId: string;
  /** `${stepId}@${host}` of step@host that ended ok / changed / skipped in the resumed run. */
  completed: Set<string>;
}

const FAILED = new Set<StepResult['status']>(['failed', 'unreachable', 'blocked']);

export function isPhase(item: AnyStep | PhaseDef<any>): item is PhaseDef<any> {
  return 'phase' in item && Array.isArray((item as PhaseDef<any>).steps);
}

/** Every step of a runbook, phases flattened (for describe, approval checks, resume). */
export function allSteps(runbook: RunbookDef<any, any>): AnyStep[] {
  return runbook.steps.flatMap((i) => (isPhase(i) ? i.steps : [i]));
}

/** Whether --tags / --skip-tags keep a step. */
export function selectedByTags(step: AnyStep, tags?: string[], skipTags?: string[]): boolean {
  const own = step.tags ?? [];
  if (skipTags?.length && own.some((t) => skipTags.includes(t))) return false;
  if (tags?.length) return own.includes('always') || own.some((t) => tags.includes(t));
  return true;
}

/** Split hosts into `serial` batches (all at once without serial). */
export function batches<T>(hosts: T[], serial?: number): T[][] {
  if (!serial || serial <= 0 || serial >= hosts.length) return hosts.length ? [hosts] : [];
  const out: T[][] = [];
  for (let i = 0; i < hosts.length; i += serial) out.push(hosts.slice(i, i + serial));
  return out;
}

export class Scheduler {
  readonly results: StepResult[] = [];
  /** Set when the whole run must stop: anyErrorsFatal, a declined confirmation, an interrupt. */
  stopped = false;
  #active: string[] = [];
  #notified = new Map<string, Set<string>>();
  /** --step answered "continue without asking". */
  #stepModeOff = false;
  readonly #stepById: Map<string, AnyStep>;
  /** The steps in run order (tags applied), for prefetching the checks of the ones ahead. */
  readonly #order: AnyStep[];
  /** The fact cache's generation when the batch started: prefetch only while nothing applied. */
  #prefetchFrom: number | undefined;

  constructor(
    private readonly engine: Engine,
    private readonly runbook: RunbookDef<any, any>,
    private readonly ui: Ui,
    private readonly hooks: SchedulerHooks,
    private readonly resume?: ResumeState,
  ) {
    this.#stepById = new Map(allSteps(runbook).map((s) => [s.id, s]));
    const o = engine.options;
    this.#order = allSteps(runbook).filter((s) => selectedByTags(s, o.tags, o.skipTags));
  }

  /** Read ahead the facts of this step and the later ones (see prefetch.ts), while nothing applied. */
  async #prefetch(step: AnyStep): Promise<void> {
    const cache = this.engine.factCache;
    if (!cache || cache.generation !== this.#prefetchFrom) return;
    const ahead = this.#order.slice(Math.max(0, this.#order.indexOf(step)));
    await prefetchChecks(this.engine, ahead, (s) => this.#hostsFor(s), (host) => stepContext(this.engine, host));
  }

  /**
   * Before run(): the first batch of reads on every host, with `lead` (the run lock) at its head on
   * each of `lead.hosts` (see prefetch.ts Lead). run() then finds those facts in the cache. Resolves,
   * per lead host, to the lead's own result, or rejects with why its batch failed.
   */
  firstReads(lead: Lead): Map<string, Promise<ExecResult>> {
    const first = batches(this.engine.run.hosts.map((h) => h.name), this.runbook.serial)[0] ?? [];
    this.#active = [...first];
    const step = this.#order.find((s) => this.#hostsFor(s).length > 0);
    const all = prefetchChecks(this.engine, step ? this.#order.slice(this.#order.indexOf(step)) : [], (s) => this.#hostsFor(s), (host) => stepContext(this.engine, host), undefined, lead);
    return new Map(
      lead.hosts.map((h) => [
        h,
        all.then((m) => {
          const r = m.get(h);
          if (!r) throw new Error(`${h}: no first batch was sent`);
          if ('error' in r) throw r.error;
          return r.result;
        }),
      ]),
    );
  }

  async run(): Promise<StepResult[]> {
    for (const batch of batches(this.engine.run.hosts.map((h) => h.name), this.runbook.serial)) {
      if (this.stopped) break;
      this.#active = [...batch];
      this.#prefetchFrom = this.engine.factCache?.generation;
      for (const item of this.runbook.steps) {
        if (this.stopped || this.#active.length === 0) break;
        if (isPhase(item)) {
          for (const s of item.steps) if (!this.stopped) await this.runStep(s, false);
          await this.flushHandlers();
        } else await this.runStep(item, false);
      }
      await this.flushHandlers();
    }
    return this.results;
  }

  #record(r: StepResult): void {
    this.results.push(r);
    this.hooks.onResult(r);
    if (FAILED.has(r.status)) {
      this.#active = this.#active.filter((h) => h !== r.host);
      if (this.runbook.anyErrorsFatal || r.failure?.kind === 'interrupted') this.stopped = true;
    }
    if (r.failure?.kind === 'confirmation' || this.engine.interrupt.interrupted) this.stopped = true;
    const step = r.handler ? undefined : this.#stepById.get(r.stepId);
    if (step?.notify && (r.status === 'changed' || r.status === 'would-change'))
      for (const h of step.notify) {
        let set = this.#notified.get(h);
        if (!set) this.#notified.set(h, (set = new Set()));
        set.add(r.host);
      }
  }


  #hostsFor(step: AnyStep): string[] {
    let names: string[];
    if (typeof step.on === 'string') {
      const wanted = new Set(this.engine.run.select(step.on).map((h) => h.name));
      names = this.#active.filter((h) => wanted.has(h));
    } else if (typeof step.on === 'function') {
      const wanted = new Set(step.on(this.engine.run));
      names = this.#active.filter((h) => wanted.has(h));
    } else names = [...this.#active];
    return step.runOnce ? names.slice(0, 1) : names;
  }

  async flushHandlers(): Promise<void> {
    for (const handler of this.runbook.handlers ?? []) {
      const hosts = this.#notified.get(handler.id);
      if (!hosts || this.stopped) continue;
      this.#notified.delete(handler.id);
      const targets = this.#active.filter((h) => hosts.has(h));
      if (targets.length) await this.runStep(handler, true, targets);
    }
    this.#notified.clear();
  }

  async runStep(step: AnyStep, handler: boolean, only?: string[]): Promise<void> {
    const o = this.engine.options;
    if (!handler && !selectedByTags(step, o.tags, o.skipTags)) return;
    const hosts = only ?? this.#hostsFor(step);
    if (hosts.length === 0) return;
    if (!handler) await this.#prefetch(step);
    this.engine.alongside = handler ? undefined : this.#alongside(step);
    const checked = new Map<string, Checked>();
    const pending = () => [...checked].flatMap(([host, c]) => ('pending' in c ? [{ host, p: c.pending }] : []));
    const finish = (r: StepResult): { text: string; failed: boolean } => {
      if (handler) r.handler = true;
      this.#record(r);
      const diff = r.diff ? `\n${r.diff.trimEnd()}` : '';
      return { text: `${resultLine(r)}${diff}`, failed: FAILED.has(r.status) };
    };
    let approved = true;
    let declined: 'confirmation' | 'step' | undefined;

    const stages: Stage[] = [
      {
        kind: 'hosts',
        title: 'check',
        tasks: () =>
          hosts.map((host) => ({
            host,
            run: async () => {
              const done = this.#resumedDone(step, host);
              if (done) return finish(done);
              const c = await checkStep(this.engine, step, host);
              checked.set(host, c);
              if ('done' in c) return finish(c.done);
              return { text: `will change: ${maskSecrets(c.pending.plan.summary)}`, failed: false };
            },
          })),
      },
      {
        kind: 'gate',
        title: 'confirm',
        needed: () => pending().length > 0 && !this.stopped,
        run: async (ask, io) => {
          // Commands are logged as they run; shown here too when a question is about them.
          this.#showPlans(step, pending(), io, this.#willAsk(step));
          const verdict = await this.#gate(step, pending(), ask, io);
          approved = verdict === 'yes';
          if (verdict !== 'yes') declined = verdict;
        },
      },
      {
        kind: 'hosts',
        title: 'apply',
        tasks: () =>
          pending().map(({ host, p }) => ({
            host,
            run: async (io: TaskIO) => {
              if (this.stopped && !approved) return finish({ ...skeleton(step, host, p.started), status: 'skipped', message: 'run stopped' });
              if (!approved) {
                if (declined === 'step') return finish({ ...skeleton(step, host, p.started), status: 'skipped', message: 'skipped at the --step prompt' });
                const message = `confirmation declined for step ${step.id}`;
                return finish({ ...skeleton(step, host, p.started), status: 'failed', message, failure: { kind: 'confirmation', message } });
              }
              return finish(await applyStep(this.engine, step, host, p, io, handler));
            },
          })),
      },
    ];
    try {
      await this.ui.runStep(`${handler ? 'handler: ' : ''}${step.title} [${step.id}]`, stages, o.forks);
    } finally {
      this.engine.alongside = undefined;
    }
  }

  /** What rides along with this check step's reads (alongside.ts): the next check's reads, the lock's release. */
  #alongside(step: AnyStep): Alongside | undefined {
    // An early release needs the whole rest of the run known: one host batch, no handler waiting.
    const quiet = this.#notified.size === 0 && batches(this.engine.run.hosts, this.runbook.serial).length <= 1 && !this.resume;
    const rest = this.#order.slice(this.#order.indexOf(step) + 1);
    return planAlongside(this.engine, step, rest, (s) => this.#hostsFor(s), (host) => stepContext(this.engine, host), quiet);
  }

  /** A step with no plan of its own that already completed in the resumed run is not re-applied. */
  #resumedDone(step: AnyStep, host: string): StepResult | undefined {
    if (!this.resume || step.plan || step.operation) return undefined;
    if (!this.resume.completed.has(`${step.id}@${host}`)) return undefined;
    return { ...skeleton(step, host, Date.now()), status: 'skipped', message: `completed in run ${this.resume.runId}` };
  }

  #willAsk(step: AnyStep): boolean {
    const o = this.engine.options;
    if (!this.ui.interactive) return false;
    if (step.confirm) return !(o.approvals.all || o.approvals.steps.has(step.id));
    return o.stepMode && !this.#stepModeOff;
  }

  #showPlans(step: AnyStep, items: Array<{ host: string; p: { plan: import('./types.js').ChangePlan } }>, io: TaskIO, commands: boolean): void {
    for (const { host, p } of items) {
      if (commands) {
        io.log(`${host}: ${p.plan.summary}`);
        for (const l of actionLines(p.plan.actions)) for (const [i, line] of l.split('\n').entries()) io.log(`${host}:   ${i === 0 ? '$ ' : '  '}${line}`);
        if (step.apply) io.log(`${host}:   (this step's own apply decides further commands; each is shown as it runs)`);
      }
      if (this.engine.options.diff && p.plan.diff) for (const l of maskSecrets(p.plan.diff).split('\n')) io.log(`${host}:   ${l}`);
    }
  }

  async #gate(step: AnyStep, items: Array<{ host: string; p: { plan: import('./types.js').ChangePlan; ctx: any } }>, ask: (q: import('../ui/types.js').Question) => Promise<string>, io: TaskIO): Promise<'yes' | 'confirmation' | 'step'> {
    const o = this.engine.options;
    const approvedByFlag = o.approvals.all || o.approvals.steps.has(step.id);
    if (step.confirm) {
      if (approvedByFlag) {
        io.log(`approved by ${o.approvals.all ? '--yes' : `--approve ${step.id}`}`);
        return 'yes';
      }
      if (this.ui.interactive) {
        const msg = items.map(({ host, p }) => `${host}: ${step.confirm!.message(stepContext(this.engine, host), p.plan)}`).join('\n');
        const a = await ask({
          message: `${step.confirm.destructive ? 'DESTRUCTIVE: ' : ''}${maskSecrets(msg)}\nProceed with step ${step.id}?`,
          choices: [
            { value: 'yes', name: 'yes' },
            { value: 'no', name: 'no' },
          ],
        });
        return a === 'yes' ? 'yes' : 'confirmation';
      }
      if (step.confirm.destructive) return 'confirmation';
    }
    if (o.stepMode && !this.#stepModeOff && this.ui.interactive && !step.confirm) {
      const a = await ask({
        message: `Run step ${step.id} (${step.title}) on ${items.map((i) => i.host).join(', ')}?`,
        choices: [
          { value: 'yes', name: 'yes' },
          { value: 'no', name: 'no (skip this step)' },
          { value: 'continue', name: 'continue without asking' },
        ],
      });
      if (a === 'continue') this.#stepModeOff = true;
      return a === 'no' ? 'step' : 'yes';
    }
    return 'yes';
  }
}

function skeleton(step: AnyStep, host: string, started: number): Omit<StepResult, 'status' | 'message'> {
  return { stepId: step.id, title: step.title, host, commands: [], durationMs: Date.now() - started };
}
