/**
 * The unattended UI (no TTY, CI logs): one timestamped line per event, nothing redrawn, never
 * a prompt. listr2 is not even loaded.
 */
import chalk from 'chalk';
import { maskSecrets } from '../shell/secret.js';
import type { HostRecap, StepResult } from '../engine/results.js';
import { type Ask, type Stage, type Ui, recapTable } from './types.js';

export async function limitConcurrency<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  });
  await Promise.all(workers);
}

export class PlainLog implements Ui {
  readonly interactive = false;
  constructor(private readonly out: (s: string) => void = (s) => process.stdout.write(s)) {}

  #line(text: string): void {
    const ts = new Date().toISOString().slice(11, 23);
    for (const l of maskSecrets(text).split('\n')) this.out(`${ts} ${l}\n`);
  }

  info(line: string): void {
    this.#line(line);
  }

  async runStep(title: string, stages: Stage[], forks: number): Promise<void> {
    this.#line(`STEP ${title}`);
    const neverAsk: Ask = async (q) => {
      // Unreachable by construction (approvals are checked before connecting); never read stdin.
      throw new Error(`a confirmation is needed without a TTY: ${q.message}`);
    };
    for (const stage of stages) {
      if (stage.kind === 'gate') {
        if (stage.needed()) await stage.run(neverAsk, { log: (l) => this.#line(`  ${l}`) });
        continue;
      }
      await limitConcurrency(stage.tasks(), forks, async (t) => {
        const r = await t.run({ log: (l) => this.#line(`  ${t.host}: ${l}`) });
        const line = `  ${t.host}: ${r.text}`;
        this.#line(r.failed ? chalk.red(line) : line); // colour only when FORCE_COLOR asks (see cli/color.ts)
      });
    }
  }

  recap(rows: HostRecap[], _results: StepResult[], durationMs: number): void {
    this.#line(recapTable(rows, durationMs));
  }
}
