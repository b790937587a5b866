/**
 * -v .. -vvv as Ansible has them: -v each command as it runs (and how it ended), -vv also its
 * output, -vvv also the transport's own events (connect, host key, auth method, keepalive). Every
 * line goes through maskSecrets: a secret is "***" here as everywhere else.
 */
import { maskSecrets } from '../shell/secret.js';
import type { Command } from '../shell/command.js';
import type { ExecOptions, ExecResult, HostConnection, Transport } from './types.js';

export type VerboseWrite = (line: string) => void;

/** One masked line per line of text, each prefixed with the host as Ansible does (`<pg1>`). */
export function verboseLines(host: string, label: string, text: string): string[] {
  const body = maskSecrets(text).replace(/\n$/, '');
  if (body === '') return [];
  return body.split('\n').map((line) => `<${host}> ${label}${line}`);
}

/** The transport's own events at -vvv, or nothing below it. */
export function eventLogger(level: number, write: VerboseWrite): ((host: string, event: string) => void) | undefined {
  if (level < 3) return undefined;
  return (host, event) => {
    for (const line of verboseLines(host, '', event)) write(line);
  };
}

function describeEnd(result: ExecResult): string {
  const status = result.timedOut ? 'timed out' : result.signal ? `signal=${result.signal}` : `rc=${result.exitCode}`;
  return `${status} (${(result.durationMs / 1000).toFixed(2)} s)`;
}

class VerboseConnection implements HostConnection {
  constructor(
    private readonly inner: HostConnection,
    private readonly level: number,
    private readonly write: VerboseWrite,
  ) {}
  get spec() {
    return this.inner.spec;
  }
  get lost() {
    return this.inner.lost;
  }
  async exec(command: Command, options: ExecOptions = {}): Promise<ExecResult> {
    const host = this.inner.spec.name;
    const become = options.become ? ` (become ${typeof options.become === 'string' ? options.become : (this.inner.spec.becomeUser ?? 'root')})` : '';
    for (const line of verboseLines(host, `EXEC${become}: `, command.toString())) this.write(line);
    try {
      const result = await this.inner.exec(command, options);
      this.#ended(result);
      return result;
    } catch (error) {
      const failed = (error as { result?: ExecResult }).result;
      if (failed) this.#ended(failed);
      else for (const line of verboseLines(host, 'FAILED: ', (error as Error).message)) this.write(line);
      throw error;
    }
  }
  #ended(result: ExecResult): void {
    const host = this.inner.spec.name;
    if (this.level >= 2) {
      for (const line of verboseLines(host, 'STDOUT: ', result.stdout)) this.write(line);
      for (const line of verboseLines(host, 'STDERR: ', result.stderr)) this.write(line);
    }
    this.write(`<${host}> ${describeEnd(result)}`);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** `inner` itself below -v; else a transport whose connections log as they run. */
export function verboseTransport(inner: Transport, level: number, write: VerboseWrite): Transport {
  if (level < 1) return inner;
  return {
    connect: async (spec) => new VerboseConnection(await inner.connect(spec), level, write),
    closeAll: () => inner.closeAll(),
  };
}
