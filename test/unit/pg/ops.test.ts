import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Hidden, type PgRoleState, parseRows, type PgStatus, FIELD_SEP, RECORD_SEP, NULL_MARK } from '../../../src/modules/postgres/facts.js';
import { parseControlData } from '../../../src/modules/postgres/layout-facts.js';
import {
  conninfoMatches,
  hbaBlockText,
  planHba,
  planRole,
  planSettings,
  planSlots,
  planUpstream,
  pgpassLines,
  pgpassOp,
  renderSettings,
} from '../../../src/modules/postgres/ops.js';
import { parseConninfo } from '../../../src/modules/postgres/cluster.js';
import { resolveLayout, type PgLayout } from '../../../src/modules/postgres/layout.js';
import { parseRewindOutput } from '../../../src/modules/postgres/steps/rejoin.js';
import { secret, toWire } from '../../../src/shell/index.js';
import { scramVerifier, verifierMatches } from '../../../src/modules/postgres/scram.js';
import { pgShellLine } from '../../../src/shell/config-text.js';

const l = resolveLayout({ osId: 'debian', osLike: [], systemd: false, debianClusters: [{ version: '15', cluster: 'main', port: 5432, status: 'online', dataDir: '/var/lib/postgresql/15/main' }], pgdgBins: [], pgdgData: [], debianBins: ['15'] }) as PgLayout;
const conn = { port: 5432, bin: l.binDir };
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const file = (content: string | null, over = {}) => ({ info: content === null ? { exists: false } : { exists: true, type: 'file' as const, mode: '0644', owner: 'postgres', group: 'postgres', sha256: sha(content), ...over }, current: content });
const conf = (text: string | null) => ({ current: text, info: text === null ? { exists: false } : { exists: true, type: 'file' as const, mode: '0644', owner: 'postgres', group: 'postgres' } });
const INCLUDED = conf("data_directory = '/x'\ninclude_dir = 'conf.d'\n");
const block = (over = {}) => ({ exists: true, mode: '0640', owner: 'postgres', group: 'postgres', blocks: 1, legacy: false, open: false, same: false, ...over });

describe('settings in one managed file', () => {
  const want = { wal_level: 'replica', wal_log_hints: 'on', tcp_keepalives_idle: '60', archive_command: pgShellLine`cp %p ${"/a b/it's 100%"}/%f` };

  it('renders sorted, quoted settings (shell quoting, % doubled, then the GUC quoting)', () => {
    const text = renderSettings(want);
    // shell: '/a b/it'\''s 100%%'   GUC: every ' doubled, every \ doubled
    expect(text).toContain(`archive_command = 'cp %p ''/a b/it''\\\\''''s 100%%''/%f'`);
    expect(text.split('\n').filter((x) => /^[a-z]/.test(x)).map((x) => x.split(' ')[0])).toEqual(['archive_command', 'tcp_keepalives_idle', 'wal_level', 'wal_log_hints']);
  });

  it('no-op when the file is exact and included; otherwise a change that names restart-only settings', () => {
    expect(planSettings(l, want, { file: file(renderSettings(want)), conf: INCLUDED }).kind).toBe('noop');
    // Another spelling of the include line counts: it is left as it is.
    expect(planSettings(l, want, { file: file(renderSettings(want)), conf: conf("include_dir 'conf.d'\n") }).kind).toBe('noop');
    const p = planSettings(l, want, { file: file(renderSettings({ ...want, wal_log_hints: 'off' })), conf: INCLUDED });
    expect(p.kind).toBe('change');
    expect(p.kind === 'change' && p.summary).toMatch(/wal_log_hints=on \(restart required: wal_log_hints\)/);
    expect(p.kind === 'change' && p.diff).toContain("+wal_log_hints = 'on'");
    const missing = planSettings(l, want, { file: file(null), conf: conf("data_directory = '/x'\n") });
    // The include line goes into postgresql.conf by core's atomic line edit (temp file, mv), not an append.
    expect(missing).toMatchObject({ kind: 'change', summary: expect.stringContaining("; add include_dir = 'conf.d' to /etc/postgresql/15/main/postgresql.conf") });
    const lines = missing.kind === 'change' ? missing.commands.map(String) : [];
    expect(lines).toHaveLength(3);
    expect(lines[1]).toContain('mktemp /etc/postgresql/15/main/postgresql.conf.rb-XXXXXX');
    expect(lines[1]).toContain("STDIN'\ndata_directory = '/x'\ninclude_dir = 'conf.d'\n");
    expect(lines.join('\n')).not.toContain('>>');
  });

  it('a shell-command setting given as a plain string is refused: only pgShellLine makes one', () => {
    expect(() => renderSettings({ archive_command: 'cp %p /a/%f' })).toThrow(/archive_command runs through \/bin\/sh/);
    expect(() => renderSettings({ cluster_name: 'two\nlines' })).toThrow(/cluster_name: holds a line break/);
  });
});

