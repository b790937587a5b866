/**
 * Synchronous replication as an option: `synchronous=quorum` (param, or inventory var
 * pg_synchronous) makes the current primary wait for ANY 1 of the other nodes before a COMMIT
 * returns, so a kill of the primary loses no acknowledged transaction once the most advanced
 * standby is promoted. The choice is recorded in the managed settings file of every node
 * (`runbook.synchronous`), so failover and failback keep it without being told again.
 *
 * synchronous_standby_names itself is set on the current primary only (ALTER SYSTEM), by the
 * sync step at the end of setup, right after a promotion, and at the end of failback: a primary
 * left with no streaming standby would otherwise block every write. Like Patroni's
 * synchronous_mode_strict, `synchronous_strict=true` keeps it set anyway (writes wait until a
 * standby connects: no acknowledged write can exist on one node only); the default suspends it
 * (asynchronous until a standby streams again, which the next setup/failback run restores).
 */
import type { PgNode } from './cluster.js';
import type { PgSender } from './facts.js';
import { syncStandbyName } from '../../shell/config-text.js';

export type SyncMode = 'off' | 'quorum';
export const SYNC_MARKER = 'runbook.synchronous';
export const SYNC_STRICT_MARKER = 'runbook.synchronous_strict';

export interface SyncWish {
  mode: SyncMode;
  strict: boolean;
}

/** The mode: the param, else the inventory var pg_synchronous, else the marker in the managed file. */
export function syncWish(param: string | undefined, varValue: unknown, strictParam: boolean | undefined, strictVar: unknown, marker: { mode: string | null; strict: string | null } | null): SyncWish {
  const pick = param ?? (varValue === undefined || varValue === null || varValue === '' ? undefined : String(varValue)) ?? marker?.mode ?? 'off';
  const mode: SyncMode = pick === 'quorum' ? 'quorum' : 'off';
  const asBool = (v: unknown) => (typeof v === 'boolean' ? v : v === undefined || v === null ? undefined : ['true', 'on', 'yes', '1'].includes(String(v).toLowerCase()));
  const strict = strictParam ?? asBool(strictVar) ?? asBool(marker?.strict) ?? false;
  return { mode, strict };
}

export function syncProblem(value: unknown, source: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  return ['off', 'quorum'].includes(String(value)) ? undefined : `${source}: ${JSON.stringify(value)} is not one of off, quorum`;
}

/**
 * ANY 1 over every node's application_name, each double-quoted. The primary's own name is in the
 * list too (it never connects to itself): the value is the same whichever node is primary.
 */
export function quorumNames(nodes: PgNode[]): string {
  return `ANY 1 (${nodes.map((n) => syncStandbyName(n.applicationName)).join(', ')})`;
}

export interface SyncState {
  /** synchronous_standby_names now in force. */
  current: string;
  senders: PgSender[];
}

export type SyncPlan =
  | { kind: 'ok'; reason: string }
  | { kind: 'set'; value: string; reason: string }
  | { kind: 'wait-sync-state'; value: string; reason: string };

/** What synchronous_standby_names the primary should have now, and why. */
export function planSync(wish: SyncWish, nodes: PgNode[], primary: string, s: SyncState): SyncPlan {
  const listed = new Set(nodes.filter((n) => n.name !== primary).map((n) => n.applicationName));
  const streaming = s.senders.filter((x) => listed.has(x.applicationName) && x.state === 'streaming');
  if (wish.mode === 'off') {
    // Only what we set is ours to undo: a value in auto.conf naming our nodes with ANY 1.
    if (s.current === quorumNames(nodes)) return { kind: 'set', value: '', reason: 'synchronous=off: synchronous_standby_names emptied' };
    return { kind: 'ok', reason: s.current ? `asynchronous as far as runbook goes (synchronous_standby_names = ${s.current}, not runbook's)` : 'asynchronous replication' };
  }
  const want = quorumNames(nodes);
  if (streaming.length === 0) {
    if (wish.strict) {
      if (s.current === want) return { kind: 'ok', reason: `synchronous_strict: ${want} kept with no standby streaming: every COMMIT waits until one connects` };
      return { kind: 'set', value: want, reason: `synchronous_strict: ${want} although no standby streams (writes wait until one connects)` };
    }
    if (s.current === '') return { kind: 'ok', reason: 'synchronous replication suspended: no standby streams (a COMMIT would wait forever); the next setup or failback with a streaming standby restores it' };
    return { kind: 'set', value: '', reason: `no standby streams: synchronous replication suspended (synchronous_standby_names emptied) so that writes do not block; synchronous_strict=true would keep ${want}` };
  }
  if (s.current !== want) return { kind: 'set', value: want, reason: `synchronous_standby_names = ${want} (${streaming.map((x) => x.applicationName).join(', ')} streaming)` };
  const inQuorum = streaming.filter((x) => x.syncState === 'quorum' || x.syncState === 'sync');
  if (inQuorum.length === 0) return { kind: 'wait-sync-state', value: want, reason: `${want} set but pg_stat_replication shows ${streaming.map((x) => `${x.applicationName} ${x.syncState}`).join(', ')}` };
  return { kind: 'ok', reason: `synchronous: ${want}; pg_stat_replication sync_state ${inQuorum.map((x) => `${x.applicationName} ${x.syncState}`).join(', ')}` };
}
