/**
 * Test support: a HostConnection that runs the wire form of commands on this machine (sh -c), so
 * the engine's real scheduling, gathering and applying are exercised without SSH. Hosts are names
 * only; each "host" gets its own root directory for the sample runbooks.
 */
import { spawn } from 'node:child_process';
import type { Command } from '../../../src/shell/command.js';
import { maskSecrets } from '../../../src/shell/secret.js';
import { feedStdin, toWire } from '../../../src/shell/wire.js';
import type { ExecOptions, ExecResult, HostConnection } from '../../../src/transport/types.js';
import { CommandFailedError } from '../../../src/transport/types.js';
import { type Engine, type EngineOptions, FactCache, HostPool, Interrupt } from '../../../src/engine/context.js';
import type { HostView, RunContext } from '../../../src/engine/types.js';

export function localConnection(host: string, log: string[] = []): HostConnection {
  return {
    spec: { name: host, address: '127.0.0.1', port: 22, user: 'root', become: false },
    async exec(command: Command, options: ExecOptions = {}): Promise<ExecResult> {
      // Running as root already: drop become rather than depend on sudo in CI.
      const wire = toWire(command, options.timeoutSec !== undefined ? { timeoutSec: options.timeoutSec } : {});
      log.push(command.toString());
      const t0 = Date.now();
      return new Promise((resolve, reject) => {
        const p = spawn('sh', ['-c', wire.line], { env: { ...process.env, RB_HOST: host } });
        let out = '';
        let err = '';
        p.stdout.on('data', (d) => (out += d));
        p.stderr.on('data', (d) => (err += d));
        p.on('error', reject);
        p.stdin.on('error', () => {});
        const stop = feedStdin(p.stdin, wire.stdin);
        p.on('close', (code, signal) => {
          stop();
          const r: ExecResult = { host, command: command.toString(), exitCode: code, stdout: maskSecrets(out), stderr: maskSecrets(err), durationMs: Date.now() - t0, timedOut: code === 124, ...(signal ? { signal: signal.replace(/^SIG/, '') } : {}) };
          if (options.check && code !== 0) reject(new CommandFailedError(r));
          else resolve(r);
        });
      });
    },
    async close() {},
  };
}

export function view(name: string, groups: string[] = ['all'], vars: Record<string, unknown> = {}): HostView {
  return { name, groups, vars, address: name };
}

export function localEngine(hosts: HostView[], params: Record<string, unknown>, opts: Partial<EngineOptions> = {}, log: string[] = []): Engine {
  const run: RunContext<any> = {
    params,
    hosts,
    checkMode: opts.checkMode ?? false,
    now: () => new Date(),
    select: (p) => hosts.filter((h) => h.name === p || h.groups.includes(p) || p === 'all'),
  };
  const interrupt = new Interrupt();
  return {
    run,
    pool: new HostPool(async (h) => localConnection(h, log), interrupt),
    factCache: new FactCache(),
    interrupt,
    state: new Map(),
    hostByName: (n) => hosts.find((h) => h.name === n)!,
    options: { checkMode: false, diff: false, forks: 10, stepMode: false, approvals: { all: true, steps: new Set() }, retryDelayMs: 10, ...opts },
  };
}
