/**
 * The interactive UI (a TTY): listr2's default renderer, one task list per step — check, confirm,
 * apply — with hosts as concurrent subtasks. Questions are asked only in the confirm stage, which
 * runs alone, through @inquirer/prompts and listr2's inquirer adapter. listr2 and the prompts are
 * loaded only here.
 */
import type { HostRecap, StepResult } from '../engine/results.js';
import { maskSecrets } from '../shell/secret.js';
import { type Ask, type Stage, type Ui, recapTable } from './types.js';

type ListrMod = typeof import('listr2');

export async function createListrUi(): Promise<Ui> {
  const listr = await import('listr2');
  return new ListrUi(listr);
}

class ListrUi implements Ui {
  readonly interactive = true;
  constructor(private readonly l: ListrMod) {}

  info(line: string): void {
    process.stdout.write(`${maskSecrets(line)}\n`);
  }

  async runStep(title: string, stages: Stage[], forks: number): Promise<void> {
    const { Listr } = this.l;
    const common = { exitOnError: false, registerSignalListeners: false } as const;
    const persistent = { persistentOutput: true, outputBar: Infinity } as const;
    const root = new Listr(
      [
        {
          title,
          task: (_ctx: unknown, task: any) =>
            task.newListr(
              stages.map((stage) =>
                stage.kind === 'gate'
                  ? {
                      title: stage.title,
                      enabled: () => stage.needed(),
                      rendererOptions: persistent,
                      task: async (_c: unknown, t: any) => {
                        const lines: string[] = [];
                        const log = (l: string) => {
                          lines.push(maskSecrets(l));
                          t.output = lines.join('\n');
                        };
                        const ask: Ask = async (q) => {
                          const [{ ListrInquirerPromptAdapter }, { select }] = await Promise.all([
                            import('@listr2/prompt-adapter-inquirer'),
                            import('@inquirer/prompts'),
                          ]);
                          try {
                            return String(await t.prompt(ListrInquirerPromptAdapter).run(select, { message: q.message, choices: q.choices }));
                          } catch {
                            return 'no'; // Ctrl-C at a prompt (ExitPromptError) declines
                          }
                        };
                        await stage.run(ask, { log });
                      },
                    }
                  : {
                      title: stage.title,
                      task: (_c: unknown, t: any) =>
                        t.newListr(
                          stage.tasks().map((ht) => ({
                            title: ht.host,
                            rendererOptions: persistent,
                            task: async (_c2: unknown, h: any) => {
                              const lines: string[] = [];
                              const r = await ht.run({
                                log: (l) => {
                                  lines.push(maskSecrets(l));
                                  h.output = lines.join('\n');
                                },
                              });
                              h.title = `${ht.host}: ${maskSecrets(r.text)}`;
                              if (r.failed) throw new Error(maskSecrets(r.text));
                            },
                          })),
                          { ...common, concurrent: forks },
                        ),
                    },
              ),
              { ...common, concurrent: false, rendererOptions: { collapseSubtasks: false } },
            ),
        },
      ],
      { ...common, rendererOptions: { collapseSubtasks: false, collapseErrors: false } },
    );
    await root.run();
  }

  recap(rows: HostRecap[], _results: StepResult[], durationMs: number): void {
    process.stdout.write(`\n${recapTable(rows, durationMs)}\n`);
  }
}
