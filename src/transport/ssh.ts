/**
 * The SSH transport over ssh2: one connection per host, reused by all of its commands, at most 8
 * channels at a time on it (OpenSSH's MaxSessions is 10), keepalive so that a dead link is noticed
 * in seconds rather than after TCP's 15 minutes, every hop's host key verified.
 */
import { spawn } from 'node:child_process';
import { Duplex } from 'node:stream';
import { Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import { UnreachableError } from '../errors.js';
import type { ConnectionSpec } from '../inventory/types.js';
import type { Command } from '../shell/command.js';
import { authHandler, KeyFileError, planAuth } from './auth.js';
import { channelRun, runOnChannel } from './channel.js';
import { hostKeyCheck } from './host-key-check.js';
import { connectTcp, TcpConnectTimeout } from './tcp.js';
import { defaultKnownHostsFile, fingerprint } from './known-hosts.js';
import { defaultSshConfigFile, expandHops, resolveTarget, type ResolvedTarget } from './ssh-config.js';
import { CLOSED_BY_RUNBOOK, type ExecOptions, type ExecResult, type HostConnection, type Transport } from './types.js';

export interface SshTransportOptions {
  /** SSH keepalive: a connection is dead after (countMax + 1) × interval without an answer. */
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  /** Time for the handshake and authentication once TCP is connected. */
  connectTimeoutMs?: number;
  /** Time for the TCP connect itself (the ssh config's ConnectTimeout, when set, is used instead, as OpenSSH does). */
  tcpConnectTimeoutMs?: number;
  /** Concurrent channels per connection; more are queued. */
  maxChannels?: number;
  sshConfigFile?: string;
  /** Output kept per command and stream (--max-output); default DEFAULT_MAX_OUTPUT_BYTES. */
  maxOutputBytes?: number;
  /** -vvv: connect, host key, auth methods, keepalive, loss; one line per event. */
  onEvent?: (host: string, event: string) => void;
}

const DEFAULTS = {
  keepaliveIntervalMs: 5_000,
  keepaliveCountMax: 3,
  // Ansible's default timeout. A host that does not answer in 10 s is unreachable; a failover
  // waiting on a dead primary's SSH should not wait longer.
  connectTimeoutMs: 10_000,
  // A SYN on a LAN is answered in milliseconds by the peer's kernel, loaded or not; 3 s leave room
  // for one lost SYN (Linux resends after 1 s). No answer by then: the host is cut off or down.
  tcpConnectTimeoutMs: 3_000,
  maxChannels: 8,
} as const;

/**
 * A host that never answered in this run and timed out connecting is not asked again within this
 * long: a failover against a cut-off primary otherwise spent a connect timeout on it in the lock,
 * then again in every later step that reads it (issue 17: RTO after a partition). A host that did
 * answer earlier is always tried again: its connection died, and a detached job's wait reconnects.
 */
export const NEVER_ANSWERED_RETRY_MS = 30_000;

/** Channel opens refused by the server (MaxSessions), tried again with backoff: ~5 s in all. */
const OPEN_RETRIES = 12;

/** A counting semaphore: channels beyond the limit wait their turn, in order. */
class Slots {
  #free: number;
  #waiting: Array<() => void> = [];
  constructor(size: number) {
    this.#free = size;
  }
  async acquire(): Promise<() => void> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    };
  }
}

type Settings = Required<Omit<SshTransportOptions, 'sshConfigFile' | 'maxOutputBytes' | 'onEvent'>> &
  Pick<SshTransportOptions, 'maxOutputBytes' | 'onEvent'> & { sshConfigFile: string };

export class SshTransport implements Transport {
  readonly #settings: Settings;
  readonly #connections = new Map<string, Promise<SshConnection>>();
  /** Hosts that answered once in this run. */
  readonly #answered = new Set<string>();
  /** Hosts that never answered: when their connect timed out, and how. */
  readonly #timedOut = new Map<string, { at: number; error: UnreachableError }>();

  constructor(options: SshTransportOptions = {}) {
    this.#settings = { ...DEFAULTS, sshConfigFile: defaultSshConfigFile(), ...options };
  }

