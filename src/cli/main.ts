/**
 * The CLI: one commander program, one file per command under commands/, and one top-level catch
 * that maps typed errors to exit codes. Commands throw; they never call process.exit.
 */
import type { Command as Program, CommanderError } from 'commander';
import { ExitCode, RunbookError } from '../errors.js';
import { maskSecrets } from '../shell/secret.js';

/** What `runbook --version` prints. */
export const VERSION = '0.1.0';

type Register = (program: Program) => void;

/**
 * Each command file and the commands it registers. Only the file of the command being run is
 * imported, so `runbook --version` or `list` load no transport, YAML or prompts (start-up time).
 * Help, no command or an unknown one load them all (commander lists and suggests from them).
 */
const COMMAND_FILES: { names: string[]; load: () => Promise<Register> }[] = [
  { names: ['run', 'plan', 'list', 'describe'], load: async () => (await import('./commands/run.js')).registerRunbookCommands },
  { names: ['exec'], load: async () => (await import('./commands/exec.js')).registerExec },
  { names: ['inventory'], load: async () => (await import('./commands/inventory.js')).registerInventory },
  { names: ['lab'], load: async () => (await import('./commands/lab.js')).registerLab },
  { names: ['drill'], load: async () => (await import('./commands/drill.js')).registerDrill },
  { names: ['check'], load: async () => (await import('./commands/check.js')).registerCheck },
  { names: ['init'], load: async () => (await import('./commands/init.js')).registerInit },
  { names: ['config'], load: async () => (await import('./commands/config.js')).registerConfig },
];

/** The registrars needed for argv: the command's own file, none for --version, all otherwise. */
function commandFilesFor(argv: string[]) {
  const first = argv[0];
  if (first === '--version' || first === '-V') return [];
  const own = COMMAND_FILES.find((f) => first !== undefined && f.names.includes(first));
  return own ? [own] : COMMAND_FILES;
}

export async function buildProgram(argv: string[]): Promise<Program> {
  const { Command: Program } = await import('commander');
  const program = new Program('runbook')
    .description('Declarative TypeScript runbooks over SSH: check, plan, confirm, apply, verify.')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) })
    .showHelpAfterError(false);
  for (const register of await Promise.all(commandFilesFor(argv).map((f) => f.load()))) register(program);
  return program;
}

/** Run the CLI; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  // `runbook --version` alone: printed as commander prints it, before commander or chalk load
  // (start-up: Node's own boot is most of what is left).
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    process.stdout.write(`${VERSION}\n`);
    return ExitCode.ok;
  }
  let commanderError: typeof CommanderError | undefined;
  try {
    const [{ applyColorPolicy }, commander] = await Promise.all([import('./color.js'), import('commander')]);
    commanderError = commander.CommanderError;
    applyColorPolicy();
    await (await buildProgram(argv)).parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.ok;
  } catch (error) {
    return reportError(error, commanderError);
  }
}

function reportError(error: unknown, commanderError: typeof CommanderError | undefined): number {
  if (commanderError && error instanceof commanderError) {
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
