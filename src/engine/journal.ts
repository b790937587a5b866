/**
 * The run journal: `.runbook/runs/RUN_ID.jsonl` in the current directory, one masked JSON line per
 * event (start, each step@host result, end). Written synchronously so that a SIGKILL loses at most
 * the line being written; --resume reads it back.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { BadInputError } from '../errors.js';
import { maskDeep } from '../shell/secret.js';
import type { StepResult } from './results.js';
import type { ActionStarted } from './context.js';
import type { ActionView } from './actions.js';

export type JournalEntry =
  | { type: 'start'; at: string; runId: string; runbook: string; hash: string; source: string; params: Record<string, unknown>; hosts: string[]; checkMode: boolean }
  | { type: 'resume'; at: string; runId: string }
  | ({ type: 'action'; at: string } & ActionStarted)
  | { type: 'planned'; at: string; stepId: string; host: string; summary: string; actions: ActionView[]; ownApply?: boolean }
  | ({ type: 'result'; at: string } & StepResult)
  | { type: 'end'; at: string; exitCode: number; interrupted: boolean };

export const runsDir = (cwd = process.cwd()) => join(cwd, '.runbook', 'runs');

/** Sortable by time, unique enough for one machine. */
export function newRunId(now = new Date()): string {
  return `${now.toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${randomBytes(3).toString('hex')}`;
}

export class Journal {
  readonly path: string;
  constructor(readonly runId: string, cwd = process.cwd()) {
    const dir = runsDir(cwd);
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, `${runId}.jsonl`);
  }

  write(entry: { type: JournalEntry['type'] } & Record<string, unknown>): void {
    appendFileSync(this.path, `${JSON.stringify(maskDeep({ ...entry, at: new Date().toISOString() }))}\n`);
  }
}

/** The id of the newest run in the journal directory ("last"). */
export function lastRunId(cwd = process.cwd()): string {
  const dir = runsDir(cwd);
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.jsonl')) : [];
  if (files.length === 0) throw new BadInputError(`--resume last: no run journal in ${dir}`);
  files.sort((a, b) => statSync(join(dir, a)).mtimeMs - statSync(join(dir, b)).mtimeMs || a.localeCompare(b));
  return files[files.length - 1]!.replace(/\.jsonl$/, '');
}

export function readJournal(runId: string, cwd = process.cwd()): JournalEntry[] {
  if (!/^[\w.-]+$/.test(runId)) throw new BadInputError(`--resume ${runId}: not a run id`);
  const file = join(runsDir(cwd), `${runId}.jsonl`);
  if (!existsSync(file)) throw new BadInputError(`--resume ${runId}: no journal ${file}`);
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as JournalEntry];
      } catch {
        return []; // a line cut by SIGKILL
      }
    });
}

/** step@host pairs a journal records as completed (the last result of each pair wins). */
export function completedPairs(entries: JournalEntry[]): Set<string> {
  const last = new Map<string, StepResult['status']>();
  for (const e of entries) if (e.type === 'result' && !e.handler) last.set(`${e.stepId}@${e.host}`, e.status);
  return new Set([...last].filter(([, s]) => s === 'ok' || s === 'changed' || s === 'skipped').map(([k]) => k));
}