  /** Concurrent first calls share one connect; a connection that died is made again. */
  async connect(spec: ConnectionSpec): Promise<HostConnection> {
    const existing = this.#connections.get(spec.name);
    if (existing) {
      const connection = await existing.catch(() => undefined);
      if (connection && !connection.lost) return connection;
      if (this.#connections.get(spec.name) === existing) this.#connections.delete(spec.name);
      if (!connection) return existing; // the shared attempt failed: same error for every caller
    }
    const earlier = this.#timedOut.get(spec.name);
    if (earlier && Date.now() - earlier.at < NEVER_ANSWERED_RETRY_MS) {
      const ago = Math.round((Date.now() - earlier.at) / 1000);
      throw new UnreachableError(spec.name, `${earlier.error.reason} (${ago} s ago in this run; not tried again within ${NEVER_ANSWERED_RETRY_MS / 1000} s)`, { cause: earlier.error });
    }
    const opening = SshConnection.open(spec, this.#settings);
    this.#connections.set(spec.name, opening);
    opening.then(
      () => {
        this.#answered.add(spec.name);
        this.#timedOut.delete(spec.name);
      },
      (error: unknown) => {
        if (this.#connections.get(spec.name) === opening) this.#connections.delete(spec.name);
        if (error instanceof UnreachableError && !this.#answered.has(spec.name) && isConnectTimeout(error.reason)) this.#timedOut.set(spec.name, { at: Date.now(), error });
      },
    );
    return opening;
  }

  async closeAll(): Promise<void> {
    const all = [...this.#connections.values()];
    this.#connections.clear();
    await Promise.all(all.map((p) => p.then((c) => c.close()).catch(() => undefined)));
  }
}

class SshConnection implements HostConnection {
  #lostReason: string | undefined;
  readonly #slots: Slots;

  private constructor(
    readonly spec: ConnectionSpec,
    private readonly client: Client,
    /** Jump connections, outermost first; closed after the target. */
    private readonly jumps: Client[],
    maxChannels: number,
    private readonly maxOutputBytes?: number,
    onEvent?: (host: string, event: string) => void,
  ) {
    this.#slots = new Slots(maxChannels);
    const lose = (reason: string) => {
      if (this.#lostReason === undefined) onEvent?.(spec.name, `ssh: connection lost: ${reason}`);
      this.#lostReason ??= reason;
    };
    client.on('error', (err) => lose(describeFailure(err)));
    client.on('close', () => lose('connection closed'));
    for (const jump of jumps) jump.on('close', () => lose('connection to a jump host closed'));
  }

  get lost(): boolean {
    return this.#lostReason !== undefined;
  }

  static async open(spec: ConnectionSpec, settings: Settings): Promise<SshConnection> {
    const target = resolveTarget(spec, settings.sshConfigFile);
    const jumps: Client[] = [];
    try {
      let sock: Duplex | undefined = target.jumps.length === 0 && target.proxyCommand ? proxyCommandStream(target.proxyCommand, spec.name) : undefined;
      const hops = expandHops(target.jumps, target, settings.sshConfigFile);
      if (hops[0]?.proxyCommand) sock = proxyCommandStream(hops[0].proxyCommand, spec.name);
      for (const [i, hop] of hops.entries()) {
        const client = await connectClient(spec, hop, settings, sock, `jump host ${hop.name}`);
        jumps.push(client);
        sock = await forward(client, hops[i + 1] ?? target, spec.name);
      }
      const client = await connectClient(spec, target, settings, sock);
      return new SshConnection(spec, client, jumps, settings.maxChannels, settings.maxOutputBytes, settings.onEvent);
    } catch (error) {
      for (const jump of jumps.reverse()) jump.end();
      throw error;
    }
  }

  async exec(command: Command, given: ExecOptions = {}): Promise<ExecResult> {
    const prepared = channelRun(this.spec, command, given, this.maxOutputBytes);
    const release = await this.#slots.acquire();
    try {
      this.#throwIfLost();
      const run = { ...prepared, startedAt: Date.now() };
      return await this.#withChannel(run.wire.line, (channel) => runOnChannel(channel, run, () => this.#lostError()));
    } finally {
      release();
    }
  }

  /**
   * sshd frees a session only once it has reaped the child, a moment after the channel closed, so
   * even 8 channels can briefly meet MaxSessions 10: an open refused that way is tried again (the
   * command never started, so this is safe).
   */
  async #withChannel(line: string, use: (channel: ClientChannel) => Promise<ExecResult>): Promise<ExecResult> {
    for (let attempt = 0; ; attempt++) {
      let channelOpened = false;
      try {
        return await new Promise<ExecResult>((resolve, reject) => {
          try {
            // `use` attaches its listeners at once: a fast command's exit status can arrive in the
            // same packet batch as the open confirmation, before any later microtask runs.
            this.client.exec(line, (err, stream) => {
              if (err) return reject(err);
              channelOpened = true;
              use(stream).then(resolve, reject);
            });
          } catch (error) {
            reject(error);
          }
        });
      } catch (error) {
        if (channelOpened) throw error;
        const lost = this.#lostError();
        if (lost) throw lost;
        if (!/Channel open failure/.test((error as Error).message) || attempt >= OPEN_RETRIES) throw error;
        await new Promise((r) => setTimeout(r, 10 * 2 ** Math.min(attempt, 6)));
      }
    }
  }

  #lostError(): UnreachableError | undefined {
    return this.#lostReason === undefined ? undefined : new UnreachableError(this.spec.name, this.#lostReason);
  }

  #throwIfLost(): void {
    const error = this.#lostError();
    if (error) throw error;
  }

  async close(): Promise<void> {
    this.#lostReason ??= CLOSED_BY_RUNBOOK;
    for (const client of [this.client, ...[...this.jumps].reverse()]) await endClient(client);
  }
}

function endClient(client: Client): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.destroy();
      resolve();
    }, 2_000);
    client.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    client.end();
  });
}

