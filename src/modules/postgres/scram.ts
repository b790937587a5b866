/**
 * Does a stored role verifier (pg_authid.rolpassword) match a password? PostgreSQL keeps
 * SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey> (or md5<hex>); recomputing the keys from the
 * salt lets a re-run tell "password already set" from "password differs" without storing or
 * printing anything new. ASCII passwords only are compared exactly (PostgreSQL SASLprep-normalises
 * others); a non-ASCII password that does not match is reported as differing and simply set again.
 */
import { createHash, createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';

export function verifierMatches(verifier: string, password: string, user: string): boolean {
  const scram = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(verifier);
  if (scram) {
    const [, iter, salt, storedKey, serverKey] = scram as unknown as [string, string, string, string, string];
    const salted = pbkdf2Sync(Buffer.from(password, 'utf8'), Buffer.from(salt, 'base64'), Number(iter), 32, 'sha256');
    const clientKey = createHmac('sha256', salted).update('Client Key').digest();
    const stored = createHash('sha256').update(clientKey).digest();
    const server = createHmac('sha256', salted).update('Server Key').digest();
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
