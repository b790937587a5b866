/**
 * Running programs on this machine (root namespace) and inside a lab host (nsenter). Arguments are
 * always an argv array: nothing here goes through a shell unless a script is passed on purpose.
 */
import { execFile } from 'node:child_process';
import { RunbookError, ExitCode } from '../errors.js';

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export class LabCommandError extends RunbookError {
  constructor(readonly argv: string[], readonly result: RunResult) {
    const tail = (result.stderr || result.stdout).trim().split('\n').slice(-6).join('\n');
    super(`lab: ${argv.join(' ')} failed (exit ${result.code})${tail ? `:\n${tail}` : ''}`, ExitCode.internal);
  }
}

/** Runs argv; throws LabCommandError on a non-zero exit unless `check: false`. */
export function run(
  argv: string[],
  opts: { check?: boolean; input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      argv[0]!,
      argv.slice(1),
      { cwd: '/', env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 << 20, encoding: 'utf8' },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        if (error?.killed) {
          reject(new LabCommandError(argv, { stdout, stderr: `${stderr}timed out after ${(opts.timeoutMs ?? 60_000) / 1000} s (killed with ${error.signal})`, code }));
          return;
        }
        if (error && typeof error.code === 'string') {
          reject(new LabCommandError(argv, { stdout, stderr: `${stderr}${error.message}`, code }));
          return;
        }
        const result = { stdout, stderr, code };
        if (code !== 0 && opts.check !== false) reject(new LabCommandError(argv, result));
        else resolve(result);
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** A clean environment for commands in hosts: not the caller's PATH, locale or HOME. */
export const HOST_ENV: NodeJS.ProcessEnv = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C.UTF-8',
  HOME: '/root',
};

/** argv that runs `command` inside a host: its mount, UTS, IPC, network and PID namespaces. */
export function nsenterArgv(pid: number, command: string[]): string[] {
  return ['nsenter', '-t', String(pid), '-m', '-u', '-i', '-n', '-p', '--', ...command];
}

/** Runs a shell script as root inside a host. */
export function inHost(pid: number, script: string, opts: { check?: boolean; timeoutMs?: number } = {}): Promise<RunResult> {
  return run(nsenterArgv(pid, ['/bin/sh', '-c', script]), { ...opts, env: HOST_ENV });
}
