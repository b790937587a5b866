/**
 * The one managed-block editor, run for real: the rendered fact and edit commands go through
 * /bin/sh on this machine (the wire form, stdin included), against files in a temp directory.
 * Among them blocks in the older "# BEGIN runbook: NAME" format that earlier versions' PostgreSQL
 * editor left on hosts: found and replaced, never duplicated.
 */
import { chmodSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type BlockArgs, type BlockFacts, blockCommand, blockStateFact, managedBlock } from '../../../src/core/file-ops.js';
import { fileContent } from '../../../src/core/file-facts.js';
import type { ChangePlan, Fact } from '../../../src/engine/types.js';
import { hbaBlockArgs, pgpassBlockArgs } from '../../../src/modules/postgres/ops.js';
import { resolveLayout, type PgLayout } from '../../../src/modules/postgres/layout.js';
import { type Command, pathWord, stdinText } from '../../../src/shell/command.js';
import { secret } from '../../../src/shell/secret.js';
import { localConnection } from '../engine/local.js';

const conn = localConnection('local');
const run = (c: Command) => conn.exec(c);
async function read<T>(f: Fact<T>): Promise<T> {
  return f.parse(await run(f.command));
}
/** Gather the op's facts here, plan, and (for a change) run its one edit. */
async function converge(a: BlockArgs): Promise<{ plan: ReturnType<ReturnType<typeof managedBlock>['plan']>; facts: BlockFacts }> {
  const op = managedBlock(a);
  const facts: BlockFacts = { block: await read(blockStateFact(a)) };
  if ('current' in op.facts) facts.current = await read(fileContent(a.path));
  const plan = op.plan(facts);
  if (plan.kind === 'change') {
    expect(plan.commands).toHaveLength(1);
    const r = await run(plan.commands[0]!);
    expect(r.exitCode, r.stderr).toBe(0);
  }
  return { plan, facts };
}
const dir = () => mkdtempSync(join(tmpdir(), 'rb-block-'));
const text = (p: string) => readFileSync(p, 'utf8');
/** Files in the directory beside the target: no temp file may be left. */
const others = (d: string, name: string) => readdirSync(d).filter((f) => f !== name);

const LEGACY_HBA = '# BEGIN runbook: replication\nhost replication replicator 10.0.0.12/32 scram-sha-256\n# END runbook: replication\n';

