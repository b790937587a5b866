/** What the engine and the CLI need from a transport. ssh.ts implements it over ssh2. */
import type { Command } from '../shell/command.js';
import type { ConnectionSpec } from '../inventory/types.js';
import { ExitCode, RunbookError } from '../errors.js';

/** The reason of a connection runbook closed itself (after Ctrl-C): an interrupt, not a network failure. */
export const CLOSED_BY_RUNBOOK = 'closed by runbook';

export interface ExecOptions {
  /** Run through sudo: true for the host's become user (default root), or a user name. */
  become?: boolean | string;
  /** Enforced on the remote side (timeout -k), so the process does not outlive it. */
  timeoutSec?: number;
  /** Streamed output, already masked. */
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
  /** Bytes of stdout (and of stderr) kept; the rest is dropped with a note. Default 8 MB. */
  maxOutputBytes?: number;
  /** Throw CommandFailedError on a non-zero exit (default false: the caller reads exitCode). */
  check?: boolean;
}

export interface ExecResult {
  host: string;
  /** Display form of the command: secrets masked. */
  command: string;
  /** null when the process died of a signal. */
  exitCode: number | null;
  /** Without the SIG prefix, e.g. "KILL". */
  signal?: string;
  /** Masked. */
  stdout: string;
  /** Masked. */
  stderr: string;
  durationMs: number;
  /** The remote timeout fired. */
  timedOut: boolean;
}

export interface HostConnection {
  readonly spec: ConnectionSpec;
  /** The connection died (keepalive, reset, closed): a new connect() makes a fresh one. */
  readonly lost?: boolean;
  exec(command: Command, options?: ExecOptions): Promise<ExecResult>;
  close(): Promise<void>;
}

export interface Transport {
  /** One connection per host, made on first use and reused. Throws UnreachableError. */
  connect(spec: ConnectionSpec): Promise<HostConnection>;
  closeAll(): Promise<void>;
}

/** A remote command failed: names the host, the (masked) command, its exit code and stderr tail. */
export class CommandFailedError extends RunbookError {
  constructor(readonly result: ExecResult, what?: string) {
    const tail = result.stderr.trim().split('\n').slice(-5).join('\n');
    const status = result.timedOut
      ? 'timed out'
      : result.signal
        ? `killed by SIG${result.signal}`
        : `exit code ${result.exitCode}`;
    super(
      `${result.host}: ${what ?? 'command failed'} (${status}): ${result.command}${tail ? `\n${tail}` : ''}`,
      ExitCode.stepFailed,
    );
  }
}
