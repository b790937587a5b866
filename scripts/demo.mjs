#!/usr/bin/env node
// `npm run demo`: ensure-deps.sh (predemo) installed and built; this brings the lab up, runs
// setup-warm-standby unattended when it exists (else an honest `runbook exec` across the hosts),
// says what was verified, and leaves the lab up for you to look around.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const inventory = 'inventories/lab.yml';
const verified = [];

// The replication password is a secret param: passed through the environment, never on a command line.
const passwordEnv = 'RUNBOOK_DEMO_REPLICATION_PASSWORD';
const env = { ...process.env, [passwordEnv]: process.env[passwordEnv] ?? randomBytes(18).toString('base64url') };

function runbook(args, what) {
  process.stdout.write(`\n$ runbook ${args.join(' ')}\n`);
  const r = spawnSync(process.execPath, ['bin/runbook.js', ...args], { cwd: root, stdio: 'inherit', env });
  if (r.status !== 0) {
    process.stderr.write(`\ndemo: ${what} failed (exit ${r.status}). The lab stays up: npx runbook lab status\n`);
    process.exit(r.status ?? 1);
  }
  verified.push(what);
}

if (process.getuid?.() !== 0) {
  process.stderr.write('demo: the lab needs root (network namespaces, mounts): run `sudo npm run demo`\n');
  process.exit(9);
}

runbook(['lab', 'up'], 'lab up: pg1, pg2 (PostgreSQL 15, Debian layout) and nfs1, each with its own sshd and host key');

if (existsSync(new URL('../dist/runbooks/setup-warm-standby.js', import.meta.url))) {
  runbook(['run', 'setup-warm-standby', '-i', inventory, '--secret', `replication_password=env:${passwordEnv}`, '--yes'], 'setup-warm-standby applied and verified on pg1 → pg2');
} else {
  process.stdout.write('\ndemo: runbooks/setup-warm-standby.ts is not built yet; checking the hosts with `runbook exec` instead\n');
  runbook(['exec', '-i', inventory, '--', 'echo "$(hostname) $(cat /etc/hostname) $(id -un)"'], 'ssh as ops to every host, host-key checking on; own hostname each');
  runbook(['exec', '-i', inventory, '--become', '--', 'id -u && ip -4 route'], 'passwordless sudo for ops; no route beyond the lab subnet');
  runbook(
    ['exec', '-i', inventory, '-l', 'postgres', '--become', '--become-user', 'postgres', '--', "pg_lsclusters -h && psql -XAtc 'select version()'"],
    'PostgreSQL 15 online and answering on pg1 and pg2',
  );
}

process.stdout.write(`\nVerified:\n${verified.map((v) => `  ✓ ${v}`).join('\n')}\n`);
process.stdout.write(`
The lab is still up (npx runbook lab status). Next:
  ${passwordEnv}=… npx runbook run setup-warm-standby -i ${inventory} --secret replication_password=env:${passwordEnv}
                                                           interactive: check, plan, confirm, apply, verify
  npx runbook lab ssh pg1                                  a shell on pg1 as ops (sudo works)
  npx runbook lab down                                     tear the lab down
`);
