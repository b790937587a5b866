/**
 * `runbook init` in a real terminal (tmux gives the pane its own pty, so this runs in CI without
 * one): keystrokes answer the prompts, both host keys are confirmed, PostgreSQL is detected on the
 * lab hosts, and with the inventory it writes setup-warm-standby converges the lab
 * (testLab('init', 6): pg1, pg2). Without a terminal it refuses with the flags that do the same.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labDown, labPaths, labUp, readState } from '../../src/lab/index.js';
import { OPS_USER } from '../../src/lab/host-fs.js';
import { inHost, testLab, type LabHostInfo } from '../support/lab.js';
import { ttySession } from '../support/tty.js';
import { cli, runbook } from './support-intr.js';

const LAB = testLab('init', 6);
const PASSWORD = 'init-e2e-Repl-pw';
const host: Record<string, LabHostInfo> = {};
let broughtUp = false;

beforeAll(async () => {
  const reuse = process.env.RUNBOOK_LAB_REUSE === '1' && readState(LAB.name);
  if (!reuse) {
    await labDown({ name: LAB.name });
    await labUp({ name: LAB.name, subnet: LAB.subnet, hosts: 'pg1=db,pg2=db' });
    broughtUp = true;
  }
  const state = readState(LAB.name)!;
  for (const h of state.spec.hosts) host[h.name] = { ...h, lab: LAB.name, pid: state.hosts[h.name]!.init.pid };
}, 600_000);

afterAll(async () => {
  if (broughtUp && process.env.RUNBOOK_LAB_KEEP !== '1') await labDown({ name: LAB.name });
}, 120_000);

describe('runbook init', () => {
  it('without a terminal: exit 2 naming the flags that do the same', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rb-init-'));
    const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(process.execPath, [cli, 'init', '--dir', dir, '--user', OPS_USER], { encoding: 'utf8' }, (e, _o, stderr) => resolve({ code: e ? Number(e.code) : 0, stderr })),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no terminal to ask in, and --hosts, --key, --primary not given/);
    expect(r.stderr).toMatch(/--accept-new-host-keys/);
  });

  it('in tmux: prompts answered by keystrokes, host keys confirmed, layout detected, inventory written; setup-warm-standby converges with it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rb-init-'));
    const hosts = `pg1=${host.pg1!.address},pg2=${host.pg2!.address}`;
    const command = `cd ${dir} && PGREPL_PW=${PASSWORD} ${process.execPath} ${cli} init --secret replication_password=env:PGREPL_PW`;
    const screen = await ttySession(
      `rb-init-${process.pid}`,
      command,
      [
        { when: /Database hosts/, send: [hosts, 'Enter'] },
        { when: /SSH user:/, send: [OPS_USER, 'Enter'] },
        { when: /SSH private key file:/, send: [labPaths(LAB.name).clientKey, 'Enter'] },
        { when: /Which node is the primary\?/, send: ['Enter'] },
        { when: /Use sudo/, send: ['Enter'] },
        { when: /Virtual IP/, send: ['Enter'] },
        { when: /NFS host/, send: ['Enter'] },
        { when: /Is that the key of pg1\?/, send: ['y', 'Enter'] },
        { when: /Is that the key of pg2\?/, send: ['y', 'Enter'] },
      ],
      240_000,
    );
    expect(screen).toMatch(/pg1 \(\S+\) presents the host key ssh-ed25519 SHA256:\S+/);
    expect(screen).toMatch(/pg2: PostgreSQL 15 \(debian layout, data \/var\/lib\/postgresql\/15\/main\)/);
    expect(screen).toMatch(/setup-warm-standby/);
    expect(screen, screen).toMatch(/EXIT=0/);
    expect(readFileSync(join(dir, 'known_hosts'), 'utf8').trim().split('\n')).toHaveLength(2);
    expect(readFileSync(join(dir, 'group_vars/postgres.yml'), 'utf8')).toMatch(/^pg_primary: pg1$/m);
    expect(screen).not.toContain(PASSWORD);

    const inventory = join(dir, 'inventory.yml');
    const env = { PGREPL_PW: PASSWORD };
    const secret = ['--secret', 'replication_password=env:PGREPL_PW'];
    const run = await runbook(['run', 'setup-warm-standby', '-i', inventory, '--yes', ...secret], env);
    expect(run.code, run.out).toBe(0);
    const streaming = await inHost(host.pg1!, `su -s /bin/sh postgres -c "cd / && psql -XAtq -c \\"SELECT count(*) FROM pg_stat_replication WHERE application_name = 'pg2' AND state = 'streaming'\\""`);
    expect(streaming.stdout.trim(), streaming.stderr).toBe('1');
    // Converged: a check run finds nothing to change (exit 7 would mean pending changes).
    const check = await runbook(['run', 'setup-warm-standby', '-i', inventory, '--check', ...secret], env);
    expect(check.code, check.out).toBe(0);
  }, 900_000);
});
