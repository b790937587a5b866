/**
 * `runbook plan`: per host, what each step would run, from facts read now. Once a step would change
 * a host, later steps' facts may be stale: they are marked as depending on an earlier step.
 */
import { maskSecrets } from '../shell/secret.js';
import { type ActionView, actionLine } from './actions.js';
import { limitConcurrency } from '../ui/plain-log.js';
import type { Engine } from './context.js';
import { checkStep } from './step-runner.js';
import { allSteps, selectedByTags } from './scheduler.js';
import type { RunbookDef } from './types.js';

export type PlanMark = 'will-change' | 'no-op' | 'depends' | 'skipped' | 'not-verified' | 'blocked' | 'failed';

export interface PlannedStep {
  stepId: string;
  title: string;
  mark: PlanMark;
  message: string;
  /** One line per action (actionLine). */
  commands: string[];
  actions: ActionView[];
  /** The step has a hand-written apply: it may run more than `actions`. */
  ownApply?: boolean;
  diff?: string;
  /** For 'depends': the earlier step whose change may alter this step's facts. */
  after?: string;
}

const MARKS: Record<import('./results.js').StepStatus, PlanMark> = {
  'would-change': 'will-change',
  changed: 'will-change',
  ok: 'no-op',
  skipped: 'skipped',
  unverified: 'not-verified',
  blocked: 'blocked',
  failed: 'failed',
  unreachable: 'failed',
};

export async function planHosts(engine: Engine, def: RunbookDef<any, any>): Promise<Map<string, PlannedStep[]>> {
  engine.wouldChange ??= new Set();
  const out = new Map<string, PlannedStep[]>(engine.run.hosts.map((h) => [h.name, []]));
  const steps = allSteps(def).filter((s) => selectedByTags(s, engine.options.tags, engine.options.skipTags));
  const hostsOf = new Map(
    steps.map((s) => {
      let names = engine.run.hosts.map((h) => h.name);
      if (typeof s.on === 'string') {
        const w = new Set(engine.run.select(s.on).map((h) => h.name));
        names = names.filter((n) => w.has(n));
      } else if (typeof s.on === 'function') {
        const w = new Set(s.on(engine.run));
        names = names.filter((n) => w.has(n));
      }
      return [s.id, s.runOnce ? names.slice(0, 1) : names];
    }),
  );
  await limitConcurrency(engine.run.hosts, engine.options.forks, async (h) => {
    const rows = out.get(h.name)!;
    let changedBy: string | undefined;
    for (const step of steps) {
      if (!hostsOf.get(step.id)!.includes(h.name)) continue;
      const c = await checkStep({ ...engine, run: { ...engine.run, checkMode: true } }, step, h.name);
      const r = 'done' in c ? c.done : undefined;
      if (!r) continue;
      const base = { stepId: step.id, title: step.title, message: maskSecrets(r.failure?.message ?? r.message), commands: r.commands, actions: r.actions ?? [], ...(r.ownApply ? { ownApply: true } : {}) };
      let mark: PlanMark = MARKS[r.status];
      if (changedBy && (mark === 'will-change' || mark === 'no-op' || mark === 'blocked')) mark = 'depends';
      rows.push({ ...base, mark, ...(r.diff ? { diff: r.diff } : {}), ...(mark === 'depends' ? { after: changedBy } : {}) });
      if (r.status === 'would-change' && !changedBy) changedBy = step.id;
      if (r.status === 'failed' || r.status === 'unreachable') break;
    }
  });
  return out;
}

export function formatPlan(plans: Map<string, PlannedStep[]>, showDiff: boolean): string {
  const lines: string[] = [];
  for (const [host, rows] of plans) {
    lines.push(`${host}`);
    for (const r of rows) {
      const note = r.mark === 'depends' ? ` (facts may change after ${r.after}; as of now: ${r.commands.length ? 'would change' : 'no-op'})` : '';
      lines.push(`  [${r.mark}] ${r.stepId}: ${r.message}${note}`);
      for (const a of r.actions) for (const [i, l] of actionLine(a).split('\n').entries()) lines.push(`      ${i === 0 ? '$ ' : '  '}${l}`);
      if (r.ownApply && r.mark !== 'no-op') lines.push("      (this step's own apply decides further commands; each is shown and journaled as it runs)");
      if (showDiff && r.diff) for (const d of r.diff.split('\n')) lines.push(`      ${d}`);
    }
  }
  return `${maskSecrets(lines.join('\n'))}\n`;
}

/** `runbook plan --report json=PATH`: the same plan as data. */
export function planJson(runbook: string, plans: Map<string, PlannedStep[]>): string {
  return `${maskSecrets(JSON.stringify({ runbook, hosts: Object.fromEntries(plans) }, null, 2))}\n`;
}