describe('pg_hba entry', () => {
  const entries = [{ type: 'host' as const, database: 'replication', user: 'replicator', address: '10.0.0.12/32', method: 'scram-sha-256' }];
  it('a marked block at the top; no-op when identical; blocked when PostgreSQL reports an error', () => {
    expect(hbaBlockText(l, entries)).toBe('# BEGIN runbook replication\nhost replication replicator 10.0.0.12/32 scram-sha-256\n# END runbook replication\n');
    const p = planHba(l, entries, { block: block({ blocks: 0 }), current: 'local all all peer\n', rules: [] });
    expect(p).toMatchObject({ kind: 'change', summary: `${l.hbaFile}: add the replication block at the top (1 entries), reload` });
    expect(p.kind === 'change' && p.diff).toContain('+# BEGIN runbook replication\n+host replication replicator 10.0.0.12/32 scram-sha-256\n+# END runbook replication\n local all all peer');
    expect(planHba(l, entries, { block: block({ same: true }), current: '', rules: [] }).kind).toBe('noop');
    const bad = planHba(l, entries, { block: block({ same: true }), current: '', rules: [{ line: 3, type: 'host', database: [], user: [], address: null, netmask: null, method: null, error: 'invalid IP address' }] });
    expect(bad).toEqual({ kind: 'blocked', reason: expect.stringContaining('line 3: invalid IP address') });
  });
});

describe('.pgpass', () => {
  it('escapes : and \\ and keeps the password a secret: masked in display, real only on the wire', () => {
    const pw = secret('p:w\\x', 'replication_password');
    const lines = pgpassLines([{ host: '10.0.0.11', port: 5432, user: 'replicator' }], pw);
    const shown = lines.parts.map((p) => ('text' in p ? p.text : '***')).join('');
    expect(shown).toBe('10.0.0.11:5432:*:replicator:***\n');
    const wire = lines.parts.map((p) => ('text' in p ? p.text : p.secret.reveal())).join('');
    expect(wire).toContain('replicator:p\\:w\\\\x\n');
  });

  it('plans from what the host compared: create, update, mode fix, or nothing; the password never in the plan', () => {
    const op = pgpassOp([{ host: '10.0.0.11', port: 5432, user: 'replicator' }], secret('pw-not-in-plan', 'replication_password'));
    expect(Object.keys(op.facts)).toEqual(['block']);
    const pg = (over = {}) => block({ mode: '0600', ...over });
    expect(op.plan({ block: pg({ same: true }) })).toEqual({ kind: 'noop', reason: '~postgres/.pgpass holds the replication password (0600)' });
    expect(op.plan({ block: { ...pg(), exists: false, blocks: 0 } })).toMatchObject({ kind: 'change', summary: '~postgres/.pgpass: create' });
    const upd = op.plan({ block: pg({ legacy: true }) });
    expect(upd).toMatchObject({ kind: 'change', summary: '~postgres/.pgpass: update the replication entries' });
    expect(JSON.stringify(upd)).not.toContain('pw-not-in-plan');
    expect(upd.kind === 'change' && String(upd.commands[0])).toContain('mktemp ~postgres/.pgpass.rb-XXXXXX');
    expect(op.plan({ block: pg({ same: true, mode: '0644' }) })).toMatchObject({ kind: 'change', summary: '~postgres/.pgpass: fix mode/owner (mode 0644 → 0600)' });
  });
});

