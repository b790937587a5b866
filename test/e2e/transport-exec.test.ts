/**
 * `runbook exec` end to end: a real inventory file, the real CLI (in-process), a real sshd on
 * loopback. Two inventory hosts point at the same sshd under different names; one at a closed port.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
  const host = (port: number, extra = '') =>
    `{ansible_host: ${t.address}, ansible_port: ${port}, ansible_user: ${t.user}, ` +
    `ansible_ssh_private_key_file: ${t.privateKeyFile}, runbook_known_hosts: ${t.knownHostsFile}${extra}}`;
  inventory = join(sshd.dir, 'inventory.yml');
  writeFileSync(
    inventory,
    [
      'all:',
      '  children:',
      '    web:',
      '      hosts:',
      `        web1: ${host(t.port)}`,
      `        web2: ${host(t.port, `, ansible_become_password: ${t.becomePassword}`)}`,
      '    dead:',
      '      hosts:',
      `        gone1: ${host(1)}`,
      '',
    ].join('\n'),
  );
});
afterAll(async () => {
  await sshd?.stop();
});

const runCli = runCliInProcess;

describe('runbook exec', () => {
  it('runs on several hosts in parallel, printing a header and the output verbatim per host', async () => {
    // A rendezvous instead of a stopwatch: each command leaves a file and waits (up to 15 s) for the
    // other's; both count 2 only if they ran at the same time.
    const meet = mkdtempSync(join(tmpdir(), 'rb-meet-'));
    chmodSync(meet, 0o777);
    const line = `mktemp -p ${meet} >/dev/null; i=0; while [ "$(ls ${meet} | wc -l)" -lt 2 ] && [ $i -lt 150 ]; do sleep 0.1; i=$((i+1)); done; ls ${meet} | wc -l; echo warn >&2`;
    const r = await runCli(['exec', '-i', inventory, '--limit', 'web', '--', line]);
    rmSync(meet, { recursive: true, force: true });
    expect(r.code).toBe(ExitCode.ok);
    for (const host of ['web1', 'web2']) expect(r.stdout).toContain(`${host} | CHANGED | rc=0\n2\nwarn\n`);
    expect(r.stdout).toMatch(/2 hosts: 2 ok, 0 failed, 0 unreachable/);
  });

  it('reports failures with their exit code and exits with the step-failed code', async () => {
    const r = await runCli(['exec', '-i', inventory, '--limit', 'web', '--', 'echo out; exit 2']);
    expect(r.code).toBe(ExitCode.stepFailed);
    expect(r.stdout).toContain('web1 | FAILED | rc=2\nout\n');
  });

  it('reports an unreachable host without holding up the others; unreachable wins the exit code', async () => {
    const r = await runCli(['exec', '-i', inventory, '--', 'sleep 1; exit 3']);
    expect(r.code).toBe(ExitCode.unreachable);
    expect(r.stdout).toMatch(/gone1 \| UNREACHABLE! \| connection refused/);
    expect(r.stdout).toContain('web1 | FAILED | rc=3');
    // The refused host is printed first: it did not wait for the others.
    expect(r.stdout.indexOf('gone1')).toBeLessThan(r.stdout.indexOf('web1'));
    expect(r.stdout).toMatch(/3 hosts: 0 ok, 2 failed, 1 unreachable/);
  });

  it('--become uses sudo -n, or the host become password, which never shows', async () => {
    const r = await runCli(['exec', '-i', inventory, '--limit', 'web', '--become', '--', 'id -un']);
    expect(r.stdout).toContain('web2 | CHANGED | rc=0\nroot\n');
    expect(r.stdout).toMatch(/web1 \| FAILED[^\n]*\n[^\n]*sudo on web1 wants a password[^\n]*ansible_become_password/);
    expect(r.stdout + r.stderr).not.toContain(sshd.target.becomePassword);
    expect(r.code).toBe(ExitCode.stepFailed);
  });

  it('--timeout kills the command on the host', async () => {
    const r = await runCli(['exec', '-i', inventory, '--limit', 'web1', '--timeout', '1', '--', 'sleep 30']);
    expect(r.stdout).toContain('web1 | FAILED | rc=124 | timed out');
    expect(r.ms).toBeLessThan(20_000); // killed at 1 s, not after its 30 s
  });

  it('refuses unknown host keys unless --accept-new-host-keys', async () => {
    const file = join(sshd.dir, 'exec-known-hosts');
    writeFileSync(file, '');
    const refused = await runCli(['exec', '-i', inventory, '--limit', 'web1', '--known-hosts', file, '--', 'true']);
    expect(refused.code).toBe(ExitCode.unreachable);
    expect(refused.stdout).toMatch(/web1 \| UNREACHABLE! \| .*SHA256:/);
    const accepted = await runCli(['exec', '-i', inventory, '--limit', 'web1', '--known-hosts', file, '--accept-new-host-keys', '--', 'true']);
    expect(accepted.code).toBe(ExitCode.ok);
  });

  it('needs the line after --', async () => {
    const r = await runCli(['exec', '-i', inventory]);
    expect(r.code).toBe(ExitCode.badInput);
  });
});
