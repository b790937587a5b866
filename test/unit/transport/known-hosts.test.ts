import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  appendKnownHost,
  checkHostKey,
  entryMatches,
  fingerprint,
  hostKeyName,
  keyTypeOf,
  parseKnownHosts,
} from '../../../src/transport/known-hosts.js';

/** An ed25519-shaped key blob: string "ssh-ed25519", then 32 bytes. */
function blob(seed: number): Buffer {
  const type = Buffer.from('ssh-ed25519');
  const key = Buffer.alloc(32, seed);
  const len = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  return Buffer.concat([len(type.length), type, len(key.length), key]);
}
const b64 = (seed: number) => blob(seed).toString('base64');

function hashed(name: string, salt = Buffer.alloc(20, 7)): string {
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

describe('parseKnownHosts', () => {
  it('reads names, markers, comments and skips junk', () => {
    const entries = parseKnownHosts(
      [
        '# a comment',
        '',
        `db1,10.0.0.1 ssh-ed25519 ${b64(1)} comment words`,
        `@revoked * ssh-ed25519 ${b64(2)}`,
        `@cert-authority *.example ssh-ed25519 ${b64(3)}`,
        `@bogus db9 ssh-ed25519 ${b64(4)}`,
        'only-a-name',
      ].join('\n'),
    );
    expect(entries).toEqual([
      { patterns: ['db1', '10.0.0.1'], marker: undefined, keyType: 'ssh-ed25519', keyBase64: b64(1), line: 3 },
      { patterns: ['*'], marker: 'revoked', keyType: 'ssh-ed25519', keyBase64: b64(2), line: 4 },
      { patterns: ['*.example'], marker: 'cert-authority', keyType: 'ssh-ed25519', keyBase64: b64(3), line: 5 },
    ]);
  });
});

describe('matching names', () => {
  const entry = (hosts: string) => parseKnownHosts(`${hosts} ssh-ed25519 ${b64(1)}`)[0]!;

  it('uses [host]:port for ports other than 22', () => {
    expect(hostKeyName('db1', 22)).toBe('db1');
    expect(hostKeyName('db1', 2222)).toBe('[db1]:2222');
    expect(entryMatches(entry('[db1]:2222'), '[db1]:2222')).toBe(true);
    expect(entryMatches(entry('db1'), '[db1]:2222')).toBe(false);
  });

  it('matches comma lists, globs (case-insensitive) and honours negation', () => {
    expect(entryMatches(entry('a,DB1'), 'db1')).toBe(true);
    expect(entryMatches(entry('db?'), 'db7')).toBe(true);
    expect(entryMatches(entry('*.lab'), 'pg1.lab')).toBe(true);
    expect(entryMatches(entry('*.lab,!pg1.lab'), 'pg1.lab')).toBe(false);
    expect(entryMatches(entry('db.'), 'dbx')).toBe(false); // '.' is literal
  });

  it('matches hashed |1|salt|hmac names', () => {
    expect(entryMatches(entry(hashed('[10.0.0.5]:2222')), '[10.0.0.5]:2222')).toBe(true);
    expect(entryMatches(entry(hashed('[10.0.0.5]:2222')), '10.0.0.5')).toBe(false);
  });
});

describe('checkHostKey', () => {
  const file = [`db1 ssh-ed25519 ${b64(1)}`, `db1 ssh-rsa AAAAB3NzaC1yc2E=`, `@revoked * ssh-ed25519 ${b64(9)}`].join('\n');
  const entries = parseKnownHosts(file);

  it('knows a recorded key', () => {
    expect(checkHostKey(entries, 'db1', blob(1))).toEqual({ status: 'known' });
  });
  it('calls another key of the same type changed, naming the line', () => {
    expect(checkHostKey(entries, 'db1', blob(2))).toEqual({ status: 'changed', line: 1 });
  });
  it('calls a host it has never seen unknown', () => {
    expect(checkHostKey(entries, 'db2', blob(1))).toEqual({ status: 'unknown' });
  });
  it('refuses a revoked key even for a host that lists it', () => {
    const withRevoked = parseKnownHosts(`db3 ssh-ed25519 ${b64(9)}\n@revoked * ssh-ed25519 ${b64(9)}`);
    expect(checkHostKey(withRevoked, 'db3', blob(9))).toEqual({ status: 'revoked', line: 2 });
  });
});

describe('fingerprint', () => {
  it('matches ssh-keygen -l', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rb-fp-'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'k')]);
    const [type, key] = readFileSync(join(dir, 'k.pub'), 'utf8').split(' ');
    const expected = execFileSync('ssh-keygen', ['-lf', join(dir, 'k.pub')], { encoding: 'utf8' }).split(' ')[1];
    const keyBlob = Buffer.from(key!, 'base64');
    expect(fingerprint(keyBlob)).toBe(expected);
    expect(fingerprint(keyBlob)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(keyTypeOf(keyBlob)).toBe(type);
  });
});

describe('appendKnownHost', () => {
  it('appends a hashed line that ssh-keygen -F finds, keeping a missing final newline', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rb-kh-'));
    const file = join(dir, 'sub', 'known_hosts');
    appendKnownHost(file, '[127.0.0.1]:2200', blob(5));
    writeFileSync(file, readFileSync(file, 'utf8').trimEnd()); // no newline at the end
    appendKnownHost(file, 'db7', blob(6));
    const entries = parseKnownHosts(readFileSync(file, 'utf8'));
    expect(entries).toHaveLength(2);
    expect(checkHostKey(entries, '[127.0.0.1]:2200', blob(5))).toEqual({ status: 'known' });
    expect(checkHostKey(entries, 'db7', blob(6))).toEqual({ status: 'known' });
    expect(readFileSync(file, 'utf8')).not.toContain('db7');
    expect(execFileSync('ssh-keygen', ['-F', 'db7', '-f', file], { encoding: 'utf8' })).toContain(b64(6));
  });
});
