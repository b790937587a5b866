/**
 * Issue 11 on a lab of its own (testLab('planrun', 11): k=11): the plan's actions are the commands
 * the run sends (test/support/plan-vs-run.ts: `runbook plan --report json`, then the run, then its
 * journal), and the verifications are probes and checks that leave nothing behind:
 * three re-runs of setup-warm-standby keep the primary's tables as they were, no `public.test`
 * appears, a broken WAL archive exits 4 with the evidence while a guard still exits 8.
 *
 * One case per runbook path, in order on the same lab (the cases build on each other's cluster):
 * setup-warm-standby, base-backup -e reclone=true, failover after a stop of pg1 (it leaves pg2 the
 * primary), failback from there (pg1 rejoins with pg_rewind: the plan shows each alternative of
 * the dry run, the run takes one), then once more failover, a re-clone of pg1 from pg2 and a
 * failback whose switchover `runbook plan` can already show (pg1 a streaming standby): its gates,
 * its recoveries (the zero-loss gate's, caused: pg1 holds back its replay), and the marker row.
 * Runs the compiled CLI (`npm run build`).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quoteWord } from '../../src/shell/quote.js';
import { inHost, ownLabDown, ownLabUp, testLab, type LabHostInfo, type OwnLab } from '../support/lab.js';
import { followsPlan } from '../../src/engine/actions.js';
import { mismatches, planVsRun, runCli, withoutStamps } from '../support/plan-vs-run.js';

const lab = testLab('planrun', 11);
const PASSWORD = 'e2e-plan:pw\\2';
const env = { PGREPL_PW: PASSWORD };

describe('plans are what runs; verifications leave nothing behind (debian lab)', () => {
  let inventory = '';
  let own: OwnLab | undefined;
  const host: Record<string, LabHostInfo> = {};
  const args = () => ['-i', inventory, '--secret', 'replication_password=env:PGREPL_PW'];
  const run = (runbook: string, ...more: string[]) => runCli(['run', runbook, ...args(), ...more], { cwd: '/tmp', env });

  const psql = (h: string, query: string) => inHost(host[h]!, `su -s /bin/sh postgres -c 'cd / && psql -XAtq -v ON_ERROR_STOP=1 -c "$0"' ${quoteWord(query)}`);
  const value = async (h: string, query: string): Promise<string> => {
    const r = await psql(h, query);
    if (r.code !== 0) throw new Error(`${h}: ${query}: ${r.stderr}`);
    return r.stdout.trim();
  };
  /** Every table outside the system schemas, with its row count: what "the tables" are. */
  const tables = async (h: string): Promise<string> => {
    const names = (await value(h, "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1"))
      .split('\n')
      .filter(Boolean);
    const counts = await Promise.all(names.map(async (t) => `${t}=${await value(h, `SELECT count(*) FROM ${t}`)}`));
    return counts.join(' ');
  };

  beforeAll(async () => {
    own = await ownLabUp(lab);
    Object.assign(host, own.host);
    inventory = own.inventory;
  }, 600_000);

  afterAll(async () => {
    await ownLabDown(own);
  }, 300_000);

  it('setup-warm-standby on a fresh pair: every action it started is one its plan showed, in order', async () => {
    const r = await planVsRun('setup-warm-standby', args(), { runArgs: ['--yes'], env });
    expect(r.plan.code, r.plan.out).toBe(0);
    expect(r.run.code, r.run.out).toBe(0);
    // Something ran on both nodes, and each step@host that ran had a plan in the journal first.
    expect([...r.ran.keys()].some((k) => k.endsWith('@pg1'))).toBe(true);
    expect([...r.ran.keys()].some((k) => k.endsWith('@pg2'))).toBe(true);
    expect(mismatches(r, 'run')).toEqual([]);
    // The clone of the pristine pg2 ran as its plan's actions (no hand-written apply).
    expect(r.ran.get('clone-standby@pg2')?.some((a) => /^job: pg-clone-.*pg_basebackup/.test(a))).toBe(true);
    // Against `runbook plan`: the first change on each host is exact (later ones depend on it).
    const compared = [...r.ran.keys()].filter((k) => r.planned.get(k)?.mark === 'will-change');
    expect(compared.length).toBeGreaterThanOrEqual(2);
    expect(mismatches(r, 'plan')).toEqual([]);
    // The journal announces each action before its result.
    const firstAction = r.journal.findIndex((e) => e.type === 'action');
    const firstResult = r.journal.findIndex((e) => e.type === 'result' && e.status === 'changed');
    expect(firstAction).toBeGreaterThan(-1);
    expect(firstAction).toBeLessThan(firstResult);
    expect(JSON.stringify(r.journal)).not.toContain(PASSWORD);
    // The read-only test ran only on the standby, and left nothing on the primary.
    expect(await value('pg1', "SELECT to_regclass('public.test') IS NULL")).toBe('t');
    expect(r.run.out).toMatch(/pg2: ok: in recovery; "cannot execute CREATE TABLE in a read-only transaction"; streaming to pg1/);
    expect(r.run.out).toMatch(/pg2: ok: replayed past [0-9A-F]+\/[0-9A-F]+, written on pg1/);
  }, 600_000);

  it('--check reports the verifications as "not verified in check mode", exit 0, and runs no probe', async () => {
    const before = await value('pg1', 'SELECT pg_current_wal_lsn()');
    const c = await run('setup-warm-standby', '--check');
    expect(c.code, c.out).toBe(0);
    expect(c.out).toMatch(/pg2: not verified: not verified in check mode: the standby is in recovery, read-only/);
    expect(c.out).toMatch(/not-verified=\d/);
    // No WAL message was written (the round-trip probe did not run).
    expect(await value('pg1', `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '${before}') < 100`)).toBe('t');
  });

  // Ten, as issue 11 asks (a converged re-run takes ~3 s here): a verification that inserted a
  // row per run would leave ten.
  it('ten re-runs of setup-warm-standby leave the primary\'s tables as after the first; no public.test anywhere', async () => {
    const after1 = await tables('pg1');
    for (let i = 0; i < 10; i++) {
      // --yes: without a terminal, destructive steps need it even when they will change nothing.
      const r = await run('setup-warm-standby', '--yes');
      expect(r.code, r.out).toBe(0);
      expect(r.out, `run ${i + 2}`).not.toMatch(/changed=[1-9]/);
    }
    expect(await tables('pg1')).toBe(after1);
    expect(await value('pg1', "SELECT to_regclass('public.test') IS NULL")).toBe('t');
    expect(await value('pg2', "SELECT to_regclass('public.test') IS NULL")).toBe('t');
  }, 900_000);

  it('base-backup -e reclone=true: `runbook plan` prints every command of the re-clone, and the run sends exactly those', async () => {
    const before = await value('pg2', "SELECT current_setting('data_directory')");
    const r = await planVsRun('base-backup', [...args(), '-e', 'reclone=true', '-e', 'target=pg2'], { runArgs: ['--yes'], env });
    expect(r.plan.code, r.plan.out).toBe(0);
    expect(r.run.code, r.run.out).toBe(0);
    const pair = 'clone-standby@pg2';
    const planned = r.planned.get(pair)!;
    expect(planned.mark).toBe('will-change');
    expect(planned.ownApply).toBe(false);
    // The move-aside, the pg_basebackup line, the signal file, the start and the wait: in the plan, in order.
    const lines = planned.actions.join('\n');
    expect(lines).toMatch(new RegExp(`exec: mv ${before} ${before}\\.old\\.\\d{8}T\\d{6}`));
    expect(lines).toMatch(/job: pg-clone-\S+: .*pg_basebackup -d .*user=replicator.* -D \S+ -X stream -c fast -R -S pg2 -P/);
    expect(lines).toMatch(/exec: .*touch \S+\/standby\.signal/);
    expect(lines).toMatch(/exec: pg_ctlcluster 15 main start/);
    expect(lines).toMatch(/wait: until pg2 answers in recovery/);
    expect(r.plan.out).toMatch(/\$ \[job\] pg-clone-\S+: .*pg_basebackup/);
    expect(r.plan.out).not.toContain('own apply decides');
    // What ran is what the run's confirmation showed (exact), and what `runbook plan` showed (its clock aside).
    expect(mismatches(r, 'run')).toEqual([]);
    expect(withoutStamps(r.ran.get(pair)!)).toEqual(withoutStamps(planned.actions));
    expect(JSON.stringify(r.journal)).not.toContain(PASSWORD);
    // It really re-cloned: the old data dir is kept where the plan said, and pg2 streams again.
    const aside = /mv \S+ (\S+\.old\.\d{8}T\d{6})/.exec(r.ran.get(pair)!.join('\n'))![1]!;
    expect((await inHost(host.pg2!, `test -f ${aside}/PG_VERSION`)).code).toBe(0);
    expect(await value('pg2', 'SELECT pg_is_in_recovery()')).toBe('t');
  }, 600_000);

  it('the README\'s "Write your own runbook" example runs from an empty directory, and converges', async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## Write your own runbook'));
    const code = /```ts\n([\s\S]*?)```/.exec(section)![1]!;
    expect(code).toContain("from 'runbook'");
    const dir = mkdtempSync(join(tmpdir(), 'rb-readme-'));
    writeFileSync(join(dir, 'motd.ts'), code);
    const motd = () => runCli(['run', './motd.ts', '-i', inventory, '--limit', 'pg2', '-e', 'motd="hello from the README"'], { cwd: dir });
    const first = await motd();
    expect(first.code, first.out).toBe(0);
    expect(first.out).toMatch(/pg2: changed: write \/etc\/motd/);
    expect(first.out).toMatch(/pg2: ok: it does/);
    expect((await inHost(host.pg2!, 'cat /etc/motd')).stdout).toBe('hello from the README\n');
    const again = await motd();
    expect(again.code, again.out).toBe(0);
    expect(again.out).toMatch(/pg2: ok: already there/);
    expect(again.out).not.toMatch(/changed=[1-9]/);
  }, 300_000);

  // A foreign file under the name of the segment the check switches away from: the server cannot
  // archive it (basic_archive refuses a different file), and the probe goes by pg_stat_archiver.
  it('a broken WAL archive exits 4 with the evidence; a guard still exits 8', async () => {
    // Under /var/lib/postgresql: per host on the lab (the rest of /var/lib is the machine's, shared by every lab host).
    const dir = '/var/lib/postgresql/rb-e2e-archive';
    const ok = await run('setup-warm-standby', '--yes', '-e', `wal_archive_dir=${dir}`);
    expect(ok.code, ok.out).toBe(0);
    expect(ok.out).toMatch(/pg1: ok: WAL segment [0-9A-F]{24} archived/);
    // Break it: a different file already holds the name of the segment the check will switch away from.
    // The insert position, not pg_current_wal_lsn(): right after the check's switch nothing new may be
    // written yet, and the write position then sits on the segment boundary, which pg_walfile_name
    // gives as the segment just archived (the garbage then broke nothing and the run exited 0).
    const seg = await value('pg1', 'SELECT pg_walfile_name(pg_current_wal_insert_lsn())');
    expect((await inHost(host.pg1!, `test -e ${dir}/${seg} || echo absent`)).stdout.trim()).toBe('absent');
    expect((await inHost(host.pg1!, `echo garbage > ${dir}/${seg} && chown postgres: ${dir}/${seg}`)).code).toBe(0);
    const broken = await run('setup-warm-standby', '--yes', '-e', `wal_archive_dir=${dir}`);
    expect(broken.code, broken.out).toBe(4);
    expect(broken.out).toMatch(/FAILED: verification failed: .*/);
    expect(broken.out).toContain(seg);
    // The evidence: the server's own record of the segment it could not archive.
    expect(broken.out).toMatch(new RegExp(`pg_stat_archiver: failed_count [1-9]\\d*, last_failed_wal ${seg}`));
    expect(await value('pg1', 'SELECT last_failed_wal FROM pg_stat_archiver')).toBe(seg);
    // A guard is not a verification: base-backup aimed at the writable primary still exits 8.
    const guard = await run('base-backup', '--yes', '-e', 'target=pg1');
    expect(guard.code, guard.out).toBe(8);
    await inHost(host.pg1!, `rm -f ${dir}/${seg}`);
  }, 600_000);

  it('failover after an immediate stop of pg1: `runbook plan` shows the fence and the promote, and the run sends exactly what it showed', async () => {
    expect((await inHost(host.pg1!, 'pg_ctlcluster 15 main stop -m immediate')).code).toBe(0);
    const r = await planVsRun('failover', args(), { runArgs: ['--yes'], env });
    expect(r.plan.code, r.plan.out).toBe(0);
    expect(r.run.code, r.run.out).toBe(0);
    expect(r.plan.out).not.toContain('own apply decides');
    // The destructive steps' commands are in `runbook plan` itself, before anything runs.
    expect(r.plan.out).toMatch(/fence-old-primary: [\s\S]*\$ \[on pg1\] .*touch \S+\/standby\.signal/);
    expect(r.plan.out).toMatch(/promote: [\s\S]*\$ pg_ctlcluster 15 main promote/);
    expect(r.ran.get('fence-old-primary@pg2')!.join('\n')).toMatch(/exec@pg1: .*touch \S+\/standby\.signal/);
    expect(r.ran.get('promote@pg2')!.join('\n')).toMatch(/exec: pg_ctlcluster 15 main promote/);
    expect(mismatches(r, 'run')).toEqual([]);
    expect(mismatches(r, 'plan')).toEqual([]);
    expect(await value('pg2', 'SELECT pg_is_in_recovery()')).toBe('f');
    expect(JSON.stringify(r.journal)).not.toContain(PASSWORD);
  }, 600_000);

  it('failback after the failover: `runbook plan` shows the rewind with every alternative of the dry run, and the run sends one path of it', async () => {
    const r = await planVsRun('failback', args(), { runArgs: ['--yes'], env });
    expect(r.plan.code, r.plan.out).toBe(0);
    expect(r.run.code, r.run.out).toBe(0);
    const pair = 'rejoin-rewind@pg1';
    const planned = r.planned.get(pair)!;
    expect(planned.ownApply).toBe(false);
    // In `runbook plan` itself: the source check, the stop, the dry run and what each answer leads to.
    expect(r.plan.out).toMatch(/rejoin-rewind: [\s\S]*\$ \[choose\] the rewind source pg2 \(\S+\) answers pg1/);
    expect(r.plan.out).toMatch(/\$ .*pg_rewind -D \S+ --source-server='host=\S+ port=5432 user=replicator dbname=postgres application_name=pg1-rewind' --no-ensure-shutdown --config-file=\S+ --dry-run/);
    expect(r.plan.out).toMatch(/\$ \[choose\] what pg_rewind --dry-run says:\n\s+if "no rewind required":[\s\S]*if it cannot use the source[^\n]*:\n\s+\$ \[fail\] pg_rewind --dry-run could not use the source pg2/);
    expect(r.plan.out).not.toContain('own apply decides');
    // What ran: the dry run, its decision, and (whichever branch it took) the start and the wait.
    const ran = r.ran.get(pair)!.join('\n');
    expect(ran).toMatch(/exec: .*pg_rewind .*--dry-run/);
    expect(ran).toMatch(/choose: what pg_rewind --dry-run says/);
    expect(ran).toMatch(/wait: until pg1 answers in recovery/);
    expect(ran).not.toMatch(/fail: /);
    expect(r.run.out).toMatch(/what pg_rewind --dry-run says: ("no rewind required"|"servers diverged)/);
    // Every action it sent is in the plan it confirmed and in `runbook plan` (when that was its first change on pg1).
    expect(mismatches(r, 'run')).toEqual([]);
    expect(mismatches(r, 'plan')).toEqual([]);
    // The switchover back ran as its plan's actions too (its facts only existed after the rejoin).
    expect(r.ran.get('switchover@pg1')!.join('\n')).toMatch(/exec@pg2: .*pg_ctlcluster 15 main stop -m fast[\s\S]*exec: pg_ctlcluster 15 main promote[\s\S]*wait: until the marker row "switchover pg2->pg1 \S+" is on pg1: zero loss/);
    expect(await value('pg1', 'SELECT pg_is_in_recovery()')).toBe('f');
    expect(await value('pg2', 'SELECT pg_is_in_recovery()')).toBe('t');
    expect(JSON.stringify(r.journal)).not.toContain(PASSWORD);
  }, 900_000);

  it('switchover: with pg1 a streaming standby of pg2, `runbook plan failback` shows the gates and recoveries; a held-back replay takes the recovery it showed; the run sends exactly one path', async () => {
    expect((await inHost(host.pg1!, 'pg_ctlcluster 15 main stop -m immediate')).code).toBe(0);
    const fo = await run('failover', '--yes');
    expect(fo.code, fo.out).toBe(0);
    const pair = 'switchover@pg1';
    const bb = await run('base-backup', '--yes', '-e', 'target=pg1');
    expect(bb.code, bb.out).toBe(0);
    expect(await value('pg1', 'SELECT pg_is_in_recovery()')).toBe('t');
    // keepalived on both nodes: the switchover releases the VIP on pg2 and its recovery gives it back.
    const vip = await runCli(['run', 'setup-vip', '-i', inventory, '--yes'], { cwd: '/tmp', env });
    expect(vip.code, vip.out).toBe(0);
    // The VIP's release flag and holder, read on the hosts (not from the run's report).
    const flag = async (h: string) => (await inHost(host[h]!, 'cat /etc/keepalived/runbook-vip-release')).stdout.trim();
    const vipOn = async (h: string) => {
      const address = host.pg1!.address.replace(/\.\d+$/, '.100');
      for (const until = Date.now() + 10_000; Date.now() < until; await new Promise((res) => setTimeout(res, 200)))
        if ((await inHost(host[h]!, `ip -o -4 addr show | grep -qF ' ${address}/'`)).code === 0) return true;
      return false;
    };
    expect(await vipOn('pg2')).toBe(true);
    // The zero-loss gate's recovery, by causing its fault: pg1 streams but holds back every commit
    // (the marker row's among them), so it never replays past pg2's shutdown checkpoint.
    await value('pg1', "ALTER SYSTEM SET recovery_min_apply_delay = '1h'");
    await value('pg1', 'SELECT pg_reload_conf()');
    let held: Awaited<ReturnType<typeof planVsRun>>;
    try {
      held = await planVsRun('failback', args(), { runArgs: ['--yes'], env });
    } finally {
      await value('pg1', 'ALTER SYSTEM RESET recovery_min_apply_delay');
      await value('pg1', 'SELECT pg_reload_conf()');
    }
    expect(held.run.code, held.run.out).toBe(3);
    expect(held.run.out).toMatch(/FAILED: timed out after 30 s waiting until pg1 replayed past pg2's shutdown checkpoint .*: pg2 restarted as the primary; nothing lost, nothing switched/);
    // The recovery it ran is the one its plan showed under the group: every action explained, the path not complete (the step failed).
    const heldRan = held.views.ran.get(pair)!;
    expect(heldRan.map((a) => `${a.kind}${a.host ? `@${a.host}` : ''}: ${a.text}`).slice(-1)).toEqual(['exec@pg2: pg_ctlcluster 15 main start']);
    expect(followsPlan(held.views.plannedInRun.get(pair)!, heldRan)).toEqual({ explained: heldRan.length, complete: false });
    expect(await value('pg2', 'SELECT pg_is_in_recovery()')).toBe('f');
    expect(await value('pg1', 'SELECT pg_is_in_recovery()')).toBe('t');
    // The recovery cleared the release flag before restarting pg2: the VIP is back on it.
    expect(await flag('pg2')).toBe('0');
    expect(await vipOn('pg2')).toBe(true);
    const r = await planVsRun('failback', args(), { runArgs: ['--yes'], env });
    expect(r.plan.code, r.plan.out).toBe(0);
    expect(r.run.code, r.run.out).toBe(0);
    expect(r.planned.get(pair)!.mark).toBe('will-change');
    // The gates and recoveries are in `runbook plan`, in place.
    const text = r.plan.out.slice(r.plan.out.indexOf('[will-change] switchover:'));
    expect(text).toMatch(/\$ \[wait\] until pg1 streams from pg2/);
    expect(text).toMatch(/\$ \[on pg2\] .*\n\s+INSERT INTO "runbook_marker" \(note\) VALUES \('switchover pg2->pg1 [^']+'\); SELECT pg_current_wal_lsn\(\); CHECKPOINT;/);
    expect(text).toMatch(/\$ \[guarded\] pg1 takes over only once it replayed all of pg2:[\s\S]*\[wait\] until pg1 replayed past pg2's shutdown checkpoint <from pg_controldata>[\s\S]*if any of these fails:\n\s+\$ \[on pg2\] if \[ -f \/etc\/keepalived\/runbook-vip-release \]; then echo 0 > \S+; fi {4}# pg2 may hold VIP \S+ again when its check passes\n\s+\$ \[on pg2\] pg_ctlcluster 15 main start\n\s+then the step fails: pg2 restarted as the primary/);
    // The VIP moves as part of the switchover: released on pg2 right before its stop.
    expect(text).toMatch(/\$ \[on pg2\] if \[ -f \/etc\/keepalived\/runbook-vip-release \]; then echo 1 > \S+; fi {4}# VIP \S+ off pg2 now \(release flag\), not after its failed checks\n\s+\$ \[on pg2\] if pg_ctlcluster 15 main status >\/dev\/null 2>&1; then pg_ctlcluster 15 main stop -m fast; fi/);
    expect(text).toMatch(/\$ \[guarded\] the promote of pg1:[\s\S]*pg_ctlcluster 15 main promote[\s\S]*if any of these fails:[\s\S]*\[on pg2\] rm -f \S+\/standby\.signal/);
    // The run: the clean-shutdown branch, no recovery, the marker row found.
    const ran = r.ran.get(pair)!.join('\n');
    expect(ran).toMatch(/choose: pg_controldata of pg2/);
    expect(ran).not.toMatch(/rm -f \S+\/standby\.signal/);
    expect(r.run.out).toMatch(/pg_controldata of pg2: .*: pg2 shut down; shutdown checkpoint at \S+/);
    expect(mismatches(r, 'plan')).toEqual([]);
    expect(mismatches(r, 'run')).toEqual([]);
    // The rewind of pg2 after the switchover: one path of its own confirmed plan.
    expect(r.ran.get('rejoin-old-rewind@pg2')!.join('\n')).toMatch(/choose: what pg_rewind --dry-run says/);
    expect(await value('pg1', 'SELECT pg_is_in_recovery()')).toBe('f');
    expect(await value('pg2', 'SELECT pg_is_in_recovery()')).toBe('t');
    // The VIP followed the switchover, and the old primary's flag is cleared for the day it is promoted back.
    expect(await flag('pg2')).toBe('0');
    expect(await vipOn('pg1')).toBe(true);
    expect(JSON.stringify(r.journal)).not.toContain(PASSWORD);
  }, 900_000);
});
