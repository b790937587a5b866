/**
 * Issue 13, point 1: hostile values (quotes, $(), backticks, ;, newlines, spaces, %, :,
 * backslashes, non-ASCII) through the free-text params and inventory vars of the runbooks. Each is
 * either refused with its name before any host is touched (exit 2), or works with the value
 * intact — and nothing in any of them ever runs: canary files stay absent on every host. The
 * injection of the issue (`wal_archive_dir: "/var/lib/postgresql/arch x; touch /tmp/pwned-var
 * $(touch /tmp/pwned-sub)"`) archives into that very directory.
 *
 * One layout per lab of its own: hostile-values.test.ts (Debian, testLab('hostile', 15)) and
 * hostile-values-rhel.test.ts (RHEL, testLab('hostile-rhel', 16)) call it, so the two layouts run
 * side by side. Runs the compiled CLI (`npm run build`).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { labDown, labUp, readState } from '../../src/lab/index.js';
import { quoteWord } from '../../src/shell/quote.js';
import { inHost, testLab, type LabHostInfo } from '../support/lab.js';

const cli = new URL('../../bin/runbook.js', import.meta.url).pathname;

/** The exact injection of issue 13. */
const ISSUE_DIR = '/var/lib/postgresql/arch x; touch /tmp/pwned-var $(touch /tmp/pwned-sub)';
/** Hostile but carried by every format it goes through (printable ASCII, at most 63: application_name keeps only that). */
const ASCII_HOSTILE = `a 'q' "d" $(touch /tmp/pwned-1) \`touch /tmp/pwned-2\`; x:y\\z %p`;
/** Everything a secret may hold (no line break: refused, tested in unit tests). */
const PASSWORD = `pw'"$(touch /tmp/rb-canary-pw);\`touch /tmp/rb-canary-pw2\` :\\ ü %p`;
const HOSTILE_NL = `x$(touch /tmp/rb-canary-3)\n; touch /tmp/rb-canary-4 ü`;


interface Run {
  code: number;
  out: string;
}

/** One extra var as Ansible takes a value with spaces or quotes: JSON (key=value pairs are shell-split). */
const ev = (key: string, value: string): string => JSON.stringify({ [key]: value });

function runbook(inventory: string, id: string, ...args: string[]): Promise<Run> {
  const pg = ['setup-warm-standby', 'base-backup', 'failover', 'failback'].includes(id);
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cli, 'run', id, ...args, '-i', inventory, ...(pg ? ['--secret', 'replication_password=env:PGREPL_PW'] : [])],
      { encoding: 'utf8', timeout: 600_000, env: { ...process.env, CI: '1', PGREPL_PW: PASSWORD } },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, out: `${stdout}\n${stderr}` }),
    );
  });
}

