/**
 * The transport the commands use: each host by its ConnectionSpec's connection (SSH unless
 * `ansible_connection=local`), with -v .. -vvv logging on top. Each transport is made on first use.
 */
import { LocalTransport } from './local.js';
import { SshTransport, type SshTransportOptions } from './ssh.js';
import type { HostConnection, Transport } from './types.js';
import { eventLogger, verboseTransport, type VerboseWrite } from './verbose.js';
import type { ConnectionSpec } from '../inventory/types.js';

export interface HostTransportOptions extends Omit<SshTransportOptions, 'onEvent'> {
  /** -v count: 0 quiet, 1 commands, 2 and their output, 3 and transport events. */
  verbose?: number;
  /** Where verbose lines go (default: stderr, so that stdout stays the command's). */
  write?: VerboseWrite;
}

class HostTransport implements Transport {
  #ssh: SshTransport | undefined;
  #local: LocalTransport | undefined;
  constructor(private readonly options: SshTransportOptions) {}
  connect(spec: ConnectionSpec): Promise<HostConnection> {
    if (spec.connection === 'local') return (this.#local ??= new LocalTransport(this.options)).connect(spec);
    return (this.#ssh ??= new SshTransport(this.options)).connect(spec);
  }
  async closeAll(): Promise<void> {
    await Promise.all([this.#ssh?.closeAll(), this.#local?.closeAll()]);
  }
}

export function hostTransport(options: HostTransportOptions = {}): Transport {
  const { verbose = 0, write = (line: string) => process.stderr.write(`${line}\n`), ...rest } = options;
  const onEvent = eventLogger(verbose, write);
  return verboseTransport(new HostTransport({ ...rest, ...(onEvent ? { onEvent } : {}) }), verbose, write);
}
