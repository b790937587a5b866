/**
 * The drill in a terminal asks before it injects the fault, and a "no" touches nothing: the
 * inventory's hosts are closed loopback ports, so any attempt to reach them would end in an
 * unreachable error (exit 5 or 10), never in the declined code (6).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { ttySession } from '../../support/tty.js';

const bin = fileURLToPath(new URL('../../../bin/runbook.js', import.meta.url));

it('asks before the fault in a terminal; "no" exits 6 without touching a host', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'drill-tty-'));
  const inventory = join(dir, 'inventory.yml');
  writeFileSync(
    inventory,
    'postgres:\n  hosts:\n    pg1: { ansible_host: 127.0.0.1, ansible_port: 1 }\n    pg2: { ansible_host: 127.0.0.1, ansible_port: 1 }\n  vars:\n    pg_primary: pg1\n',
  );
  const screen = await ttySession(`rb-drill-tty-${process.pid}`, `cd ${dir} && RB_TTY_PW=unused ${process.execPath} ${bin} drill -i ${inventory} --fault kill --secret replication_password=env:RB_TTY_PW`, [
    { when: /Go ahead\?/, send: ['n', 'Enter'] },
  ]);
  expect(screen).toContain('fault: SIGKILL of the postmaster on pg1');
  expect(screen).toContain('drill declined: nothing was touched');
  expect(screen).toMatch(/EXIT=6/);
});