export function hostileValues(layout: 'debian' | 'rhel', base: string, k: number): void {
  const lab = { layout, ...testLab(base, k) };
  const wanted = (process.env.RUNBOOK_LAB_LAYOUTS ?? 'debian,rhel').split(',').includes(layout);
  // skipped: RUNBOOK_LAB_LAYOUTS leaves this layout out
  (wanted ? describe : describe.skip)(`hostile values, ${layout} layout`, () => {
    const host: Record<string, LabHostInfo> = {};
    let base = '';
    let hostileInv = '';
    let shellInPgSettings = '';
    let broughtUp = false;

    const psql = (h: string, query: string) => inHost(host[h]!, `su -s /bin/sh postgres -c 'cd / && psql -XAtq -v ON_ERROR_STOP=1 -c "$0"' ${quoteWord(query)}`);
    const value = async (h: string, query: string) => {
      const r = await psql(h, query);
      if (r.code !== 0) throw new Error(`${h}: ${query}: ${r.stderr}`);
      return r.stdout.trim();
    };
    /** Every canary any hostile value tries to create, on every host of the lab. */
    const canaries = async () => {
      const found: string[] = [];
      for (const h of Object.values(host)) {
        const r = await inHost(h, `ls -d /tmp/pwned-* /tmp/rb-canary-* /var/lib/postgresql/pwned-* 2>/dev/null; find / -xdev \\( -name 'pwned-*' -o -name 'rb-canary-*' \\) 2>/dev/null | head -5`);
        if (r.stdout.trim()) found.push(`${h.name}: ${r.stdout.trim()}`);
      }
      return found;
    };
    const inventoryWith = (mutate: (doc: any) => void): string => {
      const doc = parse(readFileSync(base, 'utf8'));
      mutate(doc);
      const file = join(mkdtempSync(join(tmpdir(), 'rb-hostile-')), 'inventory.yml');
      writeFileSync(file, stringify(doc));
      return file;
    };

    beforeAll(async () => {
      if (!(process.env.RUNBOOK_LAB_REUSE === '1' && readState(lab.name))) {
        await labDown({ name: lab.name });
        await labUp({ name: lab.name, layout: lab.layout, subnet: lab.subnet });
        broughtUp = true;
      }
      const state = readState(lab.name)!;
      for (const h of state.spec.hosts) host[h.name] = { ...h, lab: lab.name, pid: state.hosts[h.name]!.init.pid };
      base = `/var/lib/runbook-lab/${lab.name}/inventory.yml`;
      hostileInv = inventoryWith((d) => {
        d.all.children.postgres.vars.pg_settings = { cluster_name: ASCII_HOSTILE };
        d.all.children.postgres.hosts.pg2.pg_application_name = ASCII_HOSTILE;
      });
      shellInPgSettings = inventoryWith((d) => {
        d.all.children.postgres.vars.pg_settings = { archive_command: 'cp %p /tmp/x/%f; touch /tmp/rb-canary-5' };
        d.all.children.postgres.hosts.pg1.pg_application_name = 'wörld';
      });
    }, 180_000);

    afterAll(async () => {
      if (broughtUp && process.env.RUNBOOK_LAB_KEEP !== '1') await labDown({ name: lab.name });
    });

    it('values no format can carry are refused with the param or var name, before any host is touched (exit 2)', async () => {
      const cases: Array<[string, string[], string, string?]> = [
        ['setup-warm-standby', ['-e', ev('wal_archive_dir', `/var/lib/postgresql/${HOSTILE_NL}`)], 'wal_archive_dir'],
        ['setup-warm-standby', ['-e', ev('replication_user', `${ASCII_HOSTILE}`)], 'replication_user'],
        ['setup-warm-standby', ['-e', ev('synchronous', `${HOSTILE_NL}`)], 'synchronous'],
        ['setup-warm-standby', [], 'pg_settings.archive_command: a shell command cannot come from pg_settings', 'shell'],
        ['setup-warm-standby', [], 'pg_application_name "wörld" must be 1-63 printable ASCII', 'shell'],
        ['base-backup', ['-e', ev('target', `${ASCII_HOSTILE}`)], 'target'],
        ['failover', ['-e', ev('candidate', `${HOSTILE_NL}`)], 'candidate'],
        ['failback', ['-e', ev('cluster_group', `${ASCII_HOSTILE}`)], 'cluster group'],
        ['enable-nfs-sharing', ['-e', ev('exportPath', `/srv/${ASCII_HOSTILE}`)], 'export path'],
        ['enable-nfs-sharing', ['-e', ev('mountOptions', `vers=3,${ASCII_HOSTILE}`)], 'mount option'],
        ['setup-vip', ['-e', ev('vip', `${ASCII_HOSTILE}`)], 'vip'],
      ];
      for (const [id, args, name, inv] of cases) {
        const r = await runbook(inv === 'shell' ? shellInPgSettings : base, id, '--yes', ...args);
        expect(r.code, `${id} ${args.join(' ')}\n${r.out}`).toBe(2);
        expect(r.out, id).toContain(name);
        expect(r.out, id).not.toMatch(/STEP /);
      }
      expect(await canaries()).toEqual([]);
      // Nothing was touched: pg2 is still the pristine stand-alone server the lab made.
      expect(await value('pg2', 'SELECT pg_is_in_recovery()')).toBe('f');
    }, 600_000);

    it('setup-warm-standby: the issue injection archives into that very directory; hostile password, application_name and cluster_name arrive intact; nothing runs', async () => {
      const r = await runbook(hostileInv, 'setup-warm-standby', '--yes', '-e', ev('wal_archive_dir', ISSUE_DIR));
      expect(r.code, r.out).toBe(0);
      expect(r.out).not.toContain(PASSWORD);
      expect(await canaries()).toEqual([]);

      // Archived to the exact path (a real directory of that name, a real segment in it).
      const ls = await inHost(host.pg1!, `ls -A ${quoteWord(ISSUE_DIR)}`);
      expect(ls.code, ls.stderr).toBe(0);
      expect(ls.stdout).toMatch(/^[0-9A-F]{24}$/m);
      expect(await value('pg1', 'SELECT failed_count FROM pg_stat_archiver')).toBe('0');
      expect(await value('pg1', "SELECT current_setting('basic_archive.archive_directory')")).toBe(ISSUE_DIR);

      // The standby streams under the hostile application_name, byte for byte; cluster_name likewise.
      expect(await value('pg1', 'SELECT application_name FROM pg_stat_replication')).toBe(ASCII_HOSTILE);
      expect(await value('pg1', "SELECT state FROM pg_stat_replication")).toBe('streaming');
      for (const h of ['pg1', 'pg2']) expect(await value(h, 'SHOW cluster_name'), h).toBe(ASCII_HOSTILE);
      expect(await value('pg2', 'SELECT pg_is_in_recovery()')).toBe('t');

      // A second run finds everything in place.
      const check = await runbook(hostileInv, 'setup-warm-standby', '--check', '-e', ev('wal_archive_dir', ISSUE_DIR));
      expect(check.code, check.out).toBe(0);
      expect(await canaries()).toEqual([]);
    }, 900_000);
  });
}
