/**
 * Idempotent PostgreSQL building blocks: each reads facts and plans commands only when the server
 * differs from what is wanted ("changed" is derived, never declared). All run as root; SQL goes to
 * psql on stdin.
 */
import { blocked, change, noop } from '../../engine/define.js';
import type { Operation, Plan } from '../../engine/types.js';
import { type Command, type CommandPart, Secret, sh, sql, type SqlFragment, type StdinText } from '../../shell/index.js';
import { mergeText } from '../../shell/command.js';
import {
  type HbaRule,
  hbaRulesFact,
  type PgConn,
  type PgRoleState,
  type PgSlot,
  type PgStatus,
  psqlCommand,
  roleFact,
  REWIND_FUNCTIONS,
  slotsFact,
  statusFact,
} from './facts.js';
import { asPostgres } from './control.js';
import { RESTART_SETTINGS, SHELL_SETTINGS, type SettingValue } from './settings.js';
import { gucString, isShellLine } from '../../shell/config-text.js';
import { type BlockArgs, type BlockFacts, type FileArgs, type FileFacts, type LineArgs, blockText, managedBlock, planBlock, planFile, planLine } from '../../core/file-ops.js';
import { type FileInfo, fileContent, fileInfo } from '../../core/file-facts.js';
import type { PgLayout } from './layout.js';
import { parseConninfo } from './cluster.js';
import { scramVerifier, verifierMatches } from './scram.js';
import { majorOf, unknownConninfoKeys } from './version.js';

/** SIGHUP the postmaster when it runs (a stopped server reads its files at start anyway). */
export function reloadCommand(l: PgLayout): Command {
  const ctl = `${l.binDir}/pg_ctl`;
  return sh`if ${asPostgres(sh`${ctl} -D ${l.dataDir} status`)} >/dev/null 2>&1; then ${asPostgres(sh`${ctl} -D ${l.dataDir} reload`)} >/dev/null; sleep 0.2; fi`;
}

// ---------------------------------------------------------------- settings in one managed file

/** A postgresql.conf string (one quoting for the whole module: config-text's gucString). */
export function quoteConfValue(v: string): string {
  return gucString('setting', v);
}

/** The managed file; a shell-command setting must be a ShellLine (built by pgShellLine), never a plain string. */
export function renderSettings(settings: Record<string, SettingValue>): string {
  const lines = Object.keys(settings)
    .sort()
    .map((k) => {
      if (!/^[a-z_][a-z0-9_.]*$/.test(k)) throw new Error(`not a setting name: ${JSON.stringify(k)}`);
      const v = settings[k]!;
      if (SHELL_SETTINGS.has(k) && !isShellLine(v)) throw new TypeError(`${k} runs through /bin/sh: build it with pgShellLine, not from a string`);
      return `${k} = ${gucString(k, v)}`;
    });
  return [
    '# Managed by runbook (PostgreSQL replication settings): local edits are overwritten.',
    '# Restart-only settings wait for a restart; pg_settings.pending_restart lists them.',
    ...lines,
  ].join('\n') + '\n';
}

/** name → raw value text of `name = value` lines (for the change summary). */
export function parseConfLines(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([a-z_][a-z0-9_.]*)\s*=\s*(.*?)\s*(#.*)?$/.exec(line);
    if (m) out[m[1]!] = /^'.*'$/.test(m[2]!) ? m[2]!.slice(1, -1).replace(/''/g, "'").replace(/\\\\/g, '\\') : m[2]!;
  }
  return out;
}

export interface SettingsFacts {
  /** The managed file. */
  file: FileFacts;
  /** postgresql.conf, for the line that makes it read the managed file. */
  conf: { current: string | null; info: FileInfo };
}

/** The line that makes postgresql.conf read the managed file: ours, or one already there that does the same. */
export function includePattern(l: PgLayout): RegExp {
  return l.family === 'debian'
    ? /^\s*include_dir\s*=?\s*'?conf\.d'?/
    : /^\s*include(_if_exists)?\s*=?\s*'?([^']*\/)?runbook-replication\.conf'?/;
}

function managedFileArgs(l: PgLayout, want: string): FileArgs {
  return { path: l.managedConf, content: want, mode: '0644', owner: 'postgres', group: 'postgres' };
}
function includeLineArgs(l: PgLayout): LineArgs {
  return { path: l.confFile, line: l.includeLine, found: includePattern(l) };
}

