/**
 * Idempotent PostgreSQL building blocks: each reads facts and plans commands only when the server
 * differs from what is wanted ("changed" is derived, never declared). All run as root; SQL goes to
 * psql on stdin.
 */
import { createPatch } from 'diff';
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
import { type FileState, appendLineCommand, blockFact, fileFact, lineFact, markers, replaceBlockCommand, wrapBlock, writeFileCommand } from './files.js';
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
  file: FileState;
  included: boolean;
}

/** A regexp (ERE) for the line that makes postgresql.conf read the managed file. */
export function includePattern(l: PgLayout): string {
  return l.family === 'debian'
    ? `^[[:space:]]*include_dir[[:space:]]*=[[:space:]]*'?conf\\.d'?`
    : `^[[:space:]]*include(_if_exists)?[[:space:]]*=[[:space:]]*'?([^']*/)?runbook-replication\\.conf'?`;
}

export function planSettings(l: PgLayout, settings: Record<string, SettingValue>, f: SettingsFacts): Plan {
  const want = renderSettings(settings);
  const current = f.file.exists ? f.file.content : '';
  if (current === want && f.included) return noop(`${l.managedConf} holds the ${Object.keys(settings).length} settings`);
  const before = parseConfLines(current);
  const changed = Object.keys(settings)
    .sort()
    .filter((k) => before[k] !== String(settings[k]));
  const restart = changed.filter((k) => RESTART_SETTINGS.has(k));
  const what = changed.map((k) => `${k}=${settings[k]}`).join(', ') || 'rewrite';
  const commands = [writeFileCommand(l.managedConf, want, { mode: '0644', owner: 'postgres' })];
  if (!f.included) commands.push(appendLineCommand(l.confFile, l.includeLine));
  commands.push(reloadCommand(l));
  const summary = `${l.managedConf}: ${what}${f.included ? '' : `; add ${l.includeLine} to ${l.confFile}`}${restart.length ? ` (restart required: ${restart.join(', ')})` : ''}`;
  return change(summary, commands, createPatch(l.managedConf, current, want));
}

export function settingsOp(l: PgLayout, settings: Record<string, SettingValue>): Operation<SettingsFacts> {
  return {
    facts: { file: fileFact('pg.managed_conf', l.managedConf), included: lineFact('pg.conf_include', l.confFile, includePattern(l)) },
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

export function hbaBlockText(entries: HbaEntry[]): string {
  return wrapBlock(HBA_BLOCK, entries.map(renderHbaLine));
}

export interface HbaFacts {
  block: FileState;
  /** null when the server is down. */
  rules: HbaRule[] | null;
}

/** The rules PostgreSQL parsed from our lines with an error (read after a reload). */
export function hbaErrors(entries: HbaEntry[], rules: HbaRule[]): string[] {
  return rules.filter((r) => r.error !== null).map((r) => `line ${r.line}: ${r.error}`);
}

export function planHba(l: PgLayout, entries: HbaEntry[], f: HbaFacts): Plan {
  const want = hbaBlockText(entries);
  if (f.block.exists && f.block.same) {
    const errs = f.rules ? hbaErrors(entries, f.rules) : [];
    if (errs.length) return blocked(`${l.hbaFile} has errors PostgreSQL ignores lines for: ${errs.join('; ')}`);
    return noop(`${l.hbaFile} admits ${entries.length} replication entries`);
  }
  return change(
    `${l.hbaFile}: ${f.block.content ? 'update' : 'add'} the replication block at the top (${entries.length} entries), reload`,
    [replaceBlockCommand(l.hbaFile, HBA_BLOCK, want, 'top', { mode: '0640', owner: 'postgres' }), reloadCommand(l)],
    createPatch(l.hbaFile, f.block.content, want),
  );
}

export function hbaOp(l: PgLayout, conn: PgConn, entries: HbaEntry[]): Operation<HbaFacts> {
  return {
    facts: { block: blockFact('pg.hba_block', l.hbaFile, HBA_BLOCK, hbaBlockText(entries)), rules: hbaRulesFact(conn) },
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

/** The block, password included: secret-typed stdin only. */
export function pgpassBlock(entries: PgpassEntry[], password: Secret): StdinText {
  const m = markers('replication');
  const raw = password.reveal();
  // .pgpass escaping applies to the real value, which therefore stays a Secret too.
  const pw = raw.includes(':') || raw.includes('\\') ? new Secret(pgpassField(raw), password.name) : password;
  const parts: CommandPart[] = [{ text: `${m.begin}\n` }];
  for (const e of entries) parts.push({ text: `${pgpassField(e.host)}:${e.port}:*:${pgpassField(e.user)}:` }, { secret: pw }, { text: '\n' });
  parts.push({ text: `${m.end}\n` });
  return { parts: mergeText(parts) };
}

export function planPgpass(f: FileState, path = PGPASS): Plan {
  if (f.exists && f.same && f.mode === '600' && f.owner === 'postgres') return noop(`${path} holds the replication password (0600)`);
  const why = !f.exists ? 'create' : !f.same ? 'update the replication entries' : `fix mode/owner (${f.mode} ${f.owner} → 600 postgres)`;
  return change(`${path}: ${why}`, []);
}

export function pgpassOp(entries: PgpassEntry[], password: Secret): Operation<{ file: FileState }> {
  const block = pgpassBlock(entries, password);
  return {
    facts: { file: blockFact('pg.pgpass', PGPASS, 'replication', block) },
    plan: (f) => {
      const p = planPgpass(f.file);
      if (p.kind !== 'change') return p;
      return change(p.summary, [replaceBlockCommand(PGPASS, 'replication', block, 'bottom', { mode: '0600', owner: 'postgres' })]);
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
