/**
 * Client authentication, in OpenSSH's order: ssh-agent, key files, then a password only when the
 * inventory gave one. Keys are parsed here, before connecting, because ssh2's connect() throws
 * synchronously on a wrong passphrase and a half-made connection is worse than a clear message.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import ssh2, { type AnyAuthMethod, type AuthHandlerMiddleware, type ParsedKey } from 'ssh2';
import type { Secret } from '../shell/secret.js';

export const PASSPHRASE_ENV = 'RUNBOOK_SSH_PASSPHRASE';

// ssh2 is CommonJS; its `utils` is not a named ESM export.
const { utils } = ssh2;

const DEFAULT_KEYS = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

export function defaultKeyFiles(): string[] {
  return DEFAULT_KEYS.map((k) => join(homedir(), '.ssh', k)).filter((f) => existsSync(f));
}

/** A key file could not be used; `explicit` keys are fatal, default keys are skipped with a note. */
export class KeyFileError extends Error {}

/** One prompt per key file per process, shared by the hosts that connect in parallel. */
const prompted = new Map<string, Promise<string | undefined>>();

function isEncryptedError(parsed: ParsedKey | Error): boolean {
  return parsed instanceof Error && /encrypted|passphrase/i.test(parsed.message);
}

function passphraseFor(file: string): Promise<string | undefined> {
  const fromEnv = process.env[PASSPHRASE_ENV];
  if (fromEnv !== undefined) return Promise.resolve(fromEnv);
  // A prompt without a TTY hangs CI forever: never ask there.
  if (!process.stdin.isTTY || !process.stderr.isTTY) return Promise.resolve(undefined);
  if (!prompted.has(file)) {
    prompted.set(
      file,
      import('@inquirer/prompts').then(({ password }) => password({ message: `Passphrase for ${file}:`, mask: true })),
    );
  }
  return prompted.get(file)!;
}

/** Load and decrypt a private key; throws KeyFileError saying what to do. */
export async function loadPrivateKey(file: string): Promise<ParsedKey> {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (error) {
    throw new KeyFileError(`cannot read private key ${file}: ${(error as Error).message}`);
  }
  let parsed = utils.parseKey(data);
  if (isEncryptedError(parsed)) {
    const passphrase = await passphraseFor(file);
    if (passphrase === undefined) {
      throw new KeyFileError(
        `private key ${file} is protected by a passphrase: set ${PASSPHRASE_ENV}, load the key into ssh-agent, or run in a terminal to be asked`,
      );
    }
    parsed = utils.parseKey(data, passphrase);
    if (parsed instanceof Error) {
      prompted.delete(file);
      throw new KeyFileError(`wrong passphrase for private key ${file} (${PASSPHRASE_ENV} or the prompt)`);
    }
  }
  if (parsed instanceof Error) throw new KeyFileError(`cannot parse private key ${file}: ${parsed.message}`);
  // A file may hold several keys; the first is the identity, as with OpenSSH.
  return Array.isArray(parsed) ? (parsed[0] as ParsedKey) : parsed;
}

export interface AuthPlan {
  methods: AnyAuthMethod[];
  /** Keys skipped (encrypted without a passphrase…), said when authentication fails. */
  notes: string[];
}

/**
 * The methods to try for a user. Explicit key files must load; default ones are best effort.
 */
export async function planAuth(options: {
  user: string;
  identityFiles: string[];
  password?: Secret;
  /** IdentityAgent: a socket path, or false (none / IdentitiesOnly): no agent. */
  agentSocket?: string | false;
}): Promise<AuthPlan> {
  const methods: AnyAuthMethod[] = [];
  const notes: string[] = [];
  const agent = options.agentSocket === false ? undefined : (options.agentSocket ?? process.env.SSH_AUTH_SOCK);
  if (agent) methods.push({ type: 'agent', username: options.user, agent });
  const explicit = options.identityFiles.length > 0;
  const files = explicit ? options.identityFiles : defaultKeyFiles();
  for (const file of files) {
    try {
      methods.push({ type: 'publickey', username: options.user, key: await loadPrivateKey(file) });
    } catch (error) {
      if (explicit && error instanceof KeyFileError) throw error;
      notes.push((error as Error).message);
    }
  }
  if (options.password) methods.push({ type: 'password', username: options.user, password: options.password.reveal() });
  return { methods, notes };
}

/** ssh2 authHandler walking the plan in order, then giving up; `onTry` hears each method's type (-vvv). */
export function authHandler(plan: AuthPlan, onTry?: (method: string) => void): AuthHandlerMiddleware {
  let next = 0;
  return (_left, _partial, callback) => {
    const method = plan.methods[next++];
    if (method) onTry?.(method.type === 'publickey' && typeof method.key === 'object' && 'type' in method.key ? `publickey (${method.key.type})` : method.type);
    callback(method ?? (false as unknown as AnyAuthMethod));
  };
}