describe('managed block (rendered shell, run here)', () => {
  it('adds a block to a missing file, then finds it identical (host-side) and does nothing', async () => {
    const d = dir();
    const a: BlockArgs = { path: join(d, 'app.conf'), marker: 'm', block: 'k = v\nx = "two words"' };
    const first = await converge(a);
    expect(first.plan).toMatchObject({ kind: 'change', summary: `add block m to ${a.path}` });
    expect(text(a.path)).toBe('# BEGIN runbook m\nk = v\nx = "two words"\n# END runbook m\n');
    expect(statSync(a.path).mode & 0o777).toBe(0o644);
    const second = await converge(a);
    expect(second.facts.block).toMatchObject({ exists: true, blocks: 1, same: true, legacy: false });
    expect(second.plan.kind).toBe('noop');
    expect(others(d, 'app.conf')).toEqual([]);
  });

  it('a block in the old "# BEGIN runbook: NAME" format is replaced in place, not duplicated', async () => {
    const d = dir();
    const path = join(d, 'pg_hba.conf');
    writeFileSync(path, `# TYPE DATABASE USER ADDRESS METHOD\n${LEGACY_HBA}local all all peer\n`);
    const l = { ...(resolveLayout({ osId: 'debian', osLike: [], systemd: false, debianClusters: [{ version: '15', cluster: 'main', port: 5432, status: 'online', dataDir: '/var/lib/postgresql/15/main' }], pgdgBins: [], pgdgData: [], debianBins: ['15'] }) as PgLayout), hbaFile: path };
    const entries = [{ type: 'host' as const, database: 'replication', user: 'replicator', address: '10.0.0.12/32', method: 'scram-sha-256' }];
    const { owner: _o, group: _g, ...a } = hbaBlockArgs(l, entries);
    const state = await read(blockStateFact(a));
    // Same lines, old markers: found (one block, legacy), not identical, so rewritten once.
    expect(state).toMatchObject({ blocks: 1, legacy: true, same: false, open: false });
    const first = await converge(a);
    expect((first.plan as ChangePlan).summary).toContain('older "runbook:" format');
    expect((first.plan as ChangePlan).diff).toContain('-# BEGIN runbook: replication\n+# BEGIN runbook replication');
    expect(text(path)).toBe('# TYPE DATABASE USER ADDRESS METHOD\n# BEGIN runbook replication\nhost replication replicator 10.0.0.12/32 scram-sha-256\n# END runbook replication\nlocal all all peer\n');
    expect((await converge(a)).plan.kind).toBe('noop');
  });

  it('old and new blocks side by side collapse into one; removal takes both formats', async () => {
    const d = dir();
    const a: BlockArgs = { path: join(d, 'f'), marker: 'replication', block: 'new' };
    writeFileSync(a.path, `a\n# BEGIN runbook replication\nnew\n# END runbook replication\nb\n${LEGACY_HBA}c\n`);
    expect(await read(blockStateFact(a))).toMatchObject({ blocks: 2, legacy: true, same: false });
    await converge(a);
    expect(text(a.path)).toBe('a\n# BEGIN runbook replication\nnew\n# END runbook replication\nb\nc\n');
    writeFileSync(a.path, `a\n${LEGACY_HBA}b\n`);
    const gone = await converge({ ...a, state: 'absent' });
    expect(gone.plan.kind).toBe('change');
    expect(text(a.path)).toBe('a\nb\n');
    expect((await converge({ ...a, state: 'absent' })).plan.kind).toBe('noop');
  });

  it("top: a new block goes first (pg_hba is first-match); an existing one stays where it is", async () => {
    const d = dir();
    const a: BlockArgs = { path: join(d, 'hba'), marker: 'x', block: 'one', insert: 'top' };
    writeFileSync(a.path, 'l1\nl2\n');
    const first = await converge(a);
    expect((first.plan as ChangePlan).summary).toBe(`add block x to ${a.path} (at the top)`);
    expect(text(a.path)).toBe('# BEGIN runbook x\none\n# END runbook x\nl1\nl2\n');
    writeFileSync(a.path, 'l1\n# BEGIN runbook x\nold\n# END runbook x\nl2\n');
    await converge({ ...a, block: 'two' });
    expect(text(a.path)).toBe('l1\n# BEGIN runbook x\ntwo\n# END runbook x\nl2\n');
    // bottom (the default) for a new block
    writeFileSync(a.path, 'l1\n');
    await converge({ ...a, insert: 'bottom' });
    expect(text(a.path)).toBe('l1\n# BEGIN runbook x\none\n# END runbook x\n');
  });

  it('secret content: compared on the host, never in a command line or a fact output; 0600 kept; no temp file left', async () => {
    const d = dir();
    const pw = secret('s3cr:et-Pw\\9', 'replication_password');
    const { owner: _o, group: _g, ...a } = { ...pgpassBlockArgs([{ host: '10.0.0.11', port: 5432, user: 'replicator' }], pw), path: join(d, '.pgpass') };
    writeFileSync(a.path, `other:5432:*:u:keep\n# BEGIN runbook: replication\n10.0.0.11:5432:*:replicator:old\n# END runbook: replication\n`);
    const f = blockStateFact(a);
    expect(f.command.toString()).not.toContain('s3cr');
    const r = await run(f.command);
    expect(r.stdout).not.toContain('old');
    expect(f.parse(r)).toMatchObject({ blocks: 1, legacy: true, same: false });
    const first = await converge(a);
    expect(JSON.stringify(first.plan)).not.toContain('s3cr');
    // No diff of a block holding a secret (its old text, "old" here, could be a secret we do not know): a line says so.
    expect(first.plan.kind === 'change' && first.plan.diff).toBe(`${a.path}: block replication holds a secret: compared on the host, never read back, so no diff is shown\n`);
    expect(text(a.path)).toBe('other:5432:*:u:keep\n# BEGIN runbook replication\n10.0.0.11:5432:*:replicator:s3cr\\:et-Pw\\\\9\n# END runbook replication\n');
    expect(statSync(a.path).mode & 0o777).toBe(0o600);
    expect(others(d, '.pgpass')).toEqual([]);
    expect((await converge(a)).plan.kind).toBe('noop');
    // Another password: the host says "differs" (no hash of either leaves it).
    const other = { ...a, block: stdinText`10.0.0.11:5432:*:replicator:${secret('n3w', 'pw')}\n` };
    expect((await read(blockStateFact(other))).same).toBe(false);
  });

  it('an unterminated block: the fact says so, the plan refuses, and the edit itself changes nothing', async () => {
    const d = dir();
    const a: BlockArgs = { path: join(d, 'f'), marker: 'm', block: 'x' };
    writeFileSync(a.path, 'a\n# BEGIN runbook m\nb\nc\n');
    const op = managedBlock(a);
    const s = await read(blockStateFact(a));
    expect(s.open).toBe(true);
    expect(op.plan({ block: s, current: text(a.path) }).kind).toBe('blocked');
    const r = await run(blockCommand(a, true, true));
    expect(r.exitCode).not.toBe(0);
    expect(text(a.path)).toBe('a\n# BEGIN runbook m\nb\nc\n');
    expect(others(d, 'f')).toEqual([]);
  });

  it('a failing validation leaves the file as it was and no temp file behind', async () => {
    const d = dir();
    const a: BlockArgs = { path: join(d, 'f'), marker: 'm', block: 'x', validate: () => pathWord('false') };
    writeFileSync(a.path, 'a\n');
    const r = await run(blockCommand(a, true, true));
    expect(r.exitCode).not.toBe(0);
    expect(text(a.path)).toBe('a\n');
    expect(others(d, 'f')).toEqual([]);
  });

  it('~/ and ~user/ paths are expanded by the shell, the rest quoted', async () => {
    expect(pathWord('~postgres/.pgpass').toString()).toBe('~postgres/.pgpass');
    expect(pathWord("~pg_x/a b/it's").toString()).toBe("~pg_x/'a b/it'\\''s'");
    expect(pathWord('/etc/a b').toString()).toBe("'/etc/a b'");
    expect(pathWord('~').toString()).toBe("'~'");
    const d = dir();
    const home = localConnection('local');
    const old = process.env.HOME;
    process.env.HOME = d;
    try {
      const a: BlockArgs = { path: '~/in home.conf', marker: 'm', block: 'x' };
      const s = blockStateFact(a).parse(await home.exec(blockStateFact(a).command));
      expect(s.exists).toBe(false);
      const r = await home.exec(blockCommand(a, true, false));
      expect(r.exitCode, r.stderr).toBe(0);
      expect(text(join(d, 'in home.conf'))).toBe('# BEGIN runbook m\nx\n# END runbook m\n');
      // An existing file keeps its mode (chmod --reference, with the path as its own word: no tilde after '=').
      chmodSync(join(d, 'in home.conf'), 0o640);
      const again = await home.exec(blockCommand({ ...a, block: 'y' }, true, true));
      expect(again.exitCode, again.stderr).toBe(0);
      expect(statSync(join(d, 'in home.conf')).mode & 0o777).toBe(0o640);
      expect(others(d, 'in home.conf')).toEqual([]);
    } finally {
      process.env.HOME = old;
    }
  });
});
