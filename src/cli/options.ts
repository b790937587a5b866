/** Options several commands share, declared once so they read and behave the same everywhere. */
import type { Command as Program } from 'commander';

/** commander reducer for a repeatable option: every occurrence is kept, in order. */
export const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** `-i, --inventory PATH`, repeatable, as in Ansible: a file or a directory. */
export function inventoryOption(command: Program): Program {
  return command.option('-i, --inventory <path>', 'inventory file or directory (repeatable)', collect, []);
}
