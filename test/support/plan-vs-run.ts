/**
 * "The plan's actions are the commands the run sends" (issue 11), reusable by every e2e case:
 * `runbook plan … --report json=…` first, then `runbook run …` in the same fresh directory, then
 * the run's journal (.runbook/runs/RUN.jsonl) read back. Two comparisons per step@host that ran:
 *  - `ran` vs `plannedInRun`: what the run started against the plan it showed at its confirmation
 *    (journal `planned` lines, written before the gate) — exact for every step;
 *  - `ran` vs `plan`: against `runbook plan` — exact for the first change on each host (later
 *    steps are marked `depends`: their facts change once the first one applies).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ActionView, followsPlan } from '../../src/engine/actions.js';
import type { JournalEntry } from '../../src/engine/journal.js';
import type { PlannedStep } from '../../src/engine/plan.js';

const cli = new URL('../../bin/runbook.js', import.meta.url).pathname;

export interface CliResult {
  code: number;
  out: string;
}

export function runCli(args: string[], o: { cwd: string; env?: Record<string, string>; timeoutMs?: number }): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { cwd: o.cwd, encoding: 'utf8', timeout: o.timeoutMs ?? 600_000, env: { ...process.env, CI: '1', ...o.env } }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, out: `${stdout}\n${stderr}` });
    });
  });
}

/** step@host → action texts (with the host prefix for another host): comparable lists. */
export type ActionsByPair = Map<string, string[]>;

const text = (a: ActionView) => `${a.kind}${a.host ? `@${a.host}` : ''}: ${a.text}`;

export interface PlanVsRun {
  plan: CliResult;
  run: CliResult;
  /** `runbook plan`: every step@host it marked, with its mark. */
  planned: Map<string, { mark: PlannedStep['mark']; actions: string[]; ownApply: boolean }>;
  /** Journal `planned` lines (the plan each step showed at its confirmation). */
  plannedInRun: ActionsByPair;
  /** Journal `action` lines (what each step started, in order). */
  ran: ActionsByPair;
  /** The same three as views (a choose keeps its alternatives): what `mismatches` compares. */
  views: { plan: Map<string, ActionView[]>; plannedInRun: Map<string, ActionView[]>; ran: Map<string, ActionView[]> };
  journal: JournalEntry[];
  cwd: string;
}

/**
 * `args` are the common flags (-i INV, -e …, --secret …); `runArgs` only for the run (e.g. --yes).
 * Run in a fresh directory, so the newest journal is this run's.
 */
export async function planVsRun(runbook: string, args: string[], o: { runArgs?: string[]; env?: Record<string, string>; cwd?: string } = {}): Promise<PlanVsRun> {
  const cwd = o.cwd ?? mkdtempSync(join(tmpdir(), 'rb-plan-vs-run-'));
  const report = join(cwd, 'plan.json');
  const plan = await runCli(['plan', runbook, ...args, '--report', `json=${report}`], { cwd, ...(o.env ? { env: o.env } : {}) });
  const planned = new Map<string, { mark: PlannedStep['mark']; actions: string[]; ownApply: boolean }>();
  const views: PlanVsRun['views'] = { plan: new Map(), plannedInRun: new Map(), ran: new Map() };
  if (plan.code === 0) {
    const json = JSON.parse(readFileSync(report, 'utf8')) as { hosts: Record<string, PlannedStep[]> };
    for (const [host, rows] of Object.entries(json.hosts))
      for (const r of rows) {
        planned.set(`${r.stepId}@${host}`, { mark: r.mark, actions: r.actions.map(text), ownApply: Boolean(r.ownApply) });
        views.plan.set(`${r.stepId}@${host}`, r.actions);
      }
  }
  const run = await runCli(['run', runbook, ...args, ...(o.runArgs ?? [])], { cwd, ...(o.env ? { env: o.env } : {}) });
  const dir = join(cwd, '.runbook', 'runs');
  const files = readdirSync(dir).filter((f) => f.endsWith('.jsonl')).sort();
  const journal = readFileSync(join(dir, files[files.length - 1]!), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as JournalEntry);
  const plannedInRun: ActionsByPair = new Map();
  const ran: ActionsByPair = new Map();
  for (const e of journal) {
    if (e.type === 'planned') {
      plannedInRun.set(`${e.stepId}@${e.host}`, e.actions.map(text));
      views.plannedInRun.set(`${e.stepId}@${e.host}`, e.actions);
    }
    if (e.type === 'action' && !e.handler) {
      const k = `${e.stepId}@${e.host}`;
      ran.set(k, [...(ran.get(k) ?? []), text(e.action)]);
      views.ran.set(k, [...(views.ran.get(k) ?? []), e.action]);
    }
  }
  return { plan, run, planned, plannedInRun, ran, views, journal, cwd };
}

/**
 * The pairs where what ran is not one complete path through what was planned: [] when the plan
 * told the truth. `against: 'run'` compares with the run's own confirmation plan, `'plan'` with
 * `runbook plan` (only pairs it marked will-change; the run's clock aside).
 */
export function mismatches(r: PlanVsRun, against: 'run' | 'plan'): Array<{ pair: string; planned: string[]; ran: string[] }> {
  const out: Array<{ pair: string; planned: string[]; ran: string[] }> = [];
  for (const [pair, ran] of r.views.ran) {
    let planned: ActionView[] | undefined;
    if (against === 'run') planned = r.views.plannedInRun.get(pair);
    else {
      if (r.planned.get(pair)?.mark !== 'will-change') continue;
      planned = r.views.plan.get(pair);
    }
    const norm = (vs: ActionView[]) => (against === 'plan' ? vs.map(viewWithoutStamps) : vs);
    const f = followsPlan(norm(planned ?? []), norm(ran));
    if (!f.complete || f.explained !== ran.length) out.push({ pair, planned: (planned ?? []).map(text), ran: ran.map(text) });
  }
  return out;
}

const STAMPS: Array<[RegExp, string]> = [
  [/\.old\.\d{8}T\d{6}/g, '.old.<timestamp>'],
  [/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z/g, '<timestamp>'],
];

/**
 * Text taken from the run's clock (the moved-aside data dir's `.old.<timestamp>`, the switchover
 * marker row's ISO time) is exact in each plan, but `runbook plan` and the run are two runs with
 * two clocks: compared without it.
 */
export function withoutStamps(lines: string[]): string[] {
  return lines.map((l) => STAMPS.reduce((x, [re, to]) => x.replace(re, to), l));
}

function viewWithoutStamps(v: ActionView): ActionView {
  const [t] = withoutStamps([v.text]);
  return {
    ...v,
    text: t!,
    ...(v.note !== undefined ? { note: withoutStamps([v.note])[0]! } : {}),
    ...(v.branches ? { branches: v.branches.map((b) => ({ when: withoutStamps([b.when])[0]!, actions: b.actions.map(viewWithoutStamps) })) } : {}),
    ...(v.actions ? { actions: v.actions.map(viewWithoutStamps) } : {}),
    ...(v.onFailure ? { onFailure: v.onFailure.map(viewWithoutStamps) } : {}),
  };
}