export function planSettings(l: PgLayout, settings: Record<string, SettingValue>, f: SettingsFacts): Plan {
  const want = renderSettings(settings);
  const current = f.file.current ?? '';
  const filePlan = planFile(managedFileArgs(l, want), f.file);
  const linePlan = planLine(includeLineArgs(l), f.conf.current, f.conf.info);
  if (filePlan.kind === 'blocked') return filePlan;
  if (linePlan.kind === 'blocked') return linePlan;
  if (filePlan.kind === 'noop' && linePlan.kind === 'noop') return noop(`${l.managedConf} holds the ${Object.keys(settings).length} settings`);
  const included = linePlan.kind === 'noop';
  const before = parseConfLines(current);
  const changed = Object.keys(settings)
    .sort()
    .filter((k) => before[k] !== String(settings[k]));
  const restart = changed.filter((k) => RESTART_SETTINGS.has(k));
  const what = changed.map((k) => `${k}=${settings[k]}`).join(', ') || (current === want ? filePlan.kind === 'change' ? filePlan.summary.replace(`${l.managedConf}: `, '') : 'as wanted' : 'rewrite');
  const actions = [...(filePlan.kind === 'change' ? filePlan.actions : []), ...(linePlan.kind === 'change' ? linePlan.actions : []), reloadCommand(l)];
  const summary = `${l.managedConf}: ${what}${included ? '' : `; add ${l.includeLine} to ${l.confFile}`}${restart.length ? ` (restart required: ${restart.join(', ')})` : ''}`;
  const diff = [filePlan, linePlan].map((p) => (p.kind === 'change' ? p.diff ?? '' : '')).join('');
  return change(summary, actions, diff || undefined);
}

export function settingsOp(l: PgLayout, settings: Record<string, SettingValue>): Operation<SettingsFacts> {
  return {
    facts: {
      file: { each: { info: fileInfo(l.managedConf), current: fileContent(l.managedConf) } },
      conf: { each: { current: fileContent(l.confFile), info: fileInfo(l.confFile) } },
    },
    plan: (f) => planSettings(l, settings, f),
  };
}

// ---------------------------------------------------------------- pg_hba entries

export interface HbaEntry {
  type: 'host' | 'hostssl';
  database: string;
  user: string;
  address: string;
  method: string;
}

/** An IP gets a host mask (/32, /128); a name stays a name. */
export function hbaAddress(address: string): string {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(address)) return `${address}/32`;
  if (address.includes(':') && !address.includes('/')) return `${address}/128`;
  return address;
}

export function renderHbaLine(e: HbaEntry): string {
  return [e.type, e.database, e.user, e.address, e.method].join(' ');
}

export const HBA_BLOCK = 'replication';

/** The replication block of pg_hba.conf: at the top when new (pg_hba is first-match), through core's block editor. */
export function hbaBlockArgs(l: PgLayout, entries: HbaEntry[]): BlockArgs {
  return { path: l.hbaFile, marker: HBA_BLOCK, block: entries.map(renderHbaLine).join('\n'), insert: 'top', mode: '0640', owner: 'postgres', group: 'postgres' };
}

/** The block as it is written, markers included. */
export function hbaBlockText(l: PgLayout, entries: HbaEntry[]): string {
  return blockText(hbaBlockArgs(l, entries), false);
}

export interface HbaFacts extends BlockFacts {
  /** null when the server is down. */
  rules: HbaRule[] | null;
}

/** The rules PostgreSQL parsed from our lines with an error (read after a reload). */
export function hbaErrors(entries: HbaEntry[], rules: HbaRule[]): string[] {
  return rules.filter((r) => r.error !== null).map((r) => `line ${r.line}: ${r.error}`);
}

export function planHba(l: PgLayout, entries: HbaEntry[], f: HbaFacts): Plan {
  const a = hbaBlockArgs(l, entries);
  const p = planBlock(a, f);
  if (p.kind === 'noop') {
    const errs = f.rules ? hbaErrors(entries, f.rules) : [];
    if (errs.length) return blocked(`${l.hbaFile} has errors PostgreSQL ignores lines for: ${errs.join('; ')}`);
    return noop(`${l.hbaFile} admits ${entries.length} replication entries`);
  }
  if (p.kind === 'blocked') return p;
  const what = f.block.blocks === 0 ? 'add the replication block at the top' : f.block.same ? p.summary.replace(`${l.hbaFile}: `, '') : 'update the replication block';
  return change(`${l.hbaFile}: ${what} (${entries.length} entries), reload`, [...p.actions, reloadCommand(l)], p.diff);
}

export function hbaOp(l: PgLayout, conn: PgConn, entries: HbaEntry[]): Operation<HbaFacts> {
  return {
    facts: { ...managedBlock(hbaBlockArgs(l, entries)).facts, rules: hbaRulesFact(conn) },
    plan: (f) => planHba(l, entries, f),
  };
}

// ---------------------------------------------------------------- ~postgres/.pgpass

export const PGPASS = '~postgres/.pgpass';

/** .pgpass escapes ':' and '\' in every field. */
function pgpassField(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/:/g, '\\:');
}

export interface PgpassEntry {
  host: string;
  port: number;
  user: string;
}

