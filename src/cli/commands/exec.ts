/**
 * `runbook exec -i INV [--limit P] [--become] [--forks N] -- 'SHELL LINE'`: one shell line on the
 * selected hosts in parallel, printed like Ansible's ad-hoc output: a header per host, then its
 * stdout and stderr verbatim, then a summary. An unreachable host never holds up the others.
 */
import chalk from 'chalk';
import type { Command as Program } from 'commander';
import { BadInputError, ExitCode, InterruptedError, RunbookError, UnreachableError } from '../../errors.js';
import { connectionSpec, selectHosts, type ConnectionSpec } from '../../inventory/index.js';
import { raw } from '../../shell/command.js';
import { toWire } from '../../shell/wire.js';
import { maskSecrets } from '../../shell/secret.js';
import { hostTransport } from '../../transport/hosts.js';
import { CommandFailedError, type ExecResult, type Transport } from '../../transport/types.js';
import { connectionOverrides, formatHostList, hostsOptions, limitPattern, loadInventoryFrom, type HostsFlags } from '../options.js';

interface ExecCliOptions extends HostsFlags {
  forks: number;
  timeout?: number;
  maxOutput?: number;
}

type HostOutcome =
  | { host: string; status: 'changed' | 'failed'; result: ExecResult; note?: string }
  | { host: string; status: 'failed'; result?: ExecResult; note: string }
  | { host: string; status: 'unreachable'; note: string };


function positiveNumber(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) throw new BadInputError(`exec: ${name} must be a number > 0, got "${value}"`);
    return n;
  };
}

function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new BadInputError(`exec: ${name} must be a whole number ≥ 1, got "${value}"`);
    return n;
  };
}

export function registerExec(program: Program): void {
  hostsOptions(program.command('exec'), 'hosts at a time (default 10)')
    .description("Run one shell line on the selected hosts in parallel (like Ansible's ad-hoc shell)")
    .usage("-i INVENTORY [options] -- 'SHELL LINE'")
    .argument('<line...>', 'the shell line, after --; words are joined with spaces as ssh does')
    .option('--timeout <sec>', 'kill the command on the host after this many seconds', positiveInt('--timeout'))
    .option('--max-output <MB>', 'output kept per host and stream; the rest is cut with a note (default 8)', positiveNumber('--max-output'))
    .action(async (words: string[], options: ExecCliOptions) => {
      if (options.inventory.length === 0) throw new BadInputError('exec: give at least one -i PATH');
      const line = words.join(' ');
      if (line.trim() === '') throw new BadInputError("exec: give the shell line after --, e.g. runbook exec -i inv.yml -- 'uptime'");
      // A line no command can carry (NUL, too long) is bad input, found before any host is touched.
      toWire(raw(line), { ...(options.timeout !== undefined ? { timeoutSec: options.timeout } : {}) });
      const inventory = await loadInventoryFrom(options);
      const pattern = limitPattern(options.limit) ?? 'all';
      const hosts = selectHosts(inventory, pattern);
      if (hosts.length === 0) throw new BadInputError(`exec: no hosts match ${pattern}`);
      if (options.listHosts) {
        process.stdout.write(formatHostList(hosts, pattern));
        return;
      }
      const specs = hosts.map((h) => connectionSpec(h, connectionOverrides(options)));
      const transport = hostTransport({ ...(options.maxOutput ? { maxOutputBytes: Math.round(options.maxOutput * (1 << 20)) } : {}), verbose: options.verbose });
      await execOnHosts(transport, specs, line, {
        ...options,
        forks: options.forks ?? 10,
      });
    });
}

