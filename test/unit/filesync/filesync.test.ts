/** File sync: validation, source choice, and what it writes (cron, timer, authorized_keys), from fixtures. */
import { describe, expect, it } from 'vitest';
import { chooseSource, intervalProblems, parseConf, parseStatus, pathId, validateSync } from '../../../src/modules/filesync/spec.js';
import { authorizedKeyLine, authorizedKeysOption, forcedCommand, renderAuthorizedBlock, renderConf, renderCron, renderKnownHosts, renderScript, renderTimer } from '../../../src/modules/filesync/render.js';

const peer = (host: string, address: string, paths: string[]) => ({
  host,
  address,
  hostKey: 'ssh-ed25519 AAAAhost',
  keys: Object.fromEntries(paths.map((p) => [pathId(p), `ssh-ed25519 AAAA${host} runbook-filesync-files@${host}`])),
});

describe('file sync: the source comes from the servers', () => {
  it('the one writable node; sync_source must not contradict the servers', () => {
    expect(chooseSource({ pg1: 'primary', pg2: 'standby' }, undefined)).toMatchObject({ source: 'pg1' });
    expect(chooseSource({ pg1: 'down', pg2: 'primary' }, undefined)).toMatchObject({ source: 'pg2' });
    expect(chooseSource({ pg1: 'standby', pg2: 'standby' }, undefined)).toEqual({ error: expect.stringContaining('no node is a writable PostgreSQL primary') });
    expect(chooseSource({ pg1: 'primary', pg2: 'primary' }, undefined)).toEqual({ error: expect.stringContaining('split brain') });
    expect(chooseSource({ pg1: 'primary', pg2: 'standby' }, 'pg2')).toEqual({ error: expect.stringContaining('pg1 is the writable PostgreSQL node') });
    expect(chooseSource({ pg1: 'down', pg2: 'down' }, 'pg2')).toMatchObject({ source: 'pg2' });
    expect(chooseSource({ pg1: 'primary' }, 'pg9')).toEqual({ error: expect.stringContaining('not one of the nodes') });
  });
});

describe('file sync: bad input is refused with the param name', () => {
  const ok = { name: 'files', paths: ['/srv/uploads'], exclude: ['log/'], delete: false, interval: 60 };
  it('accepts a plain definition', () => expect(validateSync(ok)).toEqual([]));
  it.each([
    [{ name: 'Files x' }, 'name'],
    [{ paths: [] }, 'paths: give at least one'],
    [{ paths: ['relative/dir'] }, 'must be an absolute path'],
    [{ paths: ["/srv/a b"] }, 'must be an absolute path'],
    [{ paths: ['/srv/$(touch x)'] }, 'must be an absolute path'],
    [{ paths: ['/srv/"q'] }, 'must be an absolute path'],
    [{ paths: ['/'] }, 'paths: "/"'],
    [{ paths: ['/srv/../etc'] }, 'not a directory one can sync'],
    [{ paths: ['/srv', '/srv/x'] }, 'is inside'],
    [{ exclude: ['# comment'] }, 'starts with # or ;'],
    [{ exclude: ['a\nb'] }, 'newline'],
    [{ interval: 7 }, 'must divide 60'],
    [{ interval: 90 }, 'whole minutes'],
    [{ interval: 420 }, 'divide 60'],
    [{ interval: 2 }, 'at least 5'],
  ])('%j', (bad, msg) => {
    expect(validateSync({ ...ok, ...bad }).join('\n')).toContain(msg);
  });
  it('intervals cron can keep', () => {
    for (const i of [5, 10, 15, 20, 30, 60, 120, 300, 900, 1800, 3600, 7200, 86400]) expect(intervalProblems(i), String(i)).toEqual([]);
  });
});

