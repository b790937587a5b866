/**
 * known_hosts, as OpenSSH reads it: plain and hashed (`|1|salt|hmac`) names, `[host]:port` for ports
 * other than 22, comma lists, `*`/`?` globs and `!negation`, `@revoked` markers, comments. A host key
 * is accepted only when a line for this host holds exactly this key blob.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export interface KnownHostEntry {
  /** Host patterns as written (a hashed entry has one `|1|…` pattern). */
  patterns: string[];
  marker?: 'revoked' | 'cert-authority';
  keyType: string;
  /** The key blob, base64 as in the file. */
  keyBase64: string;
  line: number;
}

export type HostKeyVerdict =
  | { status: 'known' }
  | { status: 'unknown' }
  | { status: 'changed'; line: number }
  | { status: 'revoked'; line: number };

export function defaultKnownHostsFile(): string {
  return join(homedir(), '.ssh', 'known_hosts');
}

/** The name OpenSSH writes and looks up: `host` on port 22, `[host]:port` otherwise. */
export function hostKeyName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** `SHA256:…` (base64 without padding), as `ssh-keygen -l` and OpenSSH's prompts print it. */
export function fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside an SSH public key blob (its first length-prefixed string). */
export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return 'unknown';
  const len = keyBlob.readUInt32BE(0);
  return keyBlob.subarray(4, 4 + len).toString('latin1');
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0]?.startsWith('@')) {
      const m = fields.shift()!.slice(1);
      // An unknown marker makes OpenSSH skip the line; do the same.
      if (m !== 'revoked' && m !== 'cert-authority') return;
      marker = m;
    }
    const [hosts, keyType, keyBase64] = fields;
    if (!hosts || !keyType || !keyBase64) return;
    entries.push({ patterns: hosts.split(','), marker, keyType, keyBase64, line: i + 1 });
  });
  return entries;
}

/** Does a (plain or hashed) known_hosts pattern list name this host? OpenSSH's match_hostname. */
export function entryMatches(entry: KnownHostEntry, name: string): boolean {
  let matched = false;
  for (const pattern of entry.patterns) {
    if (pattern.startsWith('|1|')) {
      if (hashedMatches(pattern, name)) matched = true;
      continue;
    }
    const negated = pattern.startsWith('!');
    const glob = negated ? pattern.slice(1) : pattern;
    if (globMatches(glob.toLowerCase(), name.toLowerCase())) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

function hashedMatches(pattern: string, name: string): boolean {
  const [, , salt, hash] = pattern.split('|');
  if (!salt || !hash) return false;
  const digest = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
  return digest === hash;
}

function globMatches(glob: string, text: string): boolean {
  if (!/[*?]/.test(glob)) return glob === text;
  const re = new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return re.test(text);
}

/** Verdict for the key a host presented, from the entries naming it. Revocation beats everything. */
export function checkHostKey(entries: readonly KnownHostEntry[], name: string, keyBlob: Buffer): HostKeyVerdict {
  const blob = keyBlob.toString('base64');
  const type = keyTypeOf(keyBlob);
  const revoked = entries.find((e) => e.marker === 'revoked' && e.keyBase64 === blob);
  if (revoked) return { status: 'revoked', line: revoked.line };
  const mine = entries.filter((e) => !e.marker && entryMatches(e, name));
  if (mine.some((e) => e.keyBase64 === blob)) return { status: 'known' };
  // A different key of the same type is a changed key; only other types known means unknown, as in OpenSSH.
  const other = mine.find((e) => e.keyType === type);
  return other ? { status: 'changed', line: other.line } : { status: 'unknown' };
}

/** Key types recorded for this host, so the client asks for a key it can verify first. */
export function knownKeyTypes(entries: readonly KnownHostEntry[], name: string): string[] {
  return [...new Set(entries.filter((e) => !e.marker && entryMatches(e, name)).map((e) => e.keyType))];
}

export function readKnownHosts(file: string): KnownHostEntry[] {
  return existsSync(file) ? parseKnownHosts(readFileSync(file, 'utf8')) : [];
}

/** Record a key (accept-new). Hashed like OpenSSH's HashKnownHosts, so the file does not list hosts. */
export function appendKnownHost(file: string, name: string, keyBlob: Buffer): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const salt = randomBytes(20);
  const hash = createHmac('sha1', salt).update(name).digest('base64');
  const current = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const prefix = current && !current.endsWith('\n') ? '\n' : '';
  // O_APPEND: parallel connections each add a whole line.
  appendFileSync(file, `${prefix}|1|${salt.toString('base64')}|${hash} ${keyTypeOf(keyBlob)} ${keyBlob.toString('base64')}\n`, {
    mode: 0o600,
  });
}