/** ProxyCommand: `/bin/sh -c LINE`, its stdin/stdout the connection (as OpenSSH runs it). */
function proxyCommandStream(line: string, host: string): Duplex {
  const child = spawn('/bin/sh', ['-c', line], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-2000);
  });
  const stream: Duplex & { proxyFailure?: Promise<string | undefined> } = Duplex.from({ readable: child.stdout, writable: child.stdin });
  // ssh2 only sees the stream end ("connection lost"): the ProxyCommand's own exit says why.
  stream.proxyFailure = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      const why = code ? `ProxyCommand "${line}" exited with code ${code}${stderr.trim() ? `: ${stderr.trim()}` : ''}` : undefined;
      resolve(why ?? (signal ? `ProxyCommand "${line}" was killed by ${signal}` : undefined));
      if (why) stream.destroy(new UnreachableError(host, why));
    });
    child.on('error', (error) => resolve(`ProxyCommand "${line}" could not start: ${error.message}`));
  });
  stream.on('close', () => child.kill());
  // ssh2 reports the failure through its own error/close; a late one must not go unhandled.
  stream.on('error', () => undefined);
  return stream;
}

/** A channel from the jump host to the next hop, used as that hop's socket. */
function forward(jump: Client, next: ResolvedTarget, host: string): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    jump.forwardOut('127.0.0.1', 0, next.address, next.port, (err, stream) =>
      err
        ? reject(new UnreachableError(host, `jump host cannot reach ${next.address}:${next.port}: ${err.message}`))
        : resolve(stream),
    );
  });
}

