#!/usr/bin/env node
// `npm run demo`: ensure-deps.sh (predemo) installed and built; this brings the lab up, runs
// setup-warm-standby unattended, checks the result itself through `runbook exec`, says what was
// verified, and leaves the lab up for you to look around.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { quoteWord } from '../dist/src/shell/quote.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const inventory = 'inventories/lab.yml';
const verified = [];

// The replication password is a secret param: passed through the environment, never on a command
// line. Made once and kept beside the lab's keys, so running the demo again changes nothing.
const passwordEnv = 'RUNBOOK_DEMO_REPLICATION_PASSWORD';
const passwordFile = '/var/lib/runbook-lab/demo-replication-password';
const env = { ...process.env, [passwordEnv]: process.env[passwordEnv] ?? demoPassword() };

function demoPassword() {
  if (!existsSync(passwordFile)) {
    mkdirSync(dirname(passwordFile), { recursive: true });
    writeFileSync(passwordFile, randomBytes(18).toString('base64url'), { mode: 0o600 });
  }
  return readFileSync(passwordFile, 'utf8').trim();
}

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

runbook(['run', 'setup-warm-standby', '-i', inventory, '--secret', `replication_password=env:${passwordEnv}`, '--yes'], 'setup-warm-standby converged pg1 (primary) → pg2 (standby), its own verifications passed');

// Then look for ourselves, as an admin would, through `runbook exec` (the project's own SSH transport).
const psql = (sql) => `cd / && runuser -u postgres -- psql -XAt -c ${JSON.stringify(sql)} 2>&1`;
check('pg2', psql('SELECT pg_is_in_recovery()'), /^t$/m, 'pg2 is in recovery (pg_is_in_recovery() = t)');
check('pg2', psql('CREATE TABLE test (name char(10));'), /cannot execute CREATE TABLE in a read-only transaction/, 'on pg2, CREATE TABLE test (name char(10)); fails: cannot execute CREATE TABLE in a read-only transaction');
check('pg1', psql('SELECT application_name, state FROM pg_stat_replication'), /^pg2\|streaming$/m, 'pg1 pg_stat_replication shows pg2 streaming');
check('pg1', psql("SELECT slot_name, active FROM pg_replication_slots WHERE slot_name = 'pg2'"), /^pg2\|t$/m, "pg1's replication slot pg2 is active");

/** Runs a shell line on one host and requires its output to match; prints what it saw. */
function check(host, line, expected, what) {
  const args = ['exec', '-i', inventory, '-l', host, '--become', '--', line];
  process.stdout.write(`\n$ runbook ${args.slice(0, -1).join(' ')} ${quoteWord(line)}\n`);
  const r = spawnSync(process.execPath, ['bin/runbook.js', ...args], { cwd: root, encoding: 'utf8', env });
  process.stdout.write(r.stdout + r.stderr);
  if (!expected.test(r.stdout)) {
    process.stderr.write(`\ndemo: expected ${expected} in the output above: ${what} does NOT hold. The lab stays up: npx runbook lab status\n`);
    process.exit(4);
  }
  verified.push(what);
}

process.stdout.write(`\nVerified:\n${verified.map((v) => `  ✓ ${v}`).join('\n')}\n`);
process.stdout.write(`
The lab is still up (npx runbook lab status). Next:
  ${passwordEnv}=… npx runbook run setup-warm-standby -i ${inventory} --secret replication_password=env:${passwordEnv}
                                                           interactive: check, plan, confirm, apply, verify
  npx runbook lab ssh pg1                                  a shell on pg1 as ops (sudo works)
  npx runbook lab down                                     tear the lab down
`);
