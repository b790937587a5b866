/**
 * One command on one SSH channel: write its stdin (after sudo's prompt was answered, with a become
 * password), read both streams to the end, resolve on `close` (`exit` is optional in the protocol),
 * and turn sudo's own failures into clear errors instead of exit code 1.
 */
import { StringDecoder } from 'node:string_decoder';
import { maskSecrets } from '../shell/secret.js';
import type { ConnectionSpec } from '../inventory/types.js';
import type { Command } from '../shell/command.js';
import { BECOME_STARTED, feedStdin, SUDO_PROMPT, toWire, type WireCommand } from '../shell/wire.js';
import { CommandFailedError, type ExecOptions, type ExecResult } from './types.js';

/** Exit codes of coreutils `timeout`: TERM sent (124), KILL needed after -k (137). */
const TIMEOUT_EXIT = 124;
const TIMEOUT_KILLED_EXIT = 137;

/** Output kept per stream beyond which the rest is dropped (the command still runs to its end). */
export const DEFAULT_MAX_OUTPUT_BYTES = 8 << 20;

/** sudo -n refusing to ask (sudo 1.8 and 1.9 wordings). */
const SUDO_NEEDS_PASSWORD = /^sudo: (a password is required|a terminal is required|no tty present)/m;

/**
 * What runOnChannel needs of a channel: an ssh2 ClientChannel, or a local child process made to
 * look like one (local.ts), so that both transports share one exec contract.
 */
