/** The state memo (src/engine/state-memo.ts): what a run's hosts ended with, for the next run's read-ahead guess. */
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadStateMemo, saveStateMemo } from '../../../src/engine/state-memo.js';
import { secret } from '../../../src/shell/secret.js';
import { view } from './local.js';

describe('state memo', () => {
  const saved = { ...process.env };
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'rb-memo-'));
    process.env.XDG_CACHE_HOME = dir;
    delete process.env.RUNBOOK_STATE_MEMO;
  });
  afterEach(() => {
    process.env = { ...saved };
  });

  const pg1 = { ...view('pg1'), address: '10.0.0.1' };
  const pg1Elsewhere = { ...view('pg1'), address: '10.9.9.1' };

  it('keeps each host state by name and address, masked, mode 0600; a host it never saw has none', () => {
    saveStateMemo('setup', [pg1], new Map([['pg1', { layout: { dataDir: '/d' }, pw: secret('memo-secret-value', 'pw') }]]));
    expect(loadStateMemo('setup', [pg1]).get('pg1')).toEqual({ layout: { dataDir: '/d' }, pw: '***' });
    expect(loadStateMemo('setup', [pg1Elsewhere]).size).toBe(0);
    expect(loadStateMemo('other-runbook', [pg1]).size).toBe(0);
    const file = join(dir, 'runbook', 'state', 'setup.json');
    expect(readFileSync(file, 'utf8')).not.toContain('memo-secret-value');
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('a corrupt file is no memo, and RUNBOOK_STATE_MEMO=0 neither reads nor writes', () => {
    saveStateMemo('setup', [pg1], new Map([['pg1', { a: 1 }]]));
    process.env.RUNBOOK_STATE_MEMO = '0';
    expect(loadStateMemo('setup', [pg1]).size).toBe(0);
    saveStateMemo('setup', [pg1], new Map([['pg1', { a: 2 }]]));
    delete process.env.RUNBOOK_STATE_MEMO;
    expect(loadStateMemo('setup', [pg1]).get('pg1')).toEqual({ a: 1 });
    writeFileSync(join(dir, 'runbook', 'state', 'setup.json'), '{"version":1,"hosts":');
    expect(loadStateMemo('setup', [pg1]).size).toBe(0);
    saveStateMemo('setup', [pg1], new Map([['pg1', { a: 3 }]])); // a corrupt file is replaced
    expect(loadStateMemo('setup', [pg1]).get('pg1')).toEqual({ a: 3 });
  });
});