describe('file sync: what it writes', () => {
  it('cron: one line per offset under a minute, a step from a minute on, only the script path (--scheduled)', () => {
    const c = renderCron('files', 20);
    expect(c.split('\n').filter((l) => l.startsWith('*'))).toEqual([
      '* * * * * root /usr/local/lib/runbook/filesync-files --scheduled',
      '* * * * * root sleep 20; /usr/local/lib/runbook/filesync-files --scheduled',
      '* * * * * root sleep 40; /usr/local/lib/runbook/filesync-files --scheduled',
    ]);
    expect(renderCron('files', 300)).toContain('\n*/5 * * * * root /usr/local/lib/runbook/filesync-files --scheduled\n');
    expect(renderCron('files', 60)).toContain('\n* * * * * root /usr/local/lib/runbook/filesync-files --scheduled\n');
    expect(renderCron('files', 7200)).toContain('\n0 */2 * * * root /usr/local/lib/runbook/filesync-files --scheduled\n');
    expect(renderCron('files', 60)).not.toContain('%');
  });
  it('systemd timer every interval', () => {
    expect(renderTimer('files', 30)).toContain('OnUnitActiveSec=30s');
  });
  it('authorized_keys: rrsync -ro below the path, from= the target, no pty, no forwarding; quotes escaped', () => {
    const t = peer('pg2', '10.0.0.12', ['/srv/uploads']);
    const line = authorizedKeyLine('/srv/uploads', t, 'files')!;
    expect(line).toMatch(/^restrict,no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding,no-user-rc,command="/);
    expect(line).toContain(`from="10.0.0.12" ssh-ed25519 AAAApg2 runbook-filesync-files@pg2`);
    expect(line).toContain(`exec /usr/bin/rrsync -ro /srv/uploads ;;`);
    // inside the option's double quotes, the command's own double quotes are escaped
    expect(line).toContain(`command="case \\"$SSH_ORIGINAL_COMMAND\\" in 'rsync --server '*)`);
    expect(authorizedKeysOption('command', 'a "b" \\c')).toBe('command="a \\"b\\" \\\\c"');
    expect(forcedCommand('/srv/x')).toContain("*) echo 'runbook filesync: this key only runs rsync' >&2; exit 1 ;;");
    // a target without a key for the path gets no line
    expect(authorizedKeyLine('/srv/other', t, 'files')).toBeNull();
    const block = renderAuthorizedBlock({ name: 'files', paths: ['/srv/uploads', '/srv/db'] }, [peer('pg2', '10.0.0.12', ['/srv/uploads', '/srv/db']), peer('pg3', '10.0.0.13', ['/srv/uploads', '/srv/db'])]);
    expect(block.trim().split('\n')).toHaveLength(4);
  });
  it('known_hosts under the addresses; conf and status round trip', () => {
    expect(renderKnownHosts([peer('pg1', '10.0.0.11', [])])).toBe('10.0.0.11 ssh-ed25519 AAAAhost\n');
    const conf = renderConf({ name: 'files', paths: ['/srv/a'], exclude: [], delete: true, interval: 20, source: 'pg1', sourceAddress: '10.0.0.11' });
    expect(parseConf(conf, '/srv/a\n', 'log/\n')).toEqual({ source: 'pg1', sourceAddress: '10.0.0.11', delete: true, interval: 20, paths: ['/srv/a'], exclude: ['log/'] });
    expect(parseStatus('ok 1796158275 10.0.0.11 kept=2\n')).toEqual({ ok: true, at: 1796158275, source: '10.0.0.11', kept: 2, detail: '' });
    expect(parseStatus('failed 1796158275 10.0.0.11 kept=0 rsync exit 12 for /srv/a')).toMatchObject({ ok: false, detail: 'rsync exit 12 for /srv/a' });
    expect(parseStatus(null)).toBeNull();
  });
  it('the script embeds only the sync name; it takes a lock and never overwrites what was written on the target', () => {
    const s = renderScript('files');
    expect(s).toContain('flock -n 9 || { [ -d "$state" ] && log "skipped: the previous sync still runs"; exit 0; }');
    // a cron job still sleeping when the schedule was removed pulls nothing: checked under the lock
    const lock = s.indexOf('flock -n 9');
    const guard = s.indexOf('[ -f /etc/cron.d/runbook-filesync-files ] || [ -f /etc/systemd/system/runbook-filesync-files.timer ] || exit 0');
    expect(guard).toBeGreaterThan(lock);
    expect(guard).toBeLessThan(s.indexOf('mkdir -p "$state"'));
    // --dry-run fails when rsync does (no "up to date" from a listing of nothing)
    expect(s).toContain('[ "$rc" = 0 ] || { echo "$path: rsync --dry-run from $src: exit $rc');
    expect(s).toContain('--exclude-from="$state/protect.$id"');
    expect(s).toContain("name=files\n");
    expect(s).not.toMatch(/10\.\d+\.\d+\.\d+/);
  });
  it('path ids are what the script computes (sha256 of the path, 12 hex)', () => {
    expect(pathId('/srv/files')).toMatch(/^[0-9a-f]{12}$/);
    expect(pathId('/srv/files')).toBe('5ab27a6d6cca');
  });
});
