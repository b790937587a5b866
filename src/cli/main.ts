/**
 * The CLI: one commander program, one file per command under commands/, and one top-level catch
 * that maps typed errors to exit codes. Commands throw; they never call process.exit.
 */
import { Command as Program, CommanderError } from 'commander';
import { ExitCode, RunbookError } from '../errors.js';
import { maskSecrets } from '../shell/secret.js';
import { applyColorPolicy } from './color.js';
import { registerCheck } from './commands/check.js';
import { registerDrill } from './commands/drill.js';
import { registerExec } from './commands/exec.js';
import { registerInventory } from './commands/inventory.js';
import { registerLab } from './commands/lab.js';
import { registerRunbookCommands } from './commands/run.js';

export function buildProgram(): Program {
  const program = new Program('runbook')
    .description('Declarative TypeScript runbooks over SSH: check, plan, confirm, apply, verify.')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) })
    .showHelpAfterError(false);
  registerRunbookCommands(program);
  registerExec(program);
  registerInventory(program);
  registerLab(program);
  registerDrill(program);
  registerCheck(program);
  return program;
}

/** Run the CLI; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  applyColorPolicy();
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.ok;
  } catch (error) {
    return reportError(error);
  }
}

function reportError(error: unknown): number {
  if (error instanceof CommanderError) {
    // --help and --version arrive here as "errors" with code 0.
    return error.exitCode === 0 ? ExitCode.ok : ExitCode.badInput;
  }
  if (error instanceof RunbookError) {
    process.stderr.write(`runbook: ${maskSecrets(error.message)}\n`);
    return error.exitCode;
  }
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(`runbook: internal error: ${maskSecrets(text)}\n`);
  return ExitCode.internal;
}
