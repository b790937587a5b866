/**
 * The ssh config honoured live, through a real OpenSSH server on loopback (no lab): an Include'd
 * Host block giving user, port, key and UserKnownHostsFile; ProxyCommand through a subprocess
 * stream (nc); IdentityAgent none; StrictHostKeyChecking no accepting an unknown key with a warning.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnreachableError } from '../../src/errors.js';
import { raw } from '../../src/shell/command.js';
import { SshTransport } from '../../src/transport/index.js';
import type { ConnectionSpec } from '../../src/inventory/types.js';
import { startLoopbackSshd, type LoopbackSshd } from '../support/loopback-sshd.js';

let sshd: LoopbackSshd;
beforeAll(async () => {
  sshd = await startLoopbackSshd();
});
afterAll(async () => {
  await sshd?.stop();
});

/** Only the alias: everything else must come from the ssh config. */
const bare = (address: string): ConnectionSpec => ({ name: address, address, port: 22, user: '', become: false });

function config(lines: string[]): string {
  const t = sshd.target;
  writeFileSync(join(sshd.dir, 'inc.conf'), [
    'Host viainclude',
    `  HostName ${t.address}`,
    `  Port ${t.port}`,
    `  User ${t.user}`,
    `  IdentityFile ${t.privateKeyFile}`,
    `  UserKnownHostsFile ${t.knownHostsFile}`,
    '  IdentityAgent none',
    '',
  ].join('\n'));
  const file = join(sshd.dir, `config-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, [`Include ${sshd.dir}/inc*.conf`, ...lines, ''].join('\n'));
  return file;
}

async function whoami(file: string, spec: ConnectionSpec): Promise<string> {
  const transport = new SshTransport({ sshConfigFile: file });
  try {
    const c = await transport.connect(spec);
    return (await c.exec(raw('id -un'))).stdout.trim();
  } finally {
    await transport.closeAll();
  }
}

describe('ssh config, live', () => {
  it('Include: user, port, key, UserKnownHostsFile and IdentityAgent none from an included file', async () => {
    const saved = process.env.SSH_AUTH_SOCK;
    process.env.SSH_AUTH_SOCK = '/nonexistent/agent.sock'; // would fail if IdentityAgent none were ignored
    try {
      expect(await whoami(config([]), bare('viainclude'))).toBe(sshd.target.user);
    } finally {
      if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
      else process.env.SSH_AUTH_SOCK = saved;
    }
  });

  it('ProxyCommand: the connection is a subprocess stream (a netcat in node: nc is not installed)', async () => {
    const t = sshd.target;
    const relay = join(sshd.dir, 'relay.cjs');
    writeFileSync(relay, 'const s = require("net").connect(Number(process.argv[3]), process.argv[2]); process.stdin.pipe(s); s.pipe(process.stdout); s.on("error", () => process.exit(1));\n');
    const nc = `${process.execPath} ${relay}`;
    const file = config([
      'Host proxied',
      `  HostName ${t.address}`,
      `  Port ${t.port}`,
      `  User ${t.user}`,
      `  IdentityFile ${t.privateKeyFile}`,
      `  UserKnownHostsFile ${t.knownHostsFile}`,
      `  HostKeyAlias [${t.address}]:${t.port}`,
      `  ProxyCommand ${nc} %h %p`,
      // Port 1 is refused: only the ProxyCommand's own address can have worked.
      'Host proxied-refused',
      '  HostName 127.0.0.1',
      '  Port 1',
      `  User ${t.user}`,
      `  IdentityFile ${t.privateKeyFile}`,
      `  ProxyCommand ${nc} %h %p`,
    ]);
    expect(await whoami(file, bare('proxied'))).toBe(t.user);
    const error = await whoami(file, bare('proxied-refused')).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(UnreachableError);
    // The reason is the ProxyCommand's own failure, not the address it was given or a lost connection.
    expect((error as Error).message).toMatch(/^proxied-refused: unreachable: ProxyCommand ".*relay\.cjs 127\.0\.0\.1 1" exited with code 1/);
  });

  it('StrictHostKeyChecking no: an unknown key is accepted with a warning; yes refuses it', async () => {
    const t = sshd.target;
    const kh = join(sshd.dir, 'empty_known_hosts');
    writeFileSync(kh, '');
    const file = config([
      'Host lax strict',
      `  HostName ${t.address}`,
      `  Port ${t.port}`,
      `  User ${t.user}`,
      `  IdentityFile ${t.privateKeyFile}`,
      `  UserKnownHostsFile ${kh}`,
      'Host lax',
      '  StrictHostKeyChecking no',
      'Host strict',
      '  StrictHostKeyChecking yes',
    ]);
    const refused = await whoami(file, bare('strict')).then(() => undefined, (e: unknown) => e);
    expect((refused as Error).message).toMatch(/is not known/);
    const warnings: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => (warnings.push(String(chunk)), true)) as typeof process.stderr.write;
    try {
      expect(await whoami(file, bare('lax'))).toBe(t.user);
    } finally {
      process.stderr.write = write;
    }
    expect(warnings.join('')).toMatch(/was not known and is accepted unverified \(StrictHostKeyChecking no\)/);
    expect(readFileSync(kh, 'utf8')).toMatch(/ssh-ed25519 /);
  });
});