export interface ExecChannel {
  on(event: 'data', listener: (data: Buffer) => void): unknown;
  on(event: 'exit', listener: (code: number | null, signal?: string) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  readonly stderr: { on(event: 'data', listener: (data: Buffer) => void): unknown };
  write(data: string): unknown;
  end(): unknown;
  readonly writable: boolean;
}

export interface ChannelRun {
  host: string;
  /** Display form (masked). */
  command: string;
  wire: WireCommand;
  becomeUser?: string;
  options: ExecOptions;
  startedAt: number;
}

/**
 * A command as a transport runs it: the become user (the host's, default root, when asked), the
 * wire form with sudo and the timeout, and the transport's output cap unless the call gives one.
 */
export function channelRun(spec: ConnectionSpec, command: Command, given: ExecOptions, maxOutputBytes?: number): ChannelRun {
  const options = given.maxOutputBytes === undefined && maxOutputBytes !== undefined ? { ...given, maxOutputBytes } : given;
  const becomeUser = options.become === undefined || options.become === false
    ? undefined
    : typeof options.become === 'string'
      ? options.become
      : (spec.becomeUser ?? 'root');
  const wire = toWire(command, {
    ...(becomeUser !== undefined ? { become: { user: becomeUser, password: spec.becomePassword } } : {}),
    ...(options.timeoutSec !== undefined ? { timeoutSec: options.timeoutSec } : {}),
  });
  return { host: spec.name, command: command.toString(), wire, ...(becomeUser !== undefined ? { becomeUser } : {}), options, startedAt: Date.now() };
}

/** Splits a stream into masked lines for the streaming callbacks (a secret can straddle chunks). */
class LineStreamer {
  #pending = '';
  constructor(private readonly sink?: (chunk: string) => void) {}
  push(text: string): void {
    if (!this.sink) return;
    this.#pending += text;
    const cut = this.#pending.lastIndexOf('\n');
    if (cut < 0) return;
    this.sink(maskSecrets(this.#pending.slice(0, cut + 1)));
    this.#pending = this.#pending.slice(cut + 1);
  }
  flush(): void {
    if (this.sink && this.#pending) this.sink(maskSecrets(this.#pending));
    this.#pending = '';
  }
}

/**
 * Holds stderr back until the command under a password become has started: answers sudo's prompt
 * once, notices a second prompt (wrong password), and only then releases the command's stdin.
 */
class BecomeGate {
  #held = '';
  #answered = false;
  started = false;
  wrongPassword = false;
  constructor(
    private readonly password: string,
    private readonly write: (data: string) => void,
    private readonly release: () => void,
    private readonly refuse: () => void,
  ) {}

  /** Feed stderr text; returns what may pass through as the command's own stderr. */
  feed(text: string): string {
    if (this.started) return text;
    this.#held += text;
    for (;;) {
      const prompt = this.#held.indexOf(SUDO_PROMPT);
      const started = this.#held.indexOf(`${BECOME_STARTED}\n`);
      if (started >= 0 && (prompt < 0 || started < prompt)) {
        // What came before is sudo's chatter (lecture, "Sorry, try again"), not the command's.
        const after = this.#held.slice(started + BECOME_STARTED.length + 1);
        this.#held = '';
        this.started = true;
        this.release();
        return after;
      }
      if (prompt < 0) return '';
      this.#held = this.#held.slice(0, prompt) + this.#held.slice(prompt + SUDO_PROMPT.length);
      if (!this.#answered) {
        this.#answered = true;
        this.write(this.password);
      } else {
        this.wrongPassword = true;
        this.refuse();
      }
    }
  }

  /** What sudo said when the command never started. */
  get heldText(): string {
    return this.#held;
  }
}

export function runOnChannel(channel: ExecChannel, run: ChannelRun, connectionLost: () => Error | undefined): Promise<ExecResult> {
  const { options, wire } = run;
  return new Promise<ExecResult>((resolve, reject) => {
    const out = { stdout: '', stderr: '' };
    const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
    const streamOut = new LineStreamer(options.onStdout);
    const streamErr = new LineStreamer(options.onStderr);
    let exitCode: number | null = null;
    let signal: string | undefined;
    let gotExit = false;

    // stdin stays open: after the command's own input, a heartbeat tells the remote watchdog the
    // controller is alive (wire.ts); EOF or silence kills the command's process group.
    let stopFeeding: (() => void) | undefined;
    const writeStdin = () => {
      stopFeeding = feedStdin(channel, wire.stdin);
    };
    const cap = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
    const seen = { stdout: 0, stderr: 0 };
    const keep = (which: 'stdout' | 'stderr', text: string): string => {
      const before = seen[which];
      seen[which] += Buffer.byteLength(text);
      if (seen[which] <= cap) return text;
      if (before >= cap) return '';
      return text.slice(0, Math.max(0, cap - before));
    };
    const gate = wire.becomePassword
      ? new BecomeGate(wire.becomePassword, (d) => channel.write(d), writeStdin, () => channel.end())
      : undefined;
    if (!gate) writeStdin();

    const onStderrText = (text: string) => {
      const passed = gate ? gate.feed(text) : text;
      if (!passed) return;
      const kept = keep('stderr', passed);
      out.stderr += kept;
      streamErr.push(kept);
    };

    channel.on('data', (data: Buffer) => {
      const text = keep('stdout', decoders.stdout.write(data));
      out.stdout += text;
      streamOut.push(text);
    });
    channel.stderr.on('data', (data: Buffer) => onStderrText(decoders.stderr.write(data)));
    channel.on('exit', (code: number | null, sig?: string) => {
      gotExit = true;
      exitCode = code ?? null;
      if (sig) signal = sig.replace(/^SIG/, '');
    });
    channel.on('close', () => {
      stopFeeding?.();
      const tail = keep('stdout', decoders.stdout.end());
      out.stdout += tail;
      streamOut.push(tail);
      onStderrText(decoders.stderr.end());
      streamOut.flush();
      streamErr.flush();

      const lost = connectionLost();
      if (!gotExit && lost) return reject(lost);

      for (const which of ['stdout', 'stderr'] as const)
        if (seen[which] > cap)
          out[which] += `\n[runbook: ${which} cut at ${mb(cap)} of ${mb(seen[which])}; raise the cap with --max-output MB]\n`;
      const durationMs = Date.now() - run.startedAt;
      const timedOut =
        options.timeoutSec !== undefined &&
        (exitCode === TIMEOUT_EXIT || ((exitCode === TIMEOUT_KILLED_EXIT || signal === 'KILL') && durationMs >= options.timeoutSec * 1000));
      const result: ExecResult = {
        host: run.host,
        command: run.command,
        exitCode,
        ...(signal ? { signal } : {}),
        stdout: maskSecrets(out.stdout),
        stderr: maskSecrets(gate && !gate.started ? gate.heldText + out.stderr : out.stderr),
        durationMs,
        timedOut,
      };
      const becomeFailure = sudoFailure(run, result, gate);
      if (becomeFailure) return reject(new CommandFailedError(result, becomeFailure));
      if (options.check && (exitCode !== 0 || signal)) return reject(new CommandFailedError(result));
      resolve(result);
    });
  });
}

const mb = (n: number) => `${(n / (1 << 20)).toFixed(1)} MB`;

/** sudo refused before the command ran: say why and what to do, instead of "exit code 1". */
function sudoFailure(run: ChannelRun, result: ExecResult, gate: BecomeGate | undefined): string | undefined {
  const who = `become (sudo to ${run.becomeUser ?? 'root'})`;
  if (gate) {
    if (gate.started) return undefined;
    if (gate.wrongPassword) return `${who} failed: sudo rejected the become password (check ansible_become_password for ${run.host})`;
    return `${who} failed before the command started`;
  }
  if (run.options.become && result.exitCode === 1 && SUDO_NEEDS_PASSWORD.test(result.stderr)) {
    return (
      `${who} failed: sudo on ${run.host} wants a password and none was given. ` +
      `Set ansible_become_password for the host, or allow the user NOPASSWD in sudoers`
    );
  }
  return undefined;
}
