import { mkdtempSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Scheduler, batches, selectedByTags } from '../../../src/engine/scheduler.js';
import { defineRunbook, param, stepsFor, change, noop, type ParamsOf } from '../../../src/index.js';
import { file, managedBlock } from '../../../src/core/file-ops.js';
import { fileInfo } from '../../../src/core/file-facts.js';
import { sh } from '../../../src/shell/command.js';
import { exitCodeOf, recap } from '../../../src/engine/results.js';
import { PlainLog } from '../../../src/ui/plain-log.js';
import { localEngine, view } from './local.js';

const params = { root: param.string({ description: 'root', required: true }) };
type P = ParamsOf<typeof params>;
const { step } = stepsFor<P>();
const dir = (ctx: { params: P; host: { name: string } }) => join(ctx.params.root, ctx.host.name);

const runbook = defineRunbook({
  id: 't',
  description: 'test',
  params,
  steps: [
    step({ id: 'mk', title: 'dir', gather: (c) => ({ d: fileInfo(dir(c)) }), plan: (f, c) => (f.d.exists ? noop('exists') : change('mkdir', [sh`mkdir -p ${dir(c)}`])) }),
    step({ id: 'greet', title: 'file', operation: (c) => file({ path: `${dir(c)}/g.txt`, content: 'hi\n' }), notify: ['h'] }),
    step({ id: 'block', title: 'block', operation: (c) => managedBlock({ path: `${dir(c)}/b.conf`, marker: 'm', block: 'x = 1' }) }),
    step({ id: 'boom', title: 'fails on h2', when: (c) => (c.host.name === 'h2' ? true : 'only h2'), plan: () => change('fail', [sh`exit 4`]) }),
    step({ id: 'after', title: 'after', plan: () => noop('nothing') }),
  ],
  handlers: [step({ id: 'h', title: 'handler', apply: async (c) => void (await c.exec(sh`echo ran >> ${`${dir(c)}/handler.log`}`)) })],
});

async function run(root: string, checkMode = false) {
  const out: string[] = [];
  const engine = localEngine([view('h1'), view('h2')], { root }, { checkMode });
  const s = new Scheduler(engine, runbook, new PlainLog((l) => out.push(l)), { onResult: () => {} });
  const results = await s.run();
  return { results, out: out.join(''), code: exitCodeOf(results, { checkMode, interrupted: false }) };
}

describe('scheduler', () => {
  it('changes, then converges; a failed host stops only its own steps; handlers run once on changed hosts', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rb-sched-'));
    const first = await run(root);
    const st = (id: string, h: string) => first.results.find((r) => r.stepId === id && r.host === h)?.status;
    expect(st('mk', 'h1')).toBe('changed');
    expect(st('greet', 'h1')).toBe('changed');
    expect(st('block', 'h2')).toBe('changed');
    expect(st('boom', 'h1')).toBe('skipped');
    expect(st('boom', 'h2')).toBe('failed');
    expect(st('after', 'h1')).toBe('ok');
    expect(st('after', 'h2')).toBeUndefined();
    expect(first.code).toBe(3);
    expect(readFileSync(join(root, 'h1/handler.log'), 'utf8')).toBe('ran\n');
    // h2 failed before the flush: its handler does not run.
    expect(existsSync(join(root, 'h2/handler.log'))).toBe(false);
    expect(readFileSync(join(root, 'h1/b.conf'), 'utf8')).toBe('# BEGIN runbook m\nx = 1\n# END runbook m\n');
    const failure = first.results.find((r) => r.stepId === 'boom' && r.host === 'h2')!.failure!;
    expect(failure.exitCode).toBe(4);
    expect(failure.command).toBe('exit 4');

    const second = await run(root);
    const changed = second.results.filter((r) => r.status === 'changed');
    expect(changed).toEqual([]);
    expect(readFileSync(join(root, 'h1/handler.log'), 'utf8')).toBe('ran\n');
    expect(recap(second.results, ['h1', 'h2']).find((r) => r.host === 'h1')).toMatchObject({ ok: 4, skipped: 1, changed: 0 });
  });

  it('check mode reports exactly the drifted step and changes nothing', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rb-sched-'));
    await run(root);
    writeFileSync(join(root, 'h1/g.txt'), 'drift\n');
    const check = await run(root, true);
    const would = check.results.filter((r) => r.status === 'would-change');
    // boom always plans a change on h2; the drifted file (and the handler it notifies) on h1 only.
    expect(would.map((r) => `${r.stepId}@${r.host}`)).toEqual(['greet@h1', 'boom@h2', 'h@h1']);
    expect(readFileSync(join(root, 'h1/g.txt'), 'utf8')).toBe('drift\n');
    expect(check.out).toMatch(/would change/);
  });
});