describe('replication slots', () => {
  it('creates the missing slot, drops only inactive stale ones, leaves others', () => {
    const slots = [
      { name: 'pg1', type: 'physical', active: false, restartLsn: null, walStatus: null },
      { name: 'pg3', type: 'physical', active: true, restartLsn: null, walStatus: null },
      { name: 'other_tool', type: 'physical', active: false, restartLsn: null, walStatus: null },
    ];
    const p = planSlots(conn, slots, ['pg2'], ['pg1', 'pg2', 'pg3']);
    expect(p.kind === 'change' && p.summary).toBe('create slot pg2; drop stale slot pg1');
    expect(planSlots(conn, [{ name: 'pg2', type: 'physical', active: true, restartLsn: null, walStatus: null }], ['pg2'], []).kind).toBe('noop');
    expect(planSlots(conn, null, ['pg2'], []).kind).toBe('blocked');
  });
});

describe('replication role', () => {
  const scram = (password: string, salt = Buffer.from('0123456789abcdef'), iter = 4096) => {
    const salted = pbkdf2Sync(password, salt, iter, 32, 'sha256');
    const stored = createHash('sha256').update(createHmac('sha256', salted).update('Client Key').digest()).digest('base64');
    const server = createHmac('sha256', salted).update('Server Key').digest('base64');
    return `SCRAM-SHA-256$${iter}:${salt.toString('base64')}$${stored}:${server}`;
  };
  const role = (over: Partial<PgRoleState> = {}): PgRoleState => ({ exists: true, canLogin: true, replication: true, verifier: new Hidden(scram('s3cret')), rewindGrants: true, ...over });

  it('checks the stored SCRAM verifier: same password → no-op, another → set it', () => {
    expect(verifierMatches(scram('s3cret'), 's3cret', 'replicator')).toBe(true);
    expect(verifierMatches(scram('s3cret'), 'other', 'replicator')).toBe(false);
    expect(planRole(conn, 'replicator', secret('s3cret'), role()).kind).toBe('noop');
    const p = planRole(conn, 'replicator', secret('n3w-pass'), role());
    expect(p.kind === 'change' && p.summary).toBe('role replicator: set password (differs)');
  });

  it('creates the role with the password on psql stdin, never on the command line', () => {
    const p = planRole(conn, 'replicator', secret('n3w-pass'), role({ exists: false, verifier: null }));
    expect(p.kind).toBe('change');
    const cmd = p.kind === 'change' ? p.commands[0]! : undefined;
    expect(cmd!.toString()).toContain("CREATE ROLE \"replicator\" LOGIN REPLICATION PASSWORD '***';");
    const wire = toWire(cmd!);
    expect(wire.line).not.toContain('n3w-pass');
    // The statement carries a SCRAM verifier computed here, never the password (server logs).
    expect(wire.stdin).not.toContain('n3w-pass');
    const verifier = /PASSWORD '(SCRAM-SHA-256\$4096:[^']+)'/.exec(wire.stdin)?.[1];
    expect(verifier && verifierMatches(verifier, 'n3w-pass', 'replicator')).toBe(true);
    expect(wire.stdin).toMatch(/set_config\(name, value, false\).*log_statement.*none.*log_min_error_statement.*panic/s);
    expect(wire.stdin.indexOf('log_statement')).toBeLessThan(wire.stdin.indexOf('CREATE ROLE'));
  });

  it('a changed password is sent as a verifier too, after statement logging is turned off', () => {
    const p = planRole(conn, 'replicator', secret('r0tated-pass'), role({ exists: true, verifier: new Hidden(scramVerifier('old-pass-1')) }));
    const stdin = p.kind === 'change' ? toWire(p.commands[0]!).stdin : '';
    expect(stdin).not.toContain('r0tated-pass');
    expect(stdin.indexOf('log_statement')).toBeLessThan(stdin.indexOf('ALTER ROLE'));
    expect(verifierMatches(/PASSWORD '([^']+)'/.exec(stdin)![1]!, 'r0tated-pass', 'replicator')).toBe(true);
    expect(verifierMatches(scramVerifier('x-y-z'), 'x-y-Z', 'u')).toBe(false);
  });
});

