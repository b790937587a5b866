/**
 * Typed errors and the exit codes they map to. One meaning per exit code: the CLI's single
 * top-level catch turns a thrown RunbookError into its code, so commands never call process.exit.
 */
export const ExitCode = {
  ok: 0,
  /** A bug or an unexpected failure inside runbook itself. */
  internal: 1,
  /** Bad input: usage, inventory, runbook file, params. Nothing was touched. */
  badInput: 2,
  /** A step failed while applying on at least one host. */
  stepFailed: 3,
  /** A step applied, but its verification did not hold. */
  verifyFailed: 4,
  /** At least one host could not be reached (connect, auth, host key, keepalive). */
  unreachable: 5,
  /** A confirmation was declined, or was needed with no TTY and no approval. */
  confirmation: 6,
  /** Check mode: changes are pending. */
  changesPending: 7,
  /** A safety guard refused the action (e.g. wiping a writable node). No flag overrides it. */
  blocked: 8,
  /** The local environment cannot do this: not root, missing packages. */
  environment: 9,
  /** A drill could not restore the original topology. */
  topologyNotRestored: 10,
  /** Another run holds the cluster lock on a host; nothing was changed (docs/locks.md). */
  locked: 11,
  /** Interrupted by Ctrl-C / SIGTERM; the journal says where. */
  interrupted: 130,
} as const;
export type ExitCodeName = keyof typeof ExitCode;

export class RunbookError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Where in a file an input problem is: 1-based line and column. */
export interface SourcePosition {
  file: string;
  line?: number;
  col?: number;
}

export function formatPosition(pos: SourcePosition): string {
  if (pos.line === undefined) return pos.file;
  return `${pos.file}:${pos.line}:${pos.col ?? 1}`;
}

/** Bad user input: always names where, when it is in a file. */
export class BadInputError extends RunbookError {
  constructor(
    message: string,
    readonly position?: SourcePosition,
  ) {
    super(position ? `${formatPosition(position)}: ${message}` : message, ExitCode.badInput);
  }
}

export class EnvironmentError extends RunbookError {
  constructor(message: string) {
    super(message, ExitCode.environment);
  }
}

export class UnreachableError extends RunbookError {
  constructor(
    readonly host: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${host}: unreachable: ${reason}`, ExitCode.unreachable, options);
  }
}

export class ConfirmationError extends RunbookError {
  constructor(message: string) {
    super(message, ExitCode.confirmation);
  }
}

export class BlockedError extends RunbookError {
  constructor(message: string) {
    super(message, ExitCode.blocked);
  }
}

export class InterruptedError extends RunbookError {
  constructor(message = 'interrupted') {
    super(message, ExitCode.interrupted);
  }
}
