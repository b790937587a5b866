/**
 * A secret is real on the wire and "***" everywhere else: toString, JSON, util.inspect and the
 * masking of any text (remote output, errors, reports) that happens to contain its value.
 */
import { inspect } from 'node:util';

export const MASK = '***';

/** Every secret value seen by this process, longest first, so masking never leaves a suffix. */
const knownValues = new Set<string>();

export class Secret {
  readonly #value: string;
  constructor(
    value: string,
    /** A name for messages ("replication_password"); never the value. */
    readonly name = 'secret',
    /**
     * false: not masked in other text (a SCRAM verifier sent as a Secret must still be readable
     * where the server reports it back, or a re-run could never see it matches).
     */
    maskInText = true,
  ) {
    if (typeof value !== 'string') throw new TypeError(`secret ${name}: value must be a string`);
    this.#value = value;
    // One-character secrets would mask half the output; they are still never printed directly.
    if (maskInText && value.length >= 3) knownValues.add(value);
  }
  /** The real value, for the wire only. Greppable on purpose. */
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return MASK;
  }
  toJSON(): string {
    return MASK;
  }
  [inspect.custom](): string {
    return `Secret(${this.name})`;
  }
}

export function secret(value: string, name?: string): Secret {
  return new Secret(value, name);
}

export function isSecret(value: unknown): value is Secret {
  return value instanceof Secret;
}

/** Replace every known secret value in a text by "***". Applied to everything we print or store. */
export function maskSecrets(text: string): string {
  if (knownValues.size === 0 || text.length === 0) return text;
  const values = [...knownValues].sort((a, b) => b.length - a.length);
  let out = text;
  for (const v of values) if (out.includes(v)) out = out.split(v).join(MASK);
  return out;
}

/** Deeply mask a JSON-able value (reports, journal lines). */
export function maskDeep<T>(value: T): T {
  return JSON.parse(maskSecrets(JSON.stringify(value ?? null))) as T;
}