/** Run the line everywhere (forks at a time), print each host as it finishes, throw for the exit code. */
export async function execOnHosts(
  transport: Transport,
  specs: ConnectionSpec[],
  line: string,
  options: Pick<ExecCliOptions, 'forks' | 'timeout'>,
  out: (text: string) => void = (text) => process.stdout.write(text),
): Promise<void> {
  const started = Date.now();
  const outcomes: HostOutcome[] = [];
  const queue = [...specs];
  let interrupted = false;
  const worker = async () => {
    for (let spec = queue.shift(); spec; spec = queue.shift()) {
      const outcome = await runOnHost(transport, spec, line, options.timeout);
      if (interrupted) return; // reported below as stopped, not as unreachable
      outcomes.push(outcome);
      out(formatOutcome(outcome));
    }
  };
  // Ctrl-C: close every connection, which ends each remote command (its watchdog sees stdin end).
  let onSignal: (() => void) | undefined;
  const stopped = new Promise<void>((resolve) => {
    onSignal = () => {
      interrupted = true;
      queue.length = 0;
      resolve();
    };
  });
  process.once('SIGINT', onSignal!);
  process.once('SIGTERM', onSignal!);
  try {
    await Promise.race([Promise.all(Array.from({ length: Math.min(options.forks, specs.length) }, worker)), stopped]);
  } finally {
    process.off('SIGINT', onSignal!);
    process.off('SIGTERM', onSignal!);
    await transport.closeAll();
  }
  if (interrupted) {
    const done = new Set(outcomes.map((o) => o.host));
    const cut = specs.filter((s) => !done.has(s.name)).map((s) => s.name);
    out(`\ninterrupted: the command was stopped on ${cut.join(', ') || 'no host'} (its processes are killed with the connection)\n`);
    throw new InterruptedError(`exec: interrupted${cut.length ? ` (${cut.length} host(s) had not finished)` : ''}`);
  }
  const count = (s: HostOutcome['status']) => outcomes.filter((o) => o.status === s).length;
  const [ok, failed, unreachable] = [count('changed'), count('failed'), count('unreachable')];
  const seconds = ((Date.now() - started) / 1000).toFixed(2);
  out(`\n${specs.length} host${specs.length === 1 ? '' : 's'}: ${ok} ok, ${failed} failed, ${unreachable} unreachable (${seconds} s)\n`);
  // Unreachable wins: it says the run could not even look at some hosts.
  if (unreachable > 0) throw new RunbookError(`exec: ${unreachable} host(s) unreachable, ${failed} failed`, ExitCode.unreachable);
  if (failed > 0) throw new RunbookError(`exec: the command failed on ${failed} host(s)`, ExitCode.stepFailed);
}

async function runOnHost(transport: Transport, spec: ConnectionSpec, line: string, timeoutSec?: number): Promise<HostOutcome> {
  try {
    const connection = await transport.connect(spec);
    // The one place a user's free-form shell line becomes a Command: that is what raw() is for.
    const result = await connection.exec(raw(line), {
      ...(spec.become ? { become: true } : {}),
      ...(timeoutSec !== undefined ? { timeoutSec } : {}),
    });
    const ok = result.exitCode === 0 && !result.signal;
    return { host: spec.name, status: ok ? 'changed' : 'failed', result };
  } catch (error) {
    if (error instanceof UnreachableError) return { host: spec.name, status: 'unreachable', note: error.reason };
    // Its first line says what went wrong (sudo…); the output follows verbatim anyway.
    if (error instanceof CommandFailedError) return { host: spec.name, status: 'failed', result: error.result, note: error.message.split('\n')[0]! };
    return { host: spec.name, status: 'failed', note: error instanceof Error ? error.message : String(error) };
  }
}

/** Ansible ad-hoc style: `pg1 | CHANGED | rc=0`, then the output verbatim. */
export function formatOutcome(outcome: HostOutcome): string {
  if (outcome.status === 'unreachable') {
    return `${chalk.red(`${outcome.host} | UNREACHABLE! | ${maskSecrets(outcome.note)}`)}\n`;
  }
  const { result } = outcome;
  const fields = [outcome.host, outcome.status === 'changed' ? 'CHANGED' : 'FAILED'];
  if (result) {
    fields.push(result.signal ? `signal=${result.signal}` : `rc=${result.exitCode}`);
    if (result.timedOut) fields.push('timed out');
  }
  const header = fields.join(' | ');
  const colored = outcome.status === 'changed' ? chalk.yellow(header) : chalk.red(header);
  const body = [outcome.note ? `${maskSecrets(outcome.note)}\n` : '', result?.stdout ?? '', result?.stderr ?? '']
    .map((text) => (text && !text.endsWith('\n') ? `${text}\n` : text))
    .join('');
  return `${colored}\n${body}`;
}
