/** Pure plans from fixture facts ({args, facts} → commands or noop reason), pyinfra-style. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type BlockState, blockText, managedBlock, planBlock, planDirectory, planFile, planLine } from '../../../src/core/file-ops.js';
import { planService } from '../../../src/core/service.js';
import { planCommand } from '../../../src/core/command-op.js';
import { parseFileInfo } from '../../../src/core/file-facts.js';
import { sh, stdinText } from '../../../src/shell/command.js';
import { secret } from '../../../src/shell/secret.js';
import { toWire } from '../../../src/shell/wire.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const cmds = (p: any) => (p.kind === 'change' ? p.commands.map(String) : p);

describe('file', () => {
  const info = (content: string, mode = '0644') => ({ exists: true, type: 'file' as const, mode, owner: 'root', group: 'root', size: content.length, sha256: sha(content) });
  it('noop when sha256, mode and owner match', () => {
    expect(planFile({ path: '/etc/x', content: 'a\n', mode: '0644' }, { info: info('a\n'), current: 'a\n' })).toEqual({ kind: 'noop', reason: '/etc/x is up to date' });
  });
  it('rewrites atomically with a diff when the content differs', () => {
    const p = planFile({ path: '/etc/x', content: 'b\n' }, { info: info('a\n'), current: 'a\n' });
    expect(p.kind).toBe('change');
    if (p.kind !== 'change') return;
    expect(p.summary).toBe('update /etc/x');
    expect(String(p.commands[0])).toContain("mktemp /etc/x.rb-XXXXXX");
    expect(String(p.commands[0])).toContain('mv -f "$tmp" /etc/x');
    expect(p.diff).toContain('-a\n+b');
  });
  it('only chmods when only the mode differs', () => {
    expect(cmds(planFile({ path: '/etc/x', content: 'a\n', mode: '0600' }, { info: info('a\n'), current: 'a\n' }))).toEqual(['chmod 0600 -- /etc/x']);
  });
  it('masks secret content in plans and diffs', () => {
    const s = secret('super-secret-pw-1', 'pw');
    const p = planFile({ path: '/etc/x', content: stdinText`pw=${s}\n` }, { info: { exists: false }, current: null });
    expect(JSON.stringify(p)).not.toContain('super-secret-pw-1');
    expect(p.kind === 'change' && p.diff).toContain('+pw=***');
  });
  it('blocks when the path is a directory', () => {
    expect(planFile({ path: '/etc', content: '' }, { info: { exists: true, type: 'directory' }, current: null }).kind).toBe('blocked');
  });
});

describe('line in file', () => {
  it('noop when the line is present', () => {
    expect(planLine({ path: '/f', line: 'a=1' }, 'x\na=1\n').kind).toBe('noop');
  });
  it('replaces the last line matching regexp', () => {
    const p = planLine({ path: '/f', line: 'a=2', regexp: /^a=/ }, 'a=0\nx\na=1\n');
    expect(p.kind === 'change' && p.summary).toBe('replace line 3 of /f');
    expect(p.kind === 'change' && p.diff).toContain('-a=1\n+a=2');
  });
  it('appends a missing line, creates a missing file, removes absent lines', () => {
    expect(planLine({ path: '/f', line: 'z' }, 'x\n').kind === 'change').toBe(true);
    expect(planLine({ path: '/f', line: 'z' }, null)).toMatchObject({ kind: 'change', summary: 'create /f with line "z"' });
    expect(planLine({ path: '/f', regexp: /^#/, state: 'absent' }, '#a\nb\n#c\n')).toMatchObject({ kind: 'change', summary: 'remove 2 line(s) from /f' });
    expect(planLine({ path: '/f', line: 'q', state: 'absent' }, 'b\n').kind).toBe('noop');
  });
});

describe('managed block', () => {
  const a = { path: '/etc/app.conf', marker: 'm', block: 'k = v' };
  const st = (over: Partial<BlockState> = {}): BlockState => ({ exists: true, mode: '0644', owner: 'root', group: 'root', blocks: 1, legacy: false, open: false, same: false, ...over });
  it('noop when the host found the block identical', () => {
    expect(planBlock(a, { block: st({ same: true }), current: 'x\n' + blockText(a, true) }).kind).toBe('noop');
  });
  it('adds the block with validation before the mv', () => {
    const p = planBlock({ ...a, validate: (f) => sh`app --check ${f}` }, { block: st({ blocks: 0 }), current: 'x\n' });
    expect(p).toMatchObject({ kind: 'change', summary: 'add block m to /etc/app.conf' });
    const c = p.kind === 'change' ? String(p.commands[0]) : '';
    expect(c.indexOf('app --check "$tmp"')).toBeLessThan(c.indexOf('mv -f'));
    expect(p.kind === 'change' && p.diff).toContain('+# BEGIN runbook m\n+k = v\n+# END runbook m');
  });
  it('writes the same lines whether the content ends with a newline or not (string or stdinText)', () => {
    // The block written must be what blockText() (the host's comparison) wants, or the step never converges.
    const written = (block: string | ReturnType<typeof stdinText>) => {
      const p = planBlock({ ...a, block }, { block: st({ exists: false, blocks: 0 }), current: null });
      return p.kind === 'change' ? toWire(p.commands[0]!).stdin : '';
    };
    for (const block of ['k = v', 'k = v\n', stdinText`k = v`, stdinText`${'k = v'}\n`]) expect(written(block)).toBe('k = v\n');
    expect(blockText({ ...a, block: stdinText`k = v\n` }, true)).toBe(blockText(a, true));
  });
  it('removes it when absent is wanted', () => {
    expect(planBlock({ ...a, state: 'absent' }, { block: st(), current: blockText(a, true) })).toMatchObject({ kind: 'change', summary: 'remove block m from /etc/app.conf' });
    expect(planBlock({ ...a, state: 'absent' }, { block: st({ blocks: 0 }), current: 'x\n' }).kind).toBe('noop');
  });
  it('an identical block with the wrong mode or owner: only chmod/chown', () => {
    expect(cmds(planBlock({ ...a, mode: '0600', owner: 'postgres' }, { block: st({ same: true }) }))).toEqual(['chmod 0600 -- /etc/app.conf', 'chown postgres -- /etc/app.conf']);
  });
  it('an unterminated block or a path that is no file is refused, never edited', () => {
    expect(planBlock(a, { block: st({ open: true }) })).toMatchObject({ kind: 'blocked', reason: expect.stringContaining('BEGIN marker and no END marker') });
    expect(planBlock(a, { block: st({ notFile: true }) }).kind).toBe('blocked');
  });
  it('secret content: no whole-file read, no diff (a line says why), the password only on stdin', () => {
    const s = secret('super-secret-pw-2', 'pw');
    const op = managedBlock({ ...a, block: stdinText`pw=${s}` });
    expect(Object.keys(op.facts)).toEqual(['block']);
    expect(JSON.stringify(op.facts)).not.toContain('super-secret-pw-2');
    const p = op.plan({ block: st({ blocks: 0 }) });
    expect(p.kind === 'change' && p.diff).toMatch(/: block \S+ holds a secret: compared on the host, never read back, so no diff is shown\n$/);
    expect(JSON.stringify(p)).not.toContain('super-secret-pw-2');
  });
});

describe('directory, service, guarded command, file facts', () => {
  it('directory', () => {
    expect(cmds(planDirectory({ path: '/d', mode: '0750', owner: 'postgres' }, { exists: false }))).toEqual(['mkdir -p -- /d', 'chmod 0750 -- /d', 'chown postgres -- /d']);
    expect(planDirectory({ path: '/d' }, { exists: true, type: 'directory', mode: '0755' }).kind).toBe('noop');
  });
  it('service: systemd or start/stop/status commands', () => {
    const commands = { start: sh`start-it`, stop: sh`stop-it`, status: sh`status-it` };
    expect(cmds(planService({ name: 'x', state: 'running', commands }, { systemd: false, active: 'inactive', enabled: 'unknown' }))).toEqual(['start-it']);
    expect(planService({ name: 'x', state: 'running', commands }, { systemd: false, active: 'active', enabled: 'unknown' }).kind).toBe('noop');
    expect(cmds(planService({ name: 'x', state: 'stopped', enabled: false }, { systemd: true, active: 'active', enabled: 'enabled' }))).toEqual(['systemctl stop -- x', 'systemctl disable -- x']);
    expect(planService({ name: 'x', state: 'running' }, { systemd: false, active: 'inactive', enabled: 'unknown' }).kind).toBe('blocked');
  });
  it('guarded command', () => {
    const a = { command: sh`make install`, creates: '/opt/x', unless: sh`test -f /opt/y` };
    expect(planCommand(a, { created: true, satisfied: false })).toEqual({ kind: 'noop', reason: '/opt/x exists' });
    expect(planCommand(a, { created: false, satisfied: true }).kind).toBe('noop');
    expect(cmds(planCommand(a, { created: false, satisfied: false }))).toEqual(['make install']);
  });
  it('parses stat output', () => {
    expect(parseFileInfo('regular file|644|root|adm|12\nabc\n', 0, '/f')).toEqual({ exists: true, type: 'file', mode: '0644', owner: 'root', group: 'adm', size: 12, sha256: 'abc' });
    expect(parseFileInfo('absent\n', 0, '/f')).toEqual({ exists: false });
    expect(parseFileInfo('directory|755|a|b|4096\n', 0, '/f').type).toBe('directory');
  });
});
