/**
 * Secrets and the lock on the lab testLab('secrets', 27) (pg1 + pg2; a lab of its own so that it
 * runs beside interrupt.test.ts): with log_statement='all' on every node, setup-warm-standby, a
 * password rotation and a forced failing ALTER ROLE leave the password in no file on any host but
 * ~postgres/.pgpass; the failed rotation leaves .pgpass alone and the standby, made to reconnect,
 * still streams; then two `failover --yes` at once: one acts, the other exits 11 naming it.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, inHostWithSecret, intrDown, intrUp, psql, runbook, secretsLab, startRunbook, value, waitUntil, type IntrLab } from './support-intr.js';
import { inHost } from '../support/lab.js';

const OLD = 'sec-Old:pw\\7-a1';
const NEW = 'sec-New:pw\\7-b2';
const FAILED = 'sec-Failed:pw\\7-c3';
/** In the lab host: everywhere a server or a run could write (data dirs, logs, homes, /tmp, /run, /etc). */
const WHERE = '/var/lib/postgresql /etc/postgresql /var/log /tmp /root /home /run /srv /var/lib/runbook /etc';

let lab: IntrLab;
const cwd = mkdtempSync(join(tmpdir(), 'rb-secrets-'));
const run = (password: string, ...a: string[]) =>
  runbook(['run', ...a, '-i', lab.inventory, '--secret', 'replication_password=env:PGREPL_PW'], { PGREPL_PW: password, RUNBOOK_CLI: cli }, 600_000, cwd);

beforeAll(async () => {
  lab = await intrUp(secretsLab);
  // Every statement logged from the start, on both nodes (pg2's clone inherits pg1's auto.conf).
  for (const h of ['pg1', 'pg2']) {
    await value(lab.host[h]!, "ALTER SYSTEM SET log_statement = 'all'");
    await value(lab.host[h]!, 'SELECT pg_reload_conf()');
  }
}, 300_000);
afterAll(async () => intrDown(lab));

/** Files in the host holding `secret`, .pgpass excepted (grep gets it from its environment). */
async function filesWith(h: string, secret: string): Promise<string[]> {
  const r = await inHostWithSecret(lab.host[h]!, `grep -rlF --binary-files=text -e "$SECRET" ${WHERE} 2>/dev/null; true`, secret);
  return r.stdout.split('\n').filter((f) => f && f !== '/var/lib/postgresql/.pgpass');
}

async function pgpassHolds(h: string, secret: string): Promise<boolean> {
  const r = await inHostWithSecret(lab.host[h]!, `grep -qF -e "$(printf %s "$SECRET" | sed 's/[:\\\\]/\\\\&/g')" /var/lib/postgresql/.pgpass`, secret);
  return r.code === 0;
}

/** pg1's walsender for pg2 is killed: pg2 must log in again with what its .pgpass holds. */
async function reconnectedAndStreaming(): Promise<void> {
  const before = await value(lab.host.pg1!, "SELECT pid FROM pg_stat_replication WHERE application_name = 'pg2'");
  expect(before).toMatch(/^\d+$/);
  await value(lab.host.pg1!, `SELECT pg_terminate_backend(${before})`);
  await waitUntil(
    'pg2 streams again on a new connection',
    async () => {
      const r = await psql(lab.host.pg1!, "SELECT pid || ' ' || state FROM pg_stat_replication WHERE application_name = 'pg2'");
      const [pid, state] = r.stdout.trim().split(' ');
      return Boolean(pid) && pid !== before && state === 'streaming';
    },
    90_000,
    500,
  );
}

