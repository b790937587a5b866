/**
 * The state memo: per runbook and host, the `ctx.state` a run ended with (e.g. the PostgreSQL
 * layout), kept on this machine so that the next run can GUESS, before any step ran, which facts
 * its later steps will read, and read them in the first batch (prefetch.ts). A guess never reaches
 * a step: a step uses a fact read ahead only when it builds the very same command (the fact
 * cache's key: host, user, command text) with the state its own run remembered. A wrong or stale
 * memo therefore costs reads, never a wrong plan.
 *
 * File: $XDG_CACHE_HOME/runbook/state/RUNBOOK_ID.json (default ~/.cache), masked JSON, mode 0600,
 * written by rename. Unreadable, unwritable or corrupt: ignored. RUNBOOK_STATE_MEMO=0 turns it off.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { maskDeep } from '../shell/secret.js';
import type { HostView } from './types.js';

interface MemoFile {
  version: 1;
  hosts: Record<string, { savedAt: string; state: Record<string, unknown> }>;
}

/** Hosts kept per runbook (the oldest go first). */
const MAX_HOSTS = 1000;

const enabled = () => process.env.RUNBOOK_STATE_MEMO !== '0';

function memoPath(runbookId: string): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'runbook', 'state', `${runbookId.replace(/[^A-Za-z0-9._-]/g, '_')}.json`);
}

/** A host as the memo knows it: its name and address (two labs may both have a "pg1"). */
const hostKey = (h: HostView) => `${h.name} ${h.address}`;

function readMemo(path: string): MemoFile {
  try {
    const m = JSON.parse(readFileSync(path, 'utf8')) as MemoFile;
    if (m && m.version === 1 && m.hosts && typeof m.hosts === 'object') return m;
  } catch {
    // none yet, or unreadable: no guess
  }
  return { version: 1, hosts: {} };
}

/** The state each host ended the last run of `runbookId` with, by host name. */
export function loadStateMemo(runbookId: string, hosts: HostView[]): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  if (!enabled()) return out;
  const memo = readMemo(memoPath(runbookId));
  for (const h of hosts) {
    const e = memo.hosts[hostKey(h)];
    if (e && e.state && typeof e.state === 'object') out.set(h.name, e.state);
  }
  return out;
}

/** Keep what each host's state is now (masked) for the next run's guess. */
export function saveStateMemo(runbookId: string, hosts: HostView[], state: Map<string, Record<string, unknown>>, now = new Date()): void {
  if (!enabled()) return;
  const path = memoPath(runbookId);
  try {
    const memo = readMemo(path);
    for (const h of hosts) {
      const s = state.get(h.name);
      if (s && Object.keys(s).length) memo.hosts[hostKey(h)] = { savedAt: now.toISOString(), state: maskDeep(s) };
    }
    const keep = Object.entries(memo.hosts)
      .sort(([, a], [, b]) => (a.savedAt < b.savedAt ? 1 : -1))
      .slice(0, MAX_HOSTS);
    memo.hosts = Object.fromEntries(keep);
    mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(memo)}\n`, { mode: 0o600 });
    renameSync(tmp, path);
  } catch {
    // a cache: a run never fails for it
  }
}
