/**
 * The ssh_config corpus (test/fixtures/ssh-config) evaluated by runbook and by OpenSSH's own
 * `ssh -G -F FILE HOST`: every option runbook honours must come out the same. Unsupported
 * constructs are refused naming the option and file:line.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BadInputError } from '../../../src/errors.js';
import { expandTilde, sshOptions, type SshOptions } from '../../../src/transport/openssh-config.js';

const SRC = join(import.meta.dirname, '../../fixtures/ssh-config');
const DIR = mkdtempSync(join(tmpdir(), 'rb-sshg-'));
cpSync(SRC, DIR, { recursive: true });
for (const f of [...readdirSync(DIR), ...readdirSync(join(DIR, 'conf.d')).map((n) => `conf.d/${n}`)]) {
  if (f.endsWith('.conf')) writeFileSync(join(DIR, f), readFileSync(join(DIR, f), 'utf8').replaceAll('@DIR@', DIR));
}
const { cases } = JSON.parse(readFileSync(join(SRC, 'cases.json'), 'utf8')) as { cases: Array<{ config: string; hosts: string[] }> };

const KEYS = [
  'hostname', 'port', 'user', 'identityfile', 'identitiesonly', 'identityagent', 'proxyjump', 'proxycommand', 'stricthostkeychecking',
  'userknownhostsfile', 'globalknownhostsfile', 'hostkeyalias', 'serveraliveinterval', 'serveralivecountmax', 'connecttimeout',
];
const DEFAULT_KEYS = ['id_rsa', 'id_ecdsa', 'id_ecdsa_sk', 'id_ed25519', 'id_ed25519_sk', 'id_xmss', 'id_dsa'].map((k) => `~/.ssh/${k}`);

function sshG(config: string, host: string): Record<string, string> {
  const out = execFileSync('ssh', ['-G', '-F', config, host], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const seen: Record<string, string[]> = {};
  for (const line of out.split('\n')) {
    const [k, ...rest] = line.split(' ');
    if (k && KEYS.includes(k)) (seen[k] ??= []).push(rest.join(' '));
  }
  const view: Record<string, string> = {};
  for (const [k, v] of Object.entries(seen)) view[k] = k === 'identityfile' ? (v.join('\n') === DEFAULT_KEYS.join('\n') ? '(defaults)' : v.map(expandTilde).join('\n')) : v.join(' ');
  return view;
}

/** Ours, printed the way ssh -G prints it. */
function ours(o: SshOptions): Record<string, string> {
  const strict = { yes: 'true', no: 'false', 'accept-new': 'accept-new', ask: 'ask' }[o.strictHostKeyChecking];
  return {
    hostname: o.hostname,
    port: String(o.port),
    user: o.user,
    identityfile: o.identityFiles.length ? o.identityFiles.join('\n') : '(defaults)',
    identitiesonly: o.identitiesOnly ? 'yes' : 'no',
    ...(o.identityAgent ? { identityagent: o.identityAgent } : {}),
    ...(o.proxyJump ? { proxyjump: o.proxyJump } : {}),
    stricthostkeychecking: strict,
    userknownhostsfile: o.userKnownHostsFiles.join(' '),
    globalknownhostsfile: o.globalKnownHostsFiles.join(' '),
    ...(o.hostKeyAlias ? { hostkeyalias: o.hostKeyAlias } : {}),
    serveraliveinterval: String(o.serverAliveInterval),
    serveralivecountmax: String(o.serverAliveCountMax),
    connecttimeout: o.connectTimeout === undefined ? 'none' : String(o.connectTimeout),
  };
}

describe('ssh_config as ssh -G sees it', () => {
  it.each(cases.flatMap((c) => c.hosts.map((h) => [c.config, h] as const)))('%s %s', (config, host) => {
    const theirs = sshG(join(DIR, config), host);
    const mine = ours(sshOptions(join(DIR, config), { host }));
    // ssh -G prints ProxyCommand before expanding its tokens; ours is expanded, so compare it apart.
    const { proxycommand, ...rest } = theirs;
    expect(mine).toEqual(rest);
    if (proxycommand) expect(sshOptions(join(DIR, config), { host }).proxyCommand).toBe(proxycommand.replace('%h', theirs.hostname!).replace('%p', theirs.port!));
  });

  it('expands %n %h %p %r %d ~ in UserKnownHostsFile, as ssh does', () => {
    const o = sshOptions(join(DIR, 'options.conf'), { host: 'files' });
    expect(o.userKnownHostsFiles).toEqual([join(homedir(), 'kh/files'), join(homedir(), `kh-files-22-${o.user}`)]);
  });

  it.each([
    ['Match exec "test -f /tmp/x"\n  User x\n', /:1: ssh config: "Match exec" is not supported by runbook \(it would run a command on every connection\)/],
    ['Host *\n  CertificateFile ~/.ssh/id_ed25519-cert.pub\n', /:2: ssh config: option certificatefile is not supported by runbook/],
    ['Host *\n  LocalCommand echo hi\n', /:2: ssh config: option localcommand is not supported by runbook/],
    ['Host *\n  IdentityFile ~/.ssh/${RUNBOOK_NO_SUCH_VAR}\n', /environment variable \$\{RUNBOOK_NO_SUCH_VAR\}.* is not set/],
  ])('refuses what it cannot honour, naming option and file:line: %j', (text, message) => {
    const file = join(DIR, `refuse-${Math.random().toString(36).slice(2)}.conf`);
    writeFileSync(file, text);
    let error: unknown;
    try {
      sshOptions(file, { host: 'any' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(BadInputError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message.startsWith(file)).toBe(true);
  });

  it('an option in a block that does not match this host is not refused', () => {
    const file = join(DIR, 'other-host.conf');
    writeFileSync(file, 'Host elsewhere\n  LocalCommand echo hi\nHost *\n  Port 2022\n');
    expect(sshOptions(file, { host: 'mine' }).port).toBe(2022);
  });
});
