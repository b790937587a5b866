/**
 * -v, -vv and -vvv of `runbook exec` through a real sshd on loopback: -v the commands, -vv also
 * their output, -vvv also the SSH events (connect, host key, auth method, keepalive); a secret
 * (the become password, echoed by the command) is masked in every line.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { runCliInProcess } from '../support/in-process-cli.js';
import { startLoopbackSshd, type LoopbackSshd } from '../support/loopback-sshd.js';

let sshd: LoopbackSshd;
let inventory: string;

beforeAll(async () => {
  sshd = await startLoopbackSshd();
  const t = sshd.target;
  inventory = join(sshd.dir, 'verbose.yml');
  writeFileSync(
    inventory,
    [
      'all:',
      '  hosts:',
      `    v1: {ansible_host: ${t.address}, ansible_port: ${t.port}, ansible_user: ${t.user}, ansible_ssh_private_key_file: ${t.privateKeyFile}, runbook_known_hosts: ${t.knownHostsFile}, ansible_become_password: ${t.becomePassword}}`,
      '',
    ].join('\n'),
  );
});
afterAll(async () => {
  await sshd?.stop();
});

/** The command echoes the secret on both streams: it must be masked wherever it is shown. */
const line = () => `echo out-line ${sshd.target.becomePassword}; echo err-line >&2`;

describe('exec -v .. -vvv', () => {
  it('-v: the command as it runs and how it ended; no output, no SSH events; the secret masked', async () => {
    const r = await runCliInProcess(['exec', '-i', inventory, '-v', '--', line()]);
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stderr).toContain('<v1> EXEC: echo out-line ***; echo err-line >&2\n');
    expect(r.stderr).toMatch(/<v1> rc=0 \(\d+\.\d\d s\)\n/);
    expect(r.stderr).not.toContain('STDOUT:');
    expect(r.stderr).not.toContain('ssh:');
    expect(r.stdout + r.stderr).not.toContain(sshd.target.becomePassword);
  });

  it('-vv: also each output line, by stream', async () => {
    const r = await runCliInProcess(['exec', '-i', inventory, '-vv', '--', line()]);
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stderr).toContain('<v1> EXEC: echo out-line ***');
    expect(r.stderr).toContain('<v1> STDOUT: out-line ***\n');
    expect(r.stderr).toContain('<v1> STDERR: err-line\n');
    expect(r.stderr).not.toContain('ssh:');
    expect(r.stdout + r.stderr).not.toContain(sshd.target.becomePassword);
  });

  it('-vvv: also the SSH events: connect, host key, auth method, keepalive; become shown, its password not', async () => {
    const r = await runCliInProcess(['exec', '-i', inventory, '-vvv', '-b', '--', line()]);
    expect(r.code).toBe(ExitCode.ok);
    const t = sshd.target;
    expect(r.stderr).toContain(`<v1> ssh: connecting to ${t.address}:${t.port} as ${t.user}\n`);
    expect(r.stderr).toMatch(/<v1> ssh: host key SHA256:\S+ verified/);
    expect(r.stderr).toMatch(/<v1> ssh: trying authentication method publickey \(ssh-ed25519\)/);
    expect(r.stderr).toMatch(new RegExp(`<v1> ssh: authenticated as ${t.user} \\(publickey \\(ssh-ed25519\\)\\); keepalive every 5000 ms, dead after 4 unanswered`));
    expect(r.stderr).toContain('<v1> EXEC (become root): echo out-line ***');
    expect(r.stderr).toContain('<v1> STDOUT: out-line ***\n');
    expect(r.stdout + r.stderr).not.toContain(t.becomePassword);
  });

  it('without -v: none of it', async () => {
    const r = await runCliInProcess(['exec', '-i', inventory, '--', line()]);
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stderr).not.toMatch(/<v1>/);
    expect(r.stdout).toContain('v1 | CHANGED | rc=0\nout-line ***\nerr-line\n');
  });
});