describe('upstream (primary_conninfo, primary_slot_name)', () => {
  const st = (info: string, slot: string) => ({ up: true, inRecovery: true, primaryConninfo: info, primarySlotName: slot }) as unknown as PgStatus;
  const want = { conninfo: 'host=10.0.0.11 port=5432 user=replicator application_name=pg2', slot: 'pg2' };
  it("accepts pg_basebackup -R's extra keys, rejects a password in it or another host", () => {
    const fromR = "user=replicator passfile='/var/lib/postgresql/.pgpass' channel_binding=prefer host=10.0.0.11 port=5432 sslmode=prefer application_name=pg2";
    expect(conninfoMatches(fromR, want.conninfo)).toBe(true);
    expect(conninfoMatches(`${fromR} password=***`, want.conninfo)).toBe(false);
    expect(planUpstream(conn, st(fromR, 'pg2'), want).kind).toBe('noop');
    expect(planUpstream(conn, st('host=10.0.0.99 user=replicator', 'pg2'), want).kind).toBe('change');
    expect(planUpstream(conn, st('', ''), null).kind).toBe('noop');
    expect(parseConninfo("a=1 b='x y' c='it\\'s'")).toEqual({ a: '1', b: 'x y', c: "it's" });
  });
});

describe('parsers', () => {
  it('psql unaligned output with unit/record separators and the NULL mark', () => {
    expect(parseRows(`a${FIELD_SEP}${NULL_MARK}${RECORD_SEP}line1\nline2${FIELD_SEP}x\n`)).toEqual([['a', null], ['line1\nline2', 'x']]);
    expect(parseRows('')).toEqual([]);
  });

  it('pg_controldata', () => {
    const c = parseControlData(`Database cluster state:               shut down
Latest checkpoint location:           0/5000B88
Latest checkpoint's REDO location:    0/5000B88
Latest checkpoint's TimeLineID:       2
wal_log_hints setting:                on
Data page checksum version:           0
Minimum recovery ending location:     0/0
`);
    expect(c).toEqual({ state: 'shut down', checkpointLsn: '0/5000B88', redoLsn: '0/5000B88', timeline: 2, walLogHints: true, checksums: false, minRecoveryEnd: null, systemId: expect.toSatisfy((v: unknown) => v === null || typeof v === 'string') });
  });

  it('pg_rewind --dry-run: rewind needed, not needed, impossible', () => {
    expect(parseRewindOutput(0, 'pg_rewind: servers diverged at WAL location 0/50003B8 on timeline 1\npg_rewind: rewinding from last common checkpoint at 0/4000060 on timeline 1\npg_rewind: Done!\n')).toMatchObject({ kind: 'rewind', divergedAt: '0/50003B8', timeline: '1' });
    expect(parseRewindOutput(0, 'pg_rewind: servers diverged at WAL location 0/5000CB0 on timeline 2\npg_rewind: no rewind required\n').kind).toBe('not-needed');
    expect(parseRewindOutput(1, 'pg_rewind: error: target server needs to use either data checksums or "wal_log_hints = on"\n')).toMatchObject({ kind: 'impossible', detail: expect.stringContaining('wal_log_hints') });
  });
});
