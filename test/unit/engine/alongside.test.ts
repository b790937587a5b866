/**
 * Reads that ride along (src/engine/alongside.ts): a check step's reads carry the next check's
 * reads and, when the rest of the run is known to change nothing, the run lock's release. Run on
 * the local engine (real scheduler, real batches through sh), counting execs per host; each
 * correctness rule is tested by causing what it guards against (a value that changed after it
 * was read ahead, an apply in between, a later step that changes after all).
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunLockHooks } from '../../../src/engine/alongside.js';
import { AHEAD_MAX_AGE_MS, FactCache } from '../../../src/engine/context.js';
import { Scheduler } from '../../../src/engine/scheduler.js';
import { change, defineCheck, defineRunbook, fact, noop, onHost, param, stepsFor, type ParamsOf, type StepDef } from '../../../src/index.js';
import { sh } from '../../../src/shell/command.js';
import type { ExecResult } from '../../../src/transport/types.js';
import { PlainLog } from '../../../src/ui/plain-log.js';
import { localEngine, view } from './local.js';

const params = { root: param.string({ description: 'root', required: true }) };
type P = ParamsOf<typeof params>;
const { step } = stepsFor<P>();
const file = (root: string, host: string, name: string) => join(root, host, name);
const readFact = (p: string, cache = true) => fact({ name: `read ${p}`, command: sh`cat ${p} 2>/dev/null || true`, parse: (r) => r.stdout.trim(), ...(cache ? {} : { cache: false }) });

/** A polled check: the host's file `name` holds `want` ('*': anything; its message says what it saw). */
const checkStep = (id: string, name: string, want: string, o: { peer?: boolean; intervalMs?: number; after?: (root: string, host: string) => void } = {}): StepDef<P, any> =>
  defineCheck<P, { v: string; peer?: string }>({
    id,
    title: id,
    become: true, // as the release (root): one script for both
    name: `${name} holds ${want}`,
    intervalMs: o.intervalMs ?? 5000,
    timeoutMs: 20_000,
    gather: (c) => ({
      v: readFact(file(c.params.root, c.host.name, name)),
      // a peer's file, read on the peer's host (as standby-verify reads the primary's senders)
      ...(o.peer ? { peer: onHost(c.host.name === 'h1' ? 'h2' : 'h1', readFact(file(c.params.root, c.host.name === 'h1' ? 'h2' : 'h1', name))) } : {}),
    }),
    holds: (f, c) => {
      o.after?.(c.params.root, c.host.name);
      return f.v === want || want === '*' ? { ok: `${id} saw ${f.v}${f.peer !== undefined ? ` and ${f.peer}` : ''}` } : `saw ${f.v}`;
    },
  });

/** A change step: file `name` holds "want", else it writes it. */
const fileStep = (id: string, name: string, o: { uncached?: boolean; notify?: string[] } = {}): StepDef<P, any> =>
  step({
    id,
    title: id,
    become: true,
    ...(o.notify ? { notify: o.notify } : {}),
    gather: (c) => ({ v: readFact(file(c.params.root, c.host.name, name), !o.uncached) }),
    plan: (f: { v: string }, c) => (f.v === 'want' ? noop('ok') : change(`write ${name}`, [sh`echo want > ${file(c.params.root, c.host.name, name)}`])),
  });

function lab(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'rb-along-'));
  for (const h of ['h1', 'h2']) {
    mkdirSync(join(root, h));
    for (const [f, v] of Object.entries(files)) writeFileSync(join(root, h, f), `${v}\n`);
  }
  return root;
}

/** A run lock that writes "released" into each host's `lock` file when its release command runs. */
function stubLock(root: string, events: string[]): RunLockHooks {
  const held = new Set(['h1', 'h2']);
  return {
    releaseCommand: (h) => (held.has(h) ? sh`rm -f ${file(root, h, 'lock')} && echo released` : undefined),
    released: (h, r: ExecResult) => {
      if (r.exitCode === 0) held.delete(h);
      events.push(`released ${h}`);
    },
    beforeApply: async () => {
      events.push('before apply');
    },
  };
}

async function run(root: string, steps: Array<StepDef<P, any> | { phase: string; steps: Array<StepDef<P, any>> }>, handlers: Array<StepDef<P, any>> = []) {
  const log: string[] = [];
  const events: string[] = [];
  const engine = localEngine([view('h1'), view('h2')], { root }, {}, log);
  engine.runLock = stubLock(root, events);
  const runbook = defineRunbook({ id: 'along', description: 'test', params, steps, handlers });
  const t0 = Date.now();
  const results = await new Scheduler(engine, runbook, new PlainLog(() => {}), { onResult: () => {} }).run();
  return { results, execs: log.length, log, events, ms: Date.now() - t0, msg: (id: string, h = 'h1') => results.find((r) => r.stepId === id && r.host === h)?.message };
}

