/**
 * Does a stored role verifier (pg_authid.rolpassword) match a password? PostgreSQL keeps
 * SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey> (or md5<hex>); recomputing the keys from the
 * salt lets a re-run tell "password already set" from "password differs" without storing or
 * printing anything new. ASCII passwords only are compared exactly (PostgreSQL SASLprep-normalises
 * others); a non-ASCII password that does not match is reported as differing and simply set again.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

function scramKeys(password: string, salt: Buffer, iterations: number): { stored: Buffer; server: Buffer } {
  const salted = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  return { stored: createHash('sha256').update(clientKey).digest(), server: createHmac('sha256', salted).update('Server Key').digest() };
}

/**
 * The SCRAM-SHA-256 verifier PostgreSQL would store for this password (its own format, 4096
 * iterations, 16-byte salt): sent instead of the password, so no statement and no server log line
 * ever holds the password. ASCII passwords are exact; PostgreSQL SASLprep-normalises others.
 */
export function scramVerifier(password: string, iterations = 4096, salt: Buffer = randomBytes(16)): string {
  const { stored, server } = scramKeys(password, salt, iterations);
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${stored.toString('base64')}:${server.toString('base64')}`;
}

export function verifierMatches(verifier: string, password: string, user: string): boolean {
  const scram = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(verifier);
  if (scram) {
    const [, iter, salt, storedKey, serverKey] = scram as unknown as [string, string, string, string, string];
    const { stored, server } = scramKeys(password, Buffer.from(salt, 'base64'), Number(iter));
    return safeEqual(stored, Buffer.from(storedKey, 'base64')) && safeEqual(server, Buffer.from(serverKey, 'base64'));
  }
  if (/^md5[0-9a-f]{32}$/.test(verifier)) {
    const md5 = 'md5' + createHash('md5').update(password + user).digest('hex');
    return safeEqual(Buffer.from(md5), Buffer.from(verifier));
  }
  return false;
}

function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