describe('a password no server log holds', () => {
  it('setup, a rotation and a failed rotation leave the password only in .pgpass; the failed one keeps replication', async () => {
    const setup = await run(OLD, 'setup-warm-standby', '--yes');
    expect(setup.code, setup.out).toBe(0);
    expect(await value(lab.host.pg2!, 'SELECT pg_is_in_recovery()')).toBe('t');
    expect(await value(lab.host.pg1!, "SELECT setting FROM pg_settings WHERE name = 'log_statement'")).toBe('all');
    expect(await value(lab.host.pg2!, "SELECT setting FROM pg_settings WHERE name = 'log_statement'")).toBe('all');

    const rotate = await run(NEW, 'setup-warm-standby', '--yes');
    expect(rotate.code, rotate.out).toBe(0);
    expect(rotate.out).toMatch(/role replicator: set password \(differs\)/);
    for (const h of ['pg1', 'pg2']) expect(await pgpassHolds(h, NEW), `${h} .pgpass`).toBe(true);
    await reconnectedAndStreaming();

    // A rotation whose ALTER ROLE fails: the server refuses writes for runbook's session.
    await value(lab.host.pg1!, 'ALTER ROLE postgres SET default_transaction_read_only = on');
    let failed;
    try {
      failed = await run(FAILED, 'setup-warm-standby', '--yes');
    } finally {
      await inHost(lab.host.pg1!, `su -s /bin/sh postgres -c "cd / && PGOPTIONS='-c default_transaction_read_only=off' psql -XAtq -c 'ALTER ROLE postgres RESET default_transaction_read_only'"`);
    }
    expect(failed.code, failed.out).toBe(3);
    expect(failed.out).toMatch(/pg-replication-role[\s\S]*read-only transaction/);
    // .pgpass was not rewritten (role first, .pgpass only after it), and replication survives a reconnect.
    for (const h of ['pg1', 'pg2']) {
      expect(await pgpassHolds(h, NEW), `${h} .pgpass still has the password the server has`).toBe(true);
      expect(await pgpassHolds(h, FAILED), `${h} .pgpass`).toBe(false);
    }
    await reconnectedAndStreaming();
    // The failing statement was logged (log_statement='all' saw runbook's session) — without the password.
    const log = await inHost(lab.host.pg1!, 'cat /var/log/postgresql/*.log');
    expect(log.stdout).toMatch(/ERROR: +cannot execute (ALTER ROLE|SET|CREATE|GRANT)[^\n]*read-only transaction/);

    for (const h of ['pg1', 'pg2'])
      for (const [name, pw] of [['old', OLD], ['new', NEW], ['failed', FAILED]] as const) expect(await filesWith(h, pw), `${h}: files with the ${name} password`).toEqual([]);
    // Nor in the controller's journals and reports.
    const journals = join(cwd, '.runbook');
    const files = existsSync(journals) ? readdirSync(journals, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()) : [];
    for (const f of files) {
      const text = readFileSync(join(f.parentPath, f.name), 'utf8');
      for (const pw of [OLD, NEW, FAILED]) expect(text.includes(pw), join(f.parentPath, f.name)).toBe(false);
    }
    for (const out of [setup.out, rotate.out, failed.out]) for (const pw of [OLD, NEW, FAILED]) expect(out).not.toContain(pw);
  }, 900_000);
});

describe('one changing run per cluster', () => {
  it('two failover --yes at once: exactly one acts, the other exits 11 before touching a host and names the first', async () => {
    // The primary crashes; both runs want to promote pg2.
    await inHost(lab.host.pg1!, 'kill -KILL "$(head -n 1 /var/lib/postgresql/15/main/postmaster.pid)"');
    const args = ['run', 'failover', '--yes', '-i', lab.inventory, '--secret', 'replication_password=env:PGREPL_PW'];
    const env = { PGREPL_PW: NEW, RUNBOOK_CLI: cli };
    const a = startRunbook(args, env, cwd);
    const b = startRunbook(args, env, cwd);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    const runs = [
      { r: ra, pid: a.child.pid },
      { r: rb, pid: b.child.pid },
    ];
    const acted = runs.filter((x) => x.r.code !== 11);
    const refused = runs.filter((x) => x.r.code === 11);
    expect(refused.map((x) => x.r.code), `${ra.out}\n----\n${rb.out}`).toEqual([11]);
    expect(acted[0]!.r.code, acted[0]!.r.out).toBe(0);
    const msg = refused[0]!.r.out;
    // Names the holder: its runbook, controller host, PID and start time, and how to break the lock.
    expect(msg).toMatch(new RegExp(`locked by run \\S+ \\(failover, \\S+@\\S+ PID ${acted[0]!.pid}, since \\d{4}-\\d\\d-\\d\\dT`));
    expect(msg).toMatch(/No host was changed/);
    expect(msg).toMatch(/--break-lock \S+/);
    // Before touching a host: no step of it ran.
    expect(msg).not.toMatch(/^\s*pg\d: (changed|ok|failed|would change)\b/m);
    expect(await value(lab.host.pg2!, 'SELECT pg_is_in_recovery()')).toBe('f');
    // Promoted once: one timeline switch (timeline 2 in the WAL file name).
    expect(await value(lab.host.pg2!, 'SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)')).toBe('00000002');
  }, 600_000);
});