describe('reads that ride along with a check', () => {
  it('a converged run: the next check reads nothing of its own, the lock release rides on the last read, the rest plans from the cache', async () => {
    const root = lab({ x: 'want', p: 'ok', q: 'ok', lock: 'mine' });
    const r = await run(root, [fileStep('a', 'x'), checkStep('A', 'p', 'ok'), checkStep('B', 'q', 'ok', { peer: true }), fileStep('c', 'x')]);
    expect(r.results.every((x) => x.status === 'ok')).toBe(true);
    // per host: the first batch (a's and c's facts), then A's read carrying B's reads (its own and its peer's) and the release
    expect(r.execs).toBe(4);
    expect(r.msg('B')).toBe('B saw ok and ok');
    expect(r.events.sort()).toEqual(['released h1', 'released h2']);
    for (const h of ['h1', 'h2']) expect(() => readFileSync(file(root, h, 'lock'))).toThrow(/ENOENT/);
  });

  it('what was read ahead no longer holds: the check reads afresh at once (no poll interval), and sees the new value', async () => {
    const root = lab({ p: 'ok', q: 'old' });
    // A's verdict writes q after A's read (and the read of q along with it) came back
    const r = await run(root, [checkStep('A', 'p', 'ok', { after: (rt, h) => writeFileSync(file(rt, h, 'q'), 'ok\n') }), checkStep('B', 'q', 'ok', { intervalMs: 5000 })]);
    expect(r.results.every((x) => x.status === 'ok')).toBe(true);
    expect(r.msg('B')).toBe('B saw ok');
    expect(r.execs).toBe(4); // A's read (+ B's along), then B's own fresh read, per host
    expect(r.ms).toBeLessThan(4000); // no 5 s interval waited
  });

  it('never serves a read made before an apply: a handler that ran between the two checks is seen', async () => {
    const root = lab({ x: 'drift', p: 'ok', q: 'old' });
    const writeQ = step({
      id: 'write-q',
      title: 'write q',
      gather: (c) => ({ q: readFact(file(c.params.root, c.host.name, 'q')) }),
      plan: (f: { q: string }, c) => (f.q === 'ok' ? noop('ok') : change('write q', [sh`echo ok > ${file(c.params.root, c.host.name, 'q')}`])),
    });
    // B holds whatever it reads, and says what: served the read made along with A (before the handler), it would say "old"
    const r = await run(root, [{ phase: 'p', steps: [fileStep('a', 'x', { notify: ['write-q'] }), checkStep('A', 'p', 'ok')] }, checkStep('B', 'q', '*')], [writeQ]);
    expect(r.results.filter((x) => x.status === 'changed').map((x) => x.stepId).sort()).toEqual(['a', 'a', 'write-q', 'write-q']);
    expect(r.msg('B')).toBe('B saw ok');
    // a handler was pending while A ran: the release waited, and rode on B's read, after the last apply
    expect(r.events.filter((e) => e === 'before apply')).toHaveLength(4);
    expect(r.events.slice(4).sort()).toEqual(['released h1', 'released h2']);
  });

  it('a later step that cannot be known from the cache keeps the lock to the end', async () => {
    const root = lab({ x: 'want', p: 'ok', lock: 'mine' });
    const r = await run(root, [checkStep('A', 'p', 'ok'), fileStep('c', 'x', { uncached: true })]);
    expect(r.results.every((x) => x.status === 'ok')).toBe(true);
    expect(r.events).toEqual([]);
    expect(readFileSync(file(root, 'h1', 'lock'), 'utf8')).toBe('mine\n');
  });

  it('a later step that changes after all (its look ahead was wrong): the lock is taken again before it applies', async () => {
    const root = lab({ p: 'ok' });
    let calls = 0;
    // impure on purpose: noop when looked at ahead, a change when it really runs
    const flip = step({ id: 'flip', title: 'flip', on: 'h1', plan: (_f, c) => (calls++ === 0 ? noop('looks done') : change('changes after all', [sh`echo applied > ${file(c.params.root, 'h1', 'flip')}`])) });
    const r = await run(root, [checkStep('A', 'p', 'ok'), flip]);
    expect(r.msg('flip')).toBe('changes after all');
    expect(r.events.indexOf('before apply')).toBeGreaterThan(r.events.indexOf('released h1'));
    expect(r.events).toContain('released h2');
  });

  it('a read made ahead is served once, to the host it was read for, and never once anything applied or when it is old', async () => {
    const r: ExecResult = { host: 'h1', command: 'c', exitCode: 0, stdout: 'x', stderr: '', durationMs: 1, timedOut: false };
    const cache = new FactCache();
    cache.storeAhead('h1', 'k', r, cache.generation);
    expect(cache.takeAhead('h2', 'k')).toBeUndefined();
    expect(cache.takeAhead('h1', 'k')?.stdout).toBe('x');
    expect(cache.takeAhead('h1', 'k')).toBeUndefined(); // once
    const before = cache.generation;
    cache.clear();
    cache.storeAhead('h1', 'k', r, before); // read before the apply: not kept
    expect(cache.takeAhead('h1', 'k')).toBeUndefined();
    cache.storeAhead('h1', 'k', r, cache.generation);
    cache.clear();
    expect(cache.takeAhead('h1', 'k')).toBeUndefined();
    cache.storeAhead('h1', 'k', r, cache.generation);
    expect(cache.takeAhead('h1', 'k', Date.now() + AHEAD_MAX_AGE_MS + 1)).toBeUndefined();
    await cache.applying(async () => {
      cache.storeAhead('h1', 'k', r, cache.generation);
    });
    expect(cache.takeAhead('h1', 'k')).toBeUndefined();
  });
});
