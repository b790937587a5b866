/** A command guarded by `creates` (a path it makes) and/or `unless` (a check that says it is done). */
import { change, fact, noop } from '../engine/define.js';
import type { Operation, Plan } from '../engine/types.js';
import { type Command, sh } from '../shell/command.js';

export interface CommandArgs {
  command: Command;
  /** Skip when this path exists. */
  creates?: string;
  /** Skip when this command exits 0. */
  unless?: Command;
  become?: boolean | string;
  /** For messages. */
  summary?: string;
}

export interface CommandFacts {
  created: boolean;
  satisfied: boolean;
}

export function planCommand(a: CommandArgs, f: CommandFacts): Plan {
  if (a.creates && f.created) return noop(`${a.creates} exists`);
  if (a.unless && f.satisfied) return noop(`unless check passed: ${a.unless.toString()}`);
  return change(a.summary ?? `run ${a.command.toString()}`, [a.command]);
}

export function guardedCommand(a: CommandArgs): Operation<CommandFacts> {
  const b = a.become !== undefined ? { become: a.become } : {};
  return {
    facts: {
      created: fact({ name: `path.exists ${a.creates ?? '-'}`, ...b, command: a.creates ? sh`test -e ${a.creates}` : sh`false`, parse: (r) => r.exitCode === 0 }),
      satisfied: fact({ name: 'command.unless', ...b, command: a.unless ?? sh`false`, parse: (r) => r.exitCode === 0 }),
    },
    plan: (f) => planCommand(a, f),
  };
}