describe('pure scheduling helpers', () => {
  it('splits serial batches', () => {
    expect(batches([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(batches([1, 2], undefined)).toEqual([[1, 2]]);
    expect(batches([], 3)).toEqual([]);
  });
  it('filters by tags', () => {
    const s = { id: 'a', title: 'a', tags: ['db'] };
    expect(selectedByTags(s, ['db'])).toBe(true);
    expect(selectedByTags(s, ['web'])).toBe(false);
    expect(selectedByTags(s, [], ['db'])).toBe(false);
    expect(selectedByTags({ id: 'b', title: 'b', tags: ['always'] }, ['web'])).toBe(true);
  });
  it('picks one exit code by priority', () => {
    const r = (status: any, kind?: any) => ({ stepId: 's', title: 's', host: 'h', status, message: '', commands: [], durationMs: 0, ...(kind ? { failure: { kind, message: '' } } : {}) });
    expect(exitCodeOf([r('would-change')], { checkMode: true, interrupted: false })).toBe(7);
    expect(exitCodeOf([r('would-change')], { checkMode: false, interrupted: false })).toBe(0);
    expect(exitCodeOf([r('failed', 'step'), r('failed', 'verify')], { checkMode: false, interrupted: false })).toBe(4);
    expect(exitCodeOf([r('failed', 'verify'), r('failed', 'confirmation')], { checkMode: false, interrupted: false })).toBe(6);
    expect(exitCodeOf([r('blocked'), r('failed', 'confirmation')], { checkMode: false, interrupted: false })).toBe(8);
    expect(exitCodeOf([r('blocked'), r('unreachable')], { checkMode: false, interrupted: false })).toBe(5);
    expect(exitCodeOf([r('unreachable')], { checkMode: false, interrupted: true })).toBe(130);
  });
});

describe('fact cache', () => {
  it('a readAhead fact (cache: false) is prefetched and served once, to the first check; later reads are fresh', async () => {
    const { fact } = await import('../../../src/engine/define.js');
    const root = mkdtempSync(join(tmpdir(), 'rb-ahead-'));
    const f = join(root, 'v');
    writeFileSync(f, 'a\n');
    const ahead = fact({ name: 'ahead', command: sh`cat ${f}`, cache: false, readAhead: true, parse: (r) => r.stdout.trim() });
    const seen: string[] = [];
    const rb = defineRunbook({
      id: 'ahead',
      description: 'ahead',
      params: {},
      steps: [
        step({ id: 'sneak', title: 'sneak', plan: () => (writeFileSync(f, 'b\n'), noop('sneaked')) }),
        step({ id: 'r1', title: 'r1', gather: () => ({ v: ahead }), plan: (x) => (seen.push(x.v), noop(x.v)) }),
        step({ id: 'r2', title: 'r2', gather: () => ({ v: ahead }), plan: (x) => (seen.push(x.v), noop(x.v)) }),
      ],
    });
    const log: string[] = [];
    const engine = localEngine([view('h1')], {}, {}, log);
    await new Scheduler(engine, rb as never, new PlainLog(() => {}), { onResult: () => {} }).run();
    expect(seen).toEqual(['a', 'b']); // r1: the read ahead (before sneak); r2: fresh
    expect(log).toHaveLength(2);
  });

  it('keys a command with secrets by a digest of their values: never the value, never shared between two secrets', async () => {
    const { FactCache } = await import('../../../src/engine/context.js');
    const { secret } = await import('../../../src/shell/secret.js');
    const k = (v: string, stdin = false) =>
      stdin ? FactCache.key('h', true, sh`psql`.withStdin(secret(v, 'pw'))) : FactCache.key('h', true, sh`check ${secret(v, 'pw')}`);
    expect(k('one-secret-value')).toBe(k('one-secret-value'));
    expect(k('one-secret-value')).not.toBe(k('two-secret-value'));
    expect(k('one-secret-value', true)).not.toBe(k('two-secret-value', true));
    expect(k('one-secret-value', true)).not.toBe(k('one-secret-value'));
    for (const key of [k('one-secret-value'), k('one-secret-value', true)]) expect(key).not.toContain('one-secret-value');
  });


  it('reuses a fact read by an earlier check only while nothing was applied; never for cache: false, verify or read; a secret command only for the same secret', async () => {
    const { fact } = await import('../../../src/engine/define.js');
    const { secret } = await import('../../../src/shell/secret.js');
    const root = mkdtempSync(join(tmpdir(), 'rb-cache-'));
    const f = join(root, 'v');
    writeFileSync(f, 'a\n');
    const value = fact({ name: 'v', command: sh`cat ${f}`, parse: (r) => r.stdout.trim() });
    const fresh = fact({ name: 'fresh', command: sh`cat ${f}`, cache: false, parse: (r) => r.stdout.trim() });
    const s = secret('cache-secret', 's');
    const withSecret = fact({ name: 'sec', command: sh`cat ${f}; : ${s}`, parse: (r) => r.stdout.trim() });
    const otherSecret = fact({ name: 'sec2', command: sh`cat ${f}; : ${secret('other-secret', 's')}`, parse: (r) => r.stdout.trim() });
    const seen: Record<string, string[]> = {};
    const saw = (id: string, v: string) => (seen[id] ??= []).push(v);
    const rb = defineRunbook({
      id: 'cache',
      description: 'cache',
      params: {},
      steps: [
        step({ id: 's1', title: 's1', gather: () => ({ v: value, sec: withSecret }), plan: (x) => (saw('s1', x.v), noop(x.v)) }),
        step({ id: 's2', title: 's2', gather: () => ({ v: value }), plan: (x) => (saw('s2', x.v), noop(x.v)) }),
        // Changed behind the engine's back (as time would): only cache: false facts and a command not read yet see it.
        step({ id: 'sneak', title: 'sneak', plan: () => (writeFileSync(f, 'b\n'), noop('sneaked')) }),
        step({ id: 's3', title: 's3', gather: () => ({ v: value, fresh, sec: withSecret, sec2: otherSecret }), plan: (x) => (saw('s3', `${x.v}/${x.fresh}/${x.sec}/${x.sec2}`), noop(x.v)) }),
        step({ id: 'apply', title: 'apply', gather: () => ({ v: value }), plan: (x) => (x.v === 'c' ? noop('c') : change('to c', [sh`printf 'c\n' > ${f}`])) }),
        step({ id: 's4', title: 's4', gather: () => ({ v: value }), plan: (x) => (saw('s4', x.v), noop(x.v)) }),
        step({ id: 'sneak2', title: 'sneak2', plan: () => (writeFileSync(f, 'd\n'), noop('sneaked')) }),
        step({ id: 'reader', title: 'reader', plan: () => change('read', []), apply: async (c) => saw('read', await c.read(value)), verify: { converge: false } }),
        step({ id: 's5', title: 's5', gather: () => ({ v: value }), plan: (x) => (saw('s5', x.v), noop(x.v)) }),
      ],
    });
    const log: string[] = [];
    const engine = localEngine([view('h1')], {}, {}, log);
    const results = await new Scheduler(engine, rb as never, new PlainLog(() => {}), { onResult: () => {} }).run();
    expect(results.filter((r) => r.status === 'failed')).toEqual([]);
    expect(seen.s1).toEqual(['a']);
    expect(seen.s2).toEqual(['a']);
    expect(seen.s3).toEqual(['a/b/a/a']); // cached (prefetched) v and both secret commands; fresh re-read
    expect(seen.s4).toEqual(['c']); // an apply cleared the cache
    expect(seen.read).toEqual(['d']); // read bypasses the cache
    expect(seen.s5).toEqual(['d']); // the reader step applied (cleared), so s5 reads again
    expect(engine.factCache!.hits).toBeGreaterThanOrEqual(2);
  });
});
