/**
 * `ansible_connection=local` for real: commands run on this machine through the local transport
 * (same wire form as SSH: secrets on stdin, sudo for become, timeout, the watchdog), and
 * `runbook exec` on an inventory host that says ansible_connection=local. No lab, no sshd.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { raw, sh } from '../../src/shell/command.js';
import { secret } from '../../src/shell/secret.js';
import { LocalTransport } from '../../src/transport/local.js';
import { CommandFailedError } from '../../src/transport/types.js';
import type { ConnectionSpec } from '../../src/inventory/types.js';
import { runCliInProcess } from '../support/in-process-cli.js';
import { runCli as runCliProcess } from '../support/plan-vs-run.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rb-local-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const local = (extra: Partial<ConnectionSpec> = {}): ConnectionSpec => ({ name: 'localhost', connection: 'local', address: 'localhost', port: 22, user: 'root', become: false, ...extra });

/** Whether a process is still alive (signal 0 probes without killing). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(condition: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return condition();
}

describe('local transport', () => {
  it('runs a command: stdout, stderr, exit code; a secret reaches it on stdin, never in argv, masked in output', async () => {
    const t = new LocalTransport();
    try {
      const c = await t.connect(local());
      const pw = secret('local-s3cret-value');
      const r = await c.exec(sh`printf '%s\n' ${pw}; echo err >&2; ps -eo args | grep -c local-s3cret-valu[e]; exit 3`);
      expect(r.exitCode).toBe(3);
      // ps found no process whose argv holds the secret (grep -c prints 0), and the echo is masked.
      expect(r.stdout).toBe('***\n0\n');
      expect(r.stderr).toBe('err\n');
      expect(r.command).not.toContain('local-s3cret-value');
      await expect(c.exec(raw('exit 4'), { check: true })).rejects.toBeInstanceOf(CommandFailedError);
    } finally {
      await t.closeAll();
    }
  });

  it('become runs through sudo as the host\'s become user (or the one asked for)', async () => {
    const t = new LocalTransport();
    try {
      const c = await t.connect(local({ becomeUser: 'nobody' }));
      expect((await c.exec(raw('id -un'), { become: true })).stdout.trim()).toBe('nobody');
      expect((await c.exec(raw('id -un'), { become: 'root' })).stdout.trim()).toBe('root');
      expect((await c.exec(raw('id -un'))).stdout.trim()).toBe(userInfo().username);
    } finally {
      await t.closeAll();
    }
  });

  it('a timeout kills the command and says so', async () => {
    const t = new LocalTransport();
    try {
      const c = await t.connect(local());
      const started = Date.now();
      const r = await c.exec(raw('sleep 60'), { timeoutSec: 1 });
      expect(r.timedOut).toBe(true);
      expect(Date.now() - started).toBeLessThan(30_000);
    } finally {
      await t.closeAll();
    }
  });

  it('closing the connection (Ctrl-C) kills the command\'s whole process group, children included', async () => {
    const pids = join(dir, 'pids');
    const t = new LocalTransport();
    const c = await t.connect(local());
    // A shell with a background child: both must die.
    const running = c.exec(raw(`sleep 300 & echo $! > ${pids}; echo $$ >> ${pids}; wait`));
    expect(await until(() => existsSync(pids) && readFileSync(pids, 'utf8').trim().split('\n').length === 2, 20_000)).toBe(true);
    const [child, shell] = readFileSync(pids, 'utf8').trim().split('\n').map(Number) as [number, number];
    expect(alive(child) && alive(shell)).toBe(true);
    await t.closeAll();
    const r = await running;
    expect(r.exitCode === 0).toBe(false);
    expect(await until(() => !alive(child) && !alive(shell), 20_000)).toBe(true);
    await expect(c.exec(raw('true'))).rejects.toThrow(/closed by runbook/);
  });
});

describe('runbook exec on ansible_connection=local', () => {
  const runCli = runCliInProcess;

  it('runs the line on the controller for a localhost ansible_connection=local host (kolla, CI runners), with -b through sudo', async () => {
    const inventory = join(dir, 'hosts.ini');
    // An unreachable address: only the local transport can have run it.
    writeFileSync(inventory, 'localhost ansible_connection=local ansible_host=10.231.255.254 ansible_become_user=nobody\n');
    const r = await runCli(['exec', '-i', inventory, '--', 'echo "on $(hostname)"; id -un']);
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain(`localhost | CHANGED | rc=0\non ${(await import('node:os')).hostname()}\n`);
    const b = await runCli(['exec', '-i', inventory, '-b', '--', 'id -un']);
    expect(b.code).toBe(ExitCode.ok);
    expect(b.stdout).toContain('localhost | CHANGED | rc=0\nnobody\n');
  });

  it('without -i, the inventory comes from ansible.cfg (ANSIBLE_CONFIG), and -vv shows the command and its output', async () => {
    writeFileSync(join(dir, 'cfg-hosts.ini'), 'ci-runner ansible_connection=local\n');
    writeFileSync(join(dir, 'ansible.cfg'), '[defaults]\ninventory = cfg-hosts.ini\nforks = 2\n');
    process.env.ANSIBLE_CONFIG = join(dir, 'ansible.cfg');
    try {
      const r = await runCli(['exec', '-vv', '--', 'echo from-cfg']);
      expect(r.code).toBe(ExitCode.ok);
      expect(r.stdout).toContain('ci-runner | CHANGED | rc=0\nfrom-cfg\n');
      expect(r.stderr).toContain('<ci-runner> EXEC: echo from-cfg\n<ci-runner> STDOUT: from-cfg\n');
      const shown = await runCli(['config', '--only-changed']);
      expect(shown.stdout).toContain(`DEFAULT_HOST_LIST(${join(dir, 'ansible.cfg')}:2) = ['${join(dir, 'cfg-hosts.ini')}']`);
      expect(shown.stdout).toContain(`DEFAULT_FORKS(${join(dir, 'ansible.cfg')}:3) = 2`);
    } finally {
      delete process.env.ANSIBLE_CONFIG;
    }
  });

  it('Ctrl-C of runbook exec (SIGINT to the real CLI) ends with exit 130 and kills the command on the local host', async () => {
    const inventory = join(dir, 'intr.ini');
    const pidFile = join(dir, 'intr.pid');
    writeFileSync(inventory, 'localhost ansible_connection=local\n');
    const cli = new URL('../../bin/runbook.js', import.meta.url).pathname;
    const child = spawn(process.execPath, [cli, 'exec', '-i', inventory, '--', `sleep 300 & echo $! > ${pidFile}; wait`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    expect(await until(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '', 60_000)).toBe(true);
    const sleeper = Number(readFileSync(pidFile, 'utf8').trim());
    expect(alive(sleeper)).toBe(true);
    child.kill('SIGINT');
    expect(await exited).toBe(ExitCode.interrupted);
    expect(output).toMatch(/interrupted: the command was stopped on localhost/);
    expect(await until(() => !alive(sleeper), 20_000)).toBe(true);
  });

  it('plan -vv on a local host (the real CLI): the engine\'s commands and their output, the secret param masked', async () => {
    const inventory = join(dir, 'plan.ini');
    writeFileSync(inventory, 'localhost ansible_connection=local\n');
    const sample = new URL('../fixtures/runbooks/sample.ts', import.meta.url).pathname;
    const r = await runCliProcess(['plan', sample, '-i', inventory, '-e', `root=${join(dir, 'sample')}`, '--secret', 'token=env:RB_LOCAL_TOKEN', '-vv'], {
      cwd: dir,
      env: { RB_LOCAL_TOKEN: 'plan-tok-s3cret' },
      timeoutMs: 90_000,
    });
    expect(r.code).toBe(ExitCode.ok);
    expect(r.out).toContain(`<localhost> EXEC (become root): ( f=${join(dir, 'sample')}; if [ -e "$f" ]`);
    expect(r.out).toContain('<localhost> STDOUT: absent\n');
    expect(r.out).toMatch(/<localhost> rc=0 \(\d+\.\d\d s\)\n/);
    expect(r.out).not.toContain('plan-tok-s3cret');
  });

  it('a connection other than ssh or local is refused with the host and the value, exit 2', async () => {
    const inventory = join(dir, 'winrm.ini');
    writeFileSync(inventory, 'win1 ansible_connection=winrm\n');
    const r = await runCli(['exec', '-i', inventory, '--', 'true']);
    expect(r.code).toBe(ExitCode.badInput);
    expect(r.stderr).toMatch(/host win1: ansible_connection=winrm is not supported/);
  });
});
