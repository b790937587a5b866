/**
 * Issue 13, point 4 on a lab of its own (testLab('walarch', 26)): WAL archiving that survives a
 * crash mid-copy, and a broken archive that is a verification failure with its evidence.
 * - PostgreSQL 15 (basic_archive: temp file, fsync, rename): kill -9 of the archiver while it copies
 *   a segment (slowed by strace: a temp file of it is there, partial), then archiving goes on, every
 *   archived segment is whole, and setup-warm-standby's archive check passes.
 * - Before 15 (the archive_command runbook writes): the very command text, run as postgres on a lab
 *   host, killed with -9 mid-copy (its source is a FIFO fed halfway, so the kill is mid-copy for
 *   sure): nothing under the final name; the next attempt archives the segment intact.
 * - An archive directory that cannot be written (a read-only bind mount over it): exit 4, naming
 *   pg_stat_archiver.last_failed_wal; --check says archiving was not verified.
 * One lab, the cases in order. Runs the compiled CLI (`npm run build`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveCommand } from '../../src/modules/postgres/archive.js';
import { quoteWord } from '../../src/shell/quote.js';
import { inHost, ownLabDown, ownLabUp, testLab, type LabHostInfo, type OwnLab } from '../support/lab.js';
import { runCli } from '../support/plan-vs-run.js';

const lab = testLab('walarch', 26);
const env = { PGREPL_PW: 'wal-archive:pw' };
const DIR = '/var/lib/postgresql/rb-arch';
const SEGMENT = /^[0-9A-F]{24}$/;

describe('WAL archive: crash-safe copies, broken archive = exit 4 with the evidence (debian lab, PostgreSQL 15)', () => {
  let inventory = '';
  let own: OwnLab | undefined;
  const host: Record<string, LabHostInfo> = {};
  const setup = (...more: string[]) =>
    runCli(['run', 'setup-warm-standby', '-i', inventory, '--secret', 'replication_password=env:PGREPL_PW', '-e', `wal_archive_dir=${DIR}`, ...more], { cwd: '/tmp', env, timeoutMs: 600_000 });
  const sh = async (h: string, cmd: string) => {
    const r = await inHost(host[h]!, cmd);
    if (r.code !== 0) throw new Error(`${h}: ${cmd}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const psql = (h: string, query: string) => inHost(host[h]!, `su -s /bin/sh postgres -c 'cd / && psql -XAtq -v ON_ERROR_STOP=1 -c "$0"' ${quoteWord(query)}`);
  const value = async (h: string, query: string) => {
    const r = await psql(h, query);
    if (r.code !== 0) throw new Error(`${h}: ${query}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const answers = async (h: string) => (await psql(h, 'SELECT 1')).code === 0;

  beforeAll(async () => {
    own = await ownLabUp(lab);
    Object.assign(host, own.host);
    inventory = own.inventory;
  }, 600_000);

  afterAll(async () => {
    if (host.pg1) await inHost(host.pg1, `mountpoint -q ${DIR} && umount ${DIR}; true`);
    await ownLabDown(own);
  }, 300_000);

  it('setup-warm-standby with a local archive directory: basic_archive on 15, the check sees a switched segment archived', async () => {
    const r = await setup('--yes');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/pg1: ok: WAL segment [0-9A-F]{24} archived/);
    expect(await value('pg1', "SELECT current_setting('archive_library') || ' ' || current_setting('basic_archive.archive_directory')")).toBe(`basic_archive ${DIR}`);
    // A local directory: no restore_command (nothing would fill the standby's own directory).
    expect(await value('pg2', "SELECT current_setting('restore_command')")).toBe('');
  }, 600_000);

  it('kill -9 of the archiver mid-copy leaves no partial file that blocks archiving', async () => {
    // strace delays each write(2) of the archiver by 100 ms (basic_archive copies 64 KiB a write:
    // some 25 s a segment), so the kill comes mid-copy for sure, on a quiet or a loaded machine
    // alike (a kill that waited for a temp file to show up at full speed mostly missed the copy).
    await expect.poll(() => answers('pg1'), { timeout: 120_000, interval: 500 }).toBe(true);
    const switches = "DO $$ BEGIN FOR i IN 1..6 LOOP PERFORM pg_logical_emit_message(false, 'e2e', repeat('x', 1000)); PERFORM pg_switch_wal(); END LOOP; END $$";
    const out = await sh(
      'pg1',
      `set -e
p=$(ps -eo pid=,args= | awk '$2 ~ /^postgres:/ && / archiver/ { print $1; exit }')
[ -n "$p" ] || { echo "no archiver process" >&2; exit 1; }
strace -qq -o /dev/null -p "$p" -e trace=write -e inject=write:delay_enter=100ms & st=$!
end=$(($(date +%s) + 20)); until grep -q '^TracerPid:[[:space:]]*[1-9]' /proc/$p/status; do [ $(date +%s) -lt $end ] || { echo "strace did not attach" >&2; exit 1; }; sleep 0.05; done
su -s /bin/sh postgres -c 'cd / && psql -XAtq -v ON_ERROR_STOP=1 -c "$0"' ${quoteWord(switches)}
# Mid-copy: a temp file of at least 1 MiB, well short of the segment's 16 MiB.
end=$(($(date +%s) + 40)); until [ -n "$(find ${DIR} -maxdepth 1 -name 'archtemp.*' -size +1024k)" ]; do [ $(date +%s) -lt $end ] || { echo "no temp file grew in ${DIR}" >&2; exit 1; }; sleep 0.05; done
kill -KILL "$p"
wait $st || true
cd ${DIR} && for f in archtemp.*; do echo "$f $(stat -c %s "$f")"; done`,
    );
    const temps = out.split('\n').filter((l) => l.startsWith('archtemp.'));
    expect(temps, out).toHaveLength(1);
    const [tmpName, size] = temps[0]!.split(' ');
    expect(tmpName).toMatch(/^archtemp\.[0-9A-F]{24}\.\d+\.\d+$/);
    // Partial: the kill came mid-copy.
    expect(Number(size)).toBeLessThan(16 * 1024 * 1024);
    const killedSegment = tmpName!.split('.')[1]!;

    // The server restarts (an archiver crash restarts PostgreSQL from 14) and archiving goes on.
    await expect.poll(() => answers('pg1'), { timeout: 120_000, interval: 500 }).toBe(true);
    await expect
      .poll(() => value('pg1', "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"), { timeout: 180_000, interval: 1000 })
      .toBe('0');
    // The segment that was being copied when the kill came is archived whole, and so is each one
    // switched after it; no segment-named file is partial.
    expect(await sh('pg1', `stat -c %s ${DIR}/${killedSegment}`)).toBe(String(16 * 1024 * 1024));
    const names = (await sh('pg1', `ls ${DIR}`)).split('\n').filter((n) => SEGMENT.test(n));
    expect(names.filter((n) => n >= killedSegment).length).toBeGreaterThanOrEqual(6);
    expect(await sh('pg1', `cd ${DIR} && find . -maxdepth 1 -regex './[0-9A-F]*' ! -size 16777216c`)).toBe('');
    // The leftover is still there (basic_archive does not clean it up) and blocks nothing: the runbook's check passes.
    expect(await sh('pg1', `ls ${DIR}`)).toContain(tmpName);
    const r = await setup('--yes');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/pg1: ok: WAL segment [0-9A-F]{24} archived/);
  }, 900_000);

  it('before 15: the archive_command killed with -9 mid-copy leaves nothing under the final name; the retry archives it intact', async () => {
    const dir = '/var/lib/postgresql/rb-arch13';
    const src = '/var/lib/postgresql/rb-src';
    const seg = '000000010000000000000042';
    // As the server runs it: the GUC's text with %p and %f filled in, through /bin/sh as postgres.
    // setpriv, not su: su runs the command in a session of its own, out of reach of the kill of
    // the job's process group, and cp then finished the copy when the FIFO closed.
    const line = archiveCommand(dir).text.replace(/%([pf%])/g, (_m, c: string) => (c === 'p' ? `${src}/${seg}` : c === 'f' ? seg : '%'));
    const out = await sh(
      'pg1',
      `set -e
install -d -o postgres -g postgres -m 0700 ${dir} ${src}
rm -f ${src}/${seg}; mkfifo ${src}/${seg}; chown postgres: ${src}/${seg}
setsid setpriv --reuid=postgres --regid=postgres --init-groups /bin/sh -c ${quoteWord(line)} & job=$!
exec 3>${src}/${seg}
head -c 1048576 /dev/zero >&3
end=$(($(date +%s) + 20)); until [ -n "$(find ${dir} -name '.${seg}.rb-tmp.*' -size +0)" ] || [ $(date +%s) -ge $end ]; do sleep 0.05; done
kill -KILL -$job
exec 3>&-
wait $job || true
ls -A ${dir}`,
    );
    // Killed mid-copy: the temp file is there, the final name is not.
    expect(out.split('\n')).not.toContain(seg);
    expect(out).toMatch(new RegExp(`^\\.${seg}\\.rb-tmp\\.\\d+$`, 'm'));
    // The retry with the whole segment: archived under its name, byte for byte.
    const retry = await inHost(
      host.pg1!,
      `rm -f ${src}/${seg} && head -c 2097152 /dev/urandom > ${src}/${seg} && chown postgres: ${src}/${seg} && su -s /bin/sh postgres -c ${quoteWord(line)} && cmp ${src}/${seg} ${dir}/${seg} && su -s /bin/sh postgres -c ${quoteWord(line)}`,
    );
    expect(retry.code, retry.stderr).toBe(0);
  }, 300_000);

  it('an archive directory that cannot be written: exit 4 naming pg_stat_archiver.last_failed_wal; --check says not verified', async () => {
    // Owner and mode stay right (the runbook has nothing to repair); writes fail, as on a share gone read-only.
    await sh('pg1', `mount --bind ${DIR} ${DIR} && mount -o remount,bind,ro ${DIR}`);
    try {
      const r = await setup('--yes');
      expect(r.code, r.out).toBe(4);
      const m = /FAILED: verification failed: WAL archiving: WAL segment ([0-9A-F]{24}) did not reach \S+ within 30 s; pg_stat_archiver: failed_count (\d+), last_failed_wal ([0-9A-F]{24})/.exec(r.out);
      expect(m, r.out).not.toBeNull();
      expect(Number(m![2])).toBeGreaterThan(0);
      expect(await value('pg1', 'SELECT last_failed_wal FROM pg_stat_archiver')).toBe(m![3]);

      const c = await setup('--check');
      expect(c.out).toMatch(/pg1: not verified: not verified in check mode/);
      expect(c.out).not.toMatch(/WAL segment [0-9A-F]{24} archived/);
    } finally {
      await sh('pg1', `umount ${DIR}`);
    }
    // Repaired: archiving catches up and the check passes again.
    const ok = await setup('--yes');
    expect(ok.code, ok.out).toBe(0);
    expect(ok.out).toMatch(/pg1: ok: WAL segment [0-9A-F]{24} archived/);
  }, 600_000);
});
