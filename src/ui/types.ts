/**
 * What the engine needs from a user interface. The engine runs one step at a time as stages: host
 * stages run concurrently (up to --forks), gates run alone between them (the only place a question
 * may be asked, so a prompt never races concurrent tasks).
 */
import type { HostRecap, StepResult } from '../engine/results.js';

export interface TaskIO {
  /** A progress line (a command about to run, a retry…), already masked. */
  log(line: string): void;
}

export interface HostTask {
  host: string;
  /** Resolves to the line shown for this host; failed marks it red / as an error. */
  run(io: TaskIO): Promise<{ text: string; failed: boolean }>;
}

export interface Question {
  message: string;
  choices: Array<{ value: string; name: string }>;
}
export type Ask = (q: Question) => Promise<string>;

export type Stage =
  | { kind: 'hosts'; title: string; tasks: () => HostTask[] }
  | { kind: 'gate'; title: string; needed: () => boolean; run: (ask: Ask, io: TaskIO) => Promise<void> };

export interface Ui {
  readonly interactive: boolean;
  runStep(title: string, stages: Stage[], forks: number): Promise<void>;
  /** A run-level line (start, journal path, warnings). */
  info(line: string): void;
  recap(rows: HostRecap[], results: StepResult[], durationMs: number): void;
}

export const STATUS_LABEL: Record<StepResult['status'], string> = {
  ok: 'ok',
  changed: 'changed',
  'would-change': 'would change',
  skipped: 'skipped',
  unverified: 'not verified',
  failed: 'FAILED',
  unreachable: 'UNREACHABLE',
  blocked: 'BLOCKED',
};

export function resultLine(r: StepResult): string {
  return `${STATUS_LABEL[r.status]}: ${r.failure ? r.failure.message : r.message}`;
}

export function recapTable(rows: HostRecap[], durationMs: number): string {
  const w = Math.max(4, ...rows.map((r) => r.host.length));
  const lines = rows.map(
    (r) =>
      `${r.host.padEnd(w)}  ok=${r.ok} changed=${r.changed} would-change=${r.wouldChange} skipped=${r.skipped}${r.unverified ? ` not-verified=${r.unverified}` : ''} failed=${r.failed} unreachable=${r.unreachable} blocked=${r.blocked}`,
  );
  return `RECAP (${(durationMs / 1000).toFixed(2)}s)\n${lines.join('\n')}`;
}
