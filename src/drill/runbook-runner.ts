/**
 * The drill runs failover and failback as a user would: the same CLI, unattended under the
 * drill's own approval (--yes), with a JSON report from which each step's time is read.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOCK_ENV } from '../core/lock.js';
import { BadInputError } from '../errors.js';
import type { ConnectionOverrides, LoadOptions } from '../inventory/index.js';
import type { RunReport } from '../report/json.js';
import { maskSecrets } from '../shell/secret.js';

const BIN = fileURLToPath(new URL('../../../bin/runbook.js', import.meta.url));

export interface RunbookRun {
  exitCode: number;
  report?: RunReport;
  /** The last lines of its output, for the failure message. */
  tail: string[];
  startedAt: number;
  endedAt: number;
}

export interface RunbookArgs {
  inventory: string[];
  secrets: string[];
  extraVars: string[];
  knownHosts?: string;
  /** The shared host flags (-u, -b, --private-key, vault…) as arguments for the child runs. */
  hostsArgs?: string[];
  /** The drill's run id: its cluster lock counts as the runbook's own (RUNBOOK_LOCK_HELD). */
  lockHeld?: string;
}

/**
 * Loads each runbook and resolves its params as its run after the fault will (inventory, -e,
 * --secret sources, its validate): a missing env var or a bad -e then fails the drill before
 * anything is touched, not the failover after the primary is already down.
 */
export async function checkRunbooksAccept(ids: string[], a: RunbookArgs, o: { overrides?: ConnectionOverrides; loadOptions?: LoadOptions }): Promise<void> {
  const { prepare } = await import('../engine/run.js');
  for (const id of ids) {
    try {
      await prepare(id, {
        inventory: a.inventory,
        extraVars: a.extraVars,
        secrets: a.secrets,
        check: false,
        ...(a.knownHosts ? { knownHosts: a.knownHosts } : {}),
        ...(o.overrides ? { overrides: o.overrides } : {}),
        ...(o.loadOptions ? { loadOptions: o.loadOptions } : {}),
      });
    } catch (error) {
      if (error instanceof BadInputError) throw new BadInputError(`drill: runbook ${id} would refuse its params after the fault, so nothing was touched: ${error.message}`);
      throw error;
    }
  }
}

export async function runRunbook(id: string, a: RunbookArgs, log: (line: string) => void, extra: string[] = []): Promise<RunbookRun> {
  const dir = await mkdtemp(join(tmpdir(), 'runbook-drill-'));
  const reportPath = join(dir, 'report.json');
  const args = [
    BIN, 'run', id,
    ...a.inventory.flatMap((i) => ['-i', i]),
    ...a.secrets.flatMap((s) => ['--secret', s]),
    ...a.extraVars.flatMap((e) => ['-e', e]),
    ...(a.knownHosts ? ['--known-hosts', a.knownHosts] : []),
    ...(a.hostsArgs ?? []),
    '--yes', '--report', `json=${reportPath}`,
    ...extra,
  ];
  const startedAt = Date.now();
  const tail: string[] = [];
  const exitCode = await new Promise<number>((resolve) => {
    // stdin closed and no TTY: the child runs unattended and can never wait on a prompt.
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0', ...(a.lockHeld ? { [LOCK_ENV]: a.lockHeld } : {}) } });
    const onLine = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line.trim()) continue;
        const masked = maskSecrets(line);
        log(`  ${id} │ ${masked}`);
        tail.push(masked);
        if (tail.length > 20) tail.shift();
      }
    };
    child.stdout.on('data', onLine);
    child.stderr.on('data', onLine);
    child.on('close', (code) => resolve(code ?? 1));
  });
  const endedAt = Date.now();
  let report: RunReport | undefined;
  try {
    report = JSON.parse(await readFile(reportPath, 'utf8')) as RunReport;
  } catch {
    // No report: the run failed before it started (bad input); the tail says why.
  }
  await rm(dir, { recursive: true, force: true });
  return report ? { exitCode, report, tail, startedAt, endedAt } : { exitCode, tail, startedAt, endedAt };
}

/** Why a run failed, in the words of its failed steps (the recap alone says nothing). */
export function failureSummary(id: string, run: RunbookRun): string {
  const failed = (run.report?.results ?? []).filter((r) => ['failed', 'blocked', 'unreachable'].includes(r.status));
  const detail = failed.length
    ? failed.map((r) => `${r.stepId}@${r.host} ${r.status}: ${firstLine(r.failure?.message ?? r.message)}${stderrHint(r.failure?.stderrTail)}`).join('; ')
    : run.tail.slice(-3).join(' | ');
  return `${id} failed (exit ${run.exitCode}): ${detail}`;
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? '';
}

/** The last meaningful stderr line: usually the cause ("password authentication failed …"). */
function stderrHint(tail?: string): string {
  const line = tail?.trim().split('\n').filter((l) => l.trim() && !/^\d+\/\d+ kB/.test(l)).pop();
  return line ? ` — ${line.trim()}` : '';
}

/** "runbook/step@host" → ms, for the drill report. */
export function stepTimings(id: string, run: RunbookRun): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of run.report?.results ?? []) out[`${id}/${r.stepId}@${r.host}`] = Math.round(r.durationMs);
  return out;
}

/**
 * Which evidence proved the old primary dead or fenced, in the failover's own words: the fence
 * step's plan data (`fence: { NODE: { evidence, action, reason } }`). Undefined without one.
 */
export function fenceEvidence(run: RunbookRun, oldPrimary: string): { verdict: string; detail: string } | undefined {
  for (const r of run.report?.results ?? []) {
    const fence = (r.data as { fence?: Record<string, { evidence?: string; action?: string; reason?: string }> } | undefined)?.fence;
    const mine = fence?.[oldPrimary];
    if (mine) return { verdict: mine.evidence ?? 'unknown', detail: `${r.stepId}@${r.host} ${r.status}: ${mine.action ?? ''}${mine.reason ? `: ${mine.reason}` : ''}` };
  }
  return undefined;
}
