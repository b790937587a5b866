/**
 * The local transport (`ansible_connection=local`): the same wire form as over SSH (sudo for
 * become, `timeout` for timeouts, the watchdog that kills the command's process group when stdin
 * ends), run by /bin/sh on the controller instead of by a login shell behind sshd.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { ConnectionSpec } from '../inventory/types.js';
import type { Command } from '../shell/command.js';
import { channelRun, runOnChannel, type ExecChannel } from './channel.js';
import { CLOSED_BY_RUNBOOK, type ExecOptions, type ExecResult, type HostConnection, type Transport } from './types.js';
import { UnreachableError } from '../errors.js';

export interface LocalTransportOptions {
  maxOutputBytes?: number;
  /** -vvv: what the transport does, one line per event. */
  onEvent?: (host: string, event: string) => void;
}

/** A child process seen as an ssh2 channel: stdout is `data`, its exit and close are the channel's. */
class ProcessChannel extends EventEmitter implements ExecChannel {
  readonly stderr: ChildProcessWithoutNullStreams['stderr'];
  constructor(readonly child: ChildProcessWithoutNullStreams) {
    super();
    this.stderr = child.stderr;
    child.stdout.on('data', (d: Buffer) => this.emit('data', d));
    child.on('exit', (code, signal) => this.emit('exit', code, signal ?? undefined));
    child.on('close', () => this.emit('close'));
    // /bin/sh missing or not executable: say so as its stderr, exit 127 as a shell would.
    child.on('error', (error) => {
      child.stderr.emit('data', Buffer.from(`runbook: cannot run /bin/sh: ${error.message}\n`));
      this.emit('exit', 127);
      this.emit('close');
    });
    // The command may exit before reading its stdin (or the heartbeats): not an error of ours.
    child.stdin.on('error', () => undefined);
  }
  write(data: string): boolean {
    return this.child.stdin.write(data);
  }
  end(): void {
    this.child.stdin.end();
  }
  get writable(): boolean {
    return this.child.stdin.writable;
  }
}

class LocalConnection implements HostConnection {
  #closed = false;
  readonly #running = new Set<ChildProcessWithoutNullStreams>();

  constructor(
    readonly spec: ConnectionSpec,
    private readonly options: LocalTransportOptions,
  ) {}

  get lost(): boolean {
    return this.#closed;
  }

  async exec(command: Command, given: ExecOptions = {}): Promise<ExecResult> {
    if (this.#closed) throw new UnreachableError(this.spec.name, CLOSED_BY_RUNBOOK);
    const run = channelRun(this.spec, command, given, this.options.maxOutputBytes);
    // A process group of its own, as a session behind sshd is: a Ctrl-C in runbook's terminal
    // reaches runbook only, which then ends the command (close()).
    const child = spawn('/bin/sh', ['-c', run.wire.line], { detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    this.#running.add(child);
    child.on('close', () => this.#running.delete(child));
    return runOnChannel(new ProcessChannel(child), run, () => undefined);
  }

  /**
   * Ends every running command: stdin closed (the watchdog kills the command's process group, as
   * when an SSH channel closes), and the wrapper's own group signalled.
   */
  async close(): Promise<void> {
    this.#closed = true;
    const running = [...this.#running];
    await Promise.all(
      running.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('close', () => resolve());
            child.stdin.end();
            if (child.pid !== undefined) killGroup(child.pid, 'SIGTERM');
            // The watchdog sends KILL 2 s after TERM; past that, kill the wrapper's group too.
            setTimeout(() => {
              if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
              resolve();
            }, 5_000).unref();
          }),
      ),
    );
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

export class LocalTransport implements Transport {
  readonly #connections = new Map<string, LocalConnection>();
  constructor(private readonly options: LocalTransportOptions = {}) {}

  async connect(spec: ConnectionSpec): Promise<HostConnection> {
    const existing = this.#connections.get(spec.name);
    if (existing && !existing.lost) return existing;
    this.options.onEvent?.(spec.name, 'local connection: commands run by /bin/sh on this machine');
    const connection = new LocalConnection(spec, this.options);
    this.#connections.set(spec.name, connection);
    return connection;
  }

  async closeAll(): Promise<void> {
    const all = [...this.#connections.values()];
    this.#connections.clear();
    await Promise.all(all.map((c) => c.close()));
  }
}