/** Connect, verify the host key, authenticate. Every failure becomes UnreachableError(host). */
async function connectClient(
  spec: ConnectionSpec,
  target: ResolvedTarget,
  settings: Settings,
  sock?: Duplex,
  hop?: string,
): Promise<Client> {
  const where = hop ? `${hop}: ` : '';
  const event = (text: string) => settings.onEvent?.(spec.name, `ssh: ${where}${text}`);
  let auth;
  try {
    auth = await planAuth({
      user: target.user,
      identityFiles: target.identityFiles,
      ...(spec.password ? { password: spec.password } : {}),
      ...(target.agent !== undefined ? { agentSocket: target.agent } : {}),
    });
  } catch (error) {
    if (error instanceof KeyFileError) throw new UnreachableError(spec.name, `${where}${error.message}`);
    throw error;
  }
  if (auth.methods.length === 0) {
    throw new UnreachableError(
      spec.name,
      `${where}no way to authenticate as ${target.user}: no ssh-agent (SSH_AUTH_SOCK), no usable key file, no password` +
        (auth.notes.length ? ` (${auth.notes.join('; ')})` : ''),
    );
  }
  const [written, ...others] = target.knownHostsFiles.length ? target.knownHostsFiles : [defaultKnownHostsFile()];
  const check = hostKeyCheck({
    address: target.hostKeyAlias ?? target.address,
    port: target.hostKeyAlias ? 22 : target.port,
    knownHostsFile: written!,
    otherFiles: [...others, ...target.globalKnownHostsFiles],
    acceptNew: spec.acceptNewHostKey === true || target.hostKeyChecking === 'accept-new',
    acceptUnknown: target.hostKeyChecking === 'no',
  });
  const client = new Client();
  let method: string | undefined;
  const keepaliveInterval = target.keepaliveIntervalMs || settings.keepaliveIntervalMs;
  const keepaliveCountMax = target.keepaliveIntervalMs ? target.keepaliveCountMax : settings.keepaliveCountMax;
  event(`connecting to ${target.address}:${target.port} as ${target.user}${sock ? ' (through a ProxyCommand or jump host)' : ''}`);
  if (!sock) {
    const tcpMs = target.connectTimeoutMs ?? settings.tcpConnectTimeoutMs;
    sock = await connectTcp(target.address, target.port, tcpMs).catch((error: Error & { code?: string }) => {
      const reason = error instanceof TcpConnectTimeout ? `${CONNECT_TIMEOUT_PREFIX} (${error.message})` : describeFailure(error);
      throw new UnreachableError(spec.name, `${where}${reason}`, { cause: error });
    });
  }
  const config: ConnectConfig = {
    host: target.address,
    port: target.port,
    username: target.user,
    ...(sock ? { sock } : {}),
    hostVerifier: (key: Buffer) => {
      const ok = check.verify(key);
      event(`host key ${fingerprint(key)} ${ok ? 'verified' : 'refused'} (${written})`);
      return ok;
    },
    authHandler: authHandler(auth, (m) => {
      method = m;
      event(`trying authentication method ${m}`);
    }),
    // ServerAliveInterval/CountMax and ConnectTimeout from the ssh config, else runbook's defaults.
    keepaliveInterval,
    keepaliveCountMax,
    readyTimeout: target.connectTimeoutMs ?? settings.connectTimeoutMs,
  };
  return new Promise<Client>((resolve, reject) => {
    let settled = false;
    const fail = (reason: string, cause?: unknown) => {
      if (settled) return;
      settled = true;
      client.destroy();
      reject(new UnreachableError(spec.name, `${where}${reason}`, { cause }));
    };
    const proxy = (sock as { proxyFailure?: Promise<string | undefined> } | undefined)?.proxyFailure;
    // ssh2 sees a ProxyCommand's failure as a lost connection: wait (briefly) for its exit, whose status and stderr say why.
    const viaProxy = (reason: string, cause?: unknown) =>
      void Promise.race([proxy, new Promise<undefined>((r) => setTimeout(r, 2_000))]).then((why) => fail(why ?? reason, cause));
    client.on('error', (err: Error & { level?: string }) => {
      if (check.refusal) return fail(check.refusal, err);
      if (proxy && err.level !== 'client-authentication') return viaProxy(describeFailure(err), err);
      if (err.level === 'client-authentication') {
        const tried = auth.methods.map((m) => m.type).join(', ');
        const notes = auth.notes.length ? `; ${auth.notes.join('; ')}` : '';
        return fail(`authentication as ${target.user} failed (tried: ${tried})${notes}`, err);
      }
      fail(describeFailure(err), err);
    });
    client.on('close', () => (proxy && !check.refusal ? viaProxy('connection closed during the handshake') : fail(check.refusal ?? 'connection closed during the handshake')));
    client.on('ready', () => {
      if (settled) return;
      settled = true;
      event(`authenticated as ${target.user} (${method ?? 'none'}); keepalive every ${keepaliveInterval} ms, dead after ${keepaliveCountMax + 1} unanswered`);
      // Nagle + delayed ACK cost ~40 ms per command otherwise (a no-op on a jump channel).
      client.setNoDelay(true);
      resolve(client);
    });
    try {
      client.connect(config);
    } catch (error) {
      fail(`cannot start the connection: ${(error as Error).message}`, error);
    }
  });
}

const CONNECT_TIMEOUT_PREFIX = 'connect timeout';
const CONNECT_TIMEOUT = `${CONNECT_TIMEOUT_PREFIX} (no SSH handshake)`;

/** No answer in time, at TCP or in the SSH handshake (not a refusal or an auth failure). */
const isConnectTimeout = (reason: string) => /(^|: )connect timeout \(/.test(reason);

/** An ssh2 or socket error as a reason a person can act on. */
function describeFailure(err: Error & { level?: string; code?: string }): string {
  if (err.message === 'Keepalive timeout') return 'no answer to SSH keepalives: the connection is dead';
  if (err.message.startsWith('Timed out while waiting for handshake')) return CONNECT_TIMEOUT;
  if (err.code === 'ECONNREFUSED') return `connection refused (${err.message.replace(/^connect /, '')})`;
  if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') return `cannot resolve the address: ${err.message}`;
  return err.message;
}
