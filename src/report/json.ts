/** The JSON run report: everything the recap says, per step@host, masked. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { maskDeep } from '../shell/secret.js';
import type { HostRecap, StepResult } from '../engine/results.js';

export interface RunReport {
  runId: string;
  runbook: { id: string; description: string; hash: string };
  mode: 'apply' | 'check';
  startedAt: string;
  durationMs: number;
  exitCode: number;
  interrupted: boolean;
  params: Record<string, unknown>;
  recap: HostRecap[];
  results: StepResult[];
}

export function renderJson(report: RunReport): string {
  return `${JSON.stringify(maskDeep(report), null, 2)}\n`;
}

export function writeReportFile(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}