/** The block's lines, password included: secret-typed stdin only. */
export function pgpassLines(entries: PgpassEntry[], password: Secret): StdinText {
  const raw = password.reveal();
  // .pgpass escaping applies to the real value, which therefore stays a Secret too.
  const pw = raw.includes(':') || raw.includes('\\') ? new Secret(pgpassField(raw), password.name) : password;
  const parts: CommandPart[] = [];
  for (const e of entries) parts.push({ text: `${pgpassField(e.host)}:${e.port}:*:${pgpassField(e.user)}:` }, { secret: pw }, { text: '\n' });
  return { parts: mergeText(parts) };
}

export function pgpassBlockArgs(entries: PgpassEntry[], password: Secret): BlockArgs {
  return { path: PGPASS, marker: 'replication', block: pgpassLines(entries, password), mode: '0600', owner: 'postgres', group: 'postgres' };
}

/** The entries at the bottom of ~postgres/.pgpass, 0600 postgres; compared on the host (the password never comes back). */
export function pgpassOp(entries: PgpassEntry[], password: Secret): Operation<BlockFacts> {
  const a = pgpassBlockArgs(entries, password);
  const op = managedBlock(a);
  return {
    facts: op.facts,
    plan: (f) => {
      const p = planBlock(a, f);
      if (p.kind === 'noop') return noop(`${PGPASS} holds the replication password (0600)`);
      if (p.kind === 'blocked') return p;
      const why = !f.block.exists ? 'create' : !f.block.same ? 'update the replication entries' : `fix mode/owner (${p.summary.replace(`${PGPASS}: `, '')})`;
      return change(`${PGPASS}: ${why}`, p.actions);
    },
  };
}

// ---------------------------------------------------------------- replication slots

/**
 * On a primary: a physical slot per standby (created reserving WAL at once). On a standby: slots
 * named after cluster nodes are leftovers of an earlier life as primary; inactive ones are
 * dropped (they would pin WAL after the next promotion).
 */
export function planSlots(conn: PgConn, slots: PgSlot[] | null, want: string[], stale: string[]): Plan {
  if (slots === null) return blocked('PostgreSQL is not running: cannot read pg_replication_slots');
  const have = new Set(slots.map((s) => s.name));
  const create = want.filter((n) => !have.has(n));
  const drop = slots.filter((s) => stale.includes(s.name) && !want.includes(s.name) && !s.active).map((s) => s.name);
  const wrongType = slots.filter((s) => want.includes(s.name) && s.type !== 'physical').map((s) => s.name);
  if (wrongType.length) return blocked(`slots ${wrongType.join(', ')} exist but are not physical`);
  if (!create.length && !drop.length) return noop(want.length ? `slots ${want.join(', ')} exist` : 'no stale slots');
  const stmts = [
    ...create.map((n) => sql`SELECT pg_create_physical_replication_slot(${n}, true);`),
    ...drop.map((n) => sql`SELECT pg_drop_replication_slot(${n});`),
  ];
  const summary = [create.length ? `create slot ${create.join(', ')}` : '', drop.length ? `drop stale slot ${drop.join(', ')}` : ''].filter(Boolean).join('; ');
  return change(summary, [psqlCommand(conn, sqlConcat(stmts))]);
}

/** Statements one per line (the array form of sql`` would put commas between them). */
export function sqlConcat(parts: SqlFragment[]): SqlFragment {
  let out = sql``;
  for (const p of parts) out = sql`${out}${p}\n`;
  return out;
}

export function slotsOp(conn: PgConn, want: string[], stale: string[]): Operation<{ slots: PgSlot[] | null }> {
  return { facts: { slots: slotsFact(conn) }, plan: (f) => planSlots(conn, f.slots, want, stale) };
}

// ---------------------------------------------------------------- the replication role

/**
 * LOGIN REPLICATION, the pg_rewind grants, and the password. The stored SCRAM verifier is checked
 * against the wanted password locally (scram.ts), so a re-run changes nothing and a new
 * password is set exactly when it differs.
 */
/**
 * Before any statement that names a password: no statement logging in this session (a superuser
 * may; for others the settings are left alone), and the password itself is a SCRAM-SHA-256
 * verifier computed here (scram.ts), so even a log line that slips through holds no password.
 * password_encryption matters only on 13 (md5 by default) if a plain password were ever sent.
 */
const QUIET_SESSION = sql`SELECT set_config(name, value, false) FROM (VALUES ('log_statement', 'none'), ('log_min_error_statement', 'panic'), ('log_min_duration_statement', '-1')) AS v(name, value) WHERE (SELECT rolsuper FROM pg_roles WHERE rolname = current_user);
SET password_encryption = 'scram-sha-256';`;

function verifierOf(password: Secret): Secret {
  return new Secret(scramVerifier(password.reveal()), `${password.name} (SCRAM verifier)`, false);
}

export function planRole(conn: PgConn, user: string, password: Secret, r: PgRoleState): Plan {
  const grants = REWIND_FUNCTIONS.map((f) => sql`GRANT EXECUTE ON FUNCTION ${sql.raw(f)} TO ${sql.ident(user)};`);
  if (!r.exists) {
    return change(`create role ${user} (LOGIN REPLICATION, pg_rewind grants)`, [
      psqlCommand(conn, sqlConcat([QUIET_SESSION, sql`CREATE ROLE ${sql.ident(user)} LOGIN REPLICATION PASSWORD ${verifierOf(password)};`, ...grants])),
    ]);
  }
  const todo: string[] = [];
  const stmts: SqlFragment[] = [];
  if (!r.canLogin || !r.replication) {
    todo.push('LOGIN REPLICATION');
    stmts.push(sql`ALTER ROLE ${sql.ident(user)} LOGIN REPLICATION;`);
  }
  if (!r.rewindGrants) {
    todo.push('pg_rewind grants');
    stmts.push(...grants);
  }
  if (!r.verifier || !r.verifier.reveal().startsWith('SCRAM-SHA-256$') || !verifierMatches(r.verifier.reveal(), password.reveal(), user)) {
    todo.push(!r.verifier ? 'password (none set)' : r.verifier.reveal().startsWith('md5') ? 'password (stored as md5; pg_hba asks for scram-sha-256)' : 'password (differs)');
    stmts.unshift(QUIET_SESSION);
    stmts.push(sql`ALTER ROLE ${sql.ident(user)} PASSWORD ${verifierOf(password)};`);
  }
  if (!todo.length) return noop(`role ${user} can log in, replicate and rewind; password matches`);
  return change(`role ${user}: set ${todo.join(', ')}`, [psqlCommand(conn, sqlConcat(stmts))]);
}

export function roleOp(conn: PgConn, user: string, password: Secret): Operation<{ role: PgRoleState }> {
  return { facts: { role: roleFact(conn, user) }, plan: (f) => planRole(conn, user, password, f.role) };
}

// ---------------------------------------------------------------- primary_conninfo / primary_slot_name

export interface WantedUpstream {
  conninfo: string;
  slot: string;
}

/** The conninfo keys that matter; pg_basebackup -R adds many defaults we leave alone. */
const CONNINFO_KEYS = ['host', 'port', 'user', 'application_name'];

export function conninfoMatches(current: string, wanted: string): boolean {
  const a = parseConninfo(current);
  const b = parseConninfo(wanted);
  return !('password' in a) && CONNINFO_KEYS.every((k) => (a[k] ?? '') === (b[k] ?? ''));
}

/**
 * A standby's upstream (wanted) or a primary's reset (wanted null: pg_rewind and pg_basebackup
 * would carry stale values to the next node). ALTER SYSTEM + reload: both are reloadable since 13.
 */
export function planUpstream(conn: PgConn, status: PgStatus, wanted: WantedUpstream | null): Plan {
  if (!status.up) return blocked(`PostgreSQL is not running: ${status.error}`);
  if (wanted === null) {
    if (status.primaryConninfo === '' && status.primarySlotName === '') return noop('primary_conninfo and primary_slot_name are empty');
    return change('reset primary_conninfo and primary_slot_name', [
      psqlCommand(conn, sql`ALTER SYSTEM RESET primary_conninfo;\nALTER SYSTEM RESET primary_slot_name;\nSELECT pg_reload_conf();\nSELECT pg_sleep(0.2);\n`),
    ]);
  }
  const unknown = unknownConninfoKeys(Object.keys(parseConninfo(status.primaryConninfo)), status.serverVersionNum);
  const okInfo = conninfoMatches(status.primaryConninfo, wanted.conninfo) && unknown.length === 0;
  const okSlot = status.primarySlotName === wanted.slot;
  if (okInfo && okSlot) return noop(`streams from ${parseConninfo(wanted.conninfo).host} with slot ${wanted.slot}`);
  const why = unknown.length ? ` (the current one has ${unknown.join(', ')}, which PostgreSQL ${majorOf(status.serverVersionNum)}'s walreceiver rejects)` : '';
  return change(`set primary_conninfo '${wanted.conninfo}' and primary_slot_name ${wanted.slot}${why}`, [
    psqlCommand(
      conn,
      sql`ALTER SYSTEM SET primary_conninfo = ${wanted.conninfo};\nALTER SYSTEM SET primary_slot_name = ${wanted.slot};\nSELECT pg_reload_conf();\nSELECT pg_sleep(0.2);\n`,
    ),
  ]);
}

export function upstreamOp(conn: PgConn, wanted: WantedUpstream | null): Operation<{ status: PgStatus }> {
  return { facts: { status: statusFact(conn) }, plan: (f) => planUpstream(conn, f.status, wanted) };
}
