/**
 * Prefetch (src/engine/prefetch.ts): a converged run reads the checks of every step it can know
 * up front in one round trip per host, a step that needs an earlier step's state waits for its
 * wave, and once anything applied each step reads its own facts afresh (never a stale plan).
 * Run on the local engine (real scheduler, real batches through sh), counting execs per host.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Scheduler } from '../../../src/engine/scheduler.js';
import { change, defineRunbook, fact, noop, param, stepsFor, type ParamsOf } from '../../../src/index.js';
import { sh } from '../../../src/shell/command.js';
import { PlainLog } from '../../../src/ui/plain-log.js';
import { localEngine, view } from './local.js';

const params = { root: param.string({ description: 'root', required: true }) };
type P = ParamsOf<typeof params>;
const { step } = stepsFor<P>();
const path = (ctx: { params: P; host: { name: string } }, name: string) => join(ctx.params.root, ctx.host.name, name);
const readFile = (p: string) => fact({ name: `read ${p}`, command: sh`cat ${p} 2>/dev/null || true`, parse: (r) => r.stdout.trim() });

/** Step `name`: the file holds "want"; it writes it when not. */
const fileStep = (name: string, needsState = false) =>
  step({
    id: name,
    title: name,
    gather: (c) => {
      if (needsState && c.state.dir === undefined) throw new Error('no dir yet');
      return { v: readFile(path(c, name)) };
    },
    plan: (f: { v: string }, c) => (f.v === 'want' ? noop('ok') : change(`write ${name}`, [sh`echo want > ${path(c, name)}`])),
  });

const runbook = defineRunbook({
  id: 'prefetch',
  description: 'test',
  params,
  steps: [
    step({ id: 'where', title: 'where', gather: (c) => ({ d: readFile(path(c, 'dir')) }), plan: () => noop('found'), remember: (f: { d: string }) => ({ dir: f.d }) }),
    fileStep('a'),
    fileStep('b'),
    fileStep('c', true),
    fileStep('d', true),
  ],
});

async function run(root: string) {
  const log: string[] = [];
  const engine = localEngine([view('h1'), view('h2')], { root }, {}, log);
  const results = await new Scheduler(engine, runbook, new PlainLog(() => {}), { onResult: () => {} }).run();
  return { results, execs: log.length / 2 }; // two hosts, the same work on each
}

describe('prefetch of the checks', () => {
  it('a converged run: one batch per wave of state (2), not one per step (5); a run with a change reads afresh after it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rb-prefetch-'));
    for (const h of ['h1', 'h2']) {
      mkdirSync(join(root, h));
      writeFileSync(join(root, h, 'dir'), 'x\n');
      for (const f of ['a', 'b', 'c', 'd']) writeFileSync(join(root, h, f), 'want\n');
    }
    const converged = await run(root);
    expect(converged.results.every((r) => r.status === 'ok')).toBe(true);
    // wave 1: where, a, b; wave 2 (after `where` remembered dir): c, d
    expect(converged.execs).toBe(2);

    // b drifted: b changes (apply + its verification), and c and d, after the change, read their own facts
    for (const h of ['h1', 'h2']) writeFileSync(join(root, h, 'b'), 'drift\n');
    const drifted = await run(root);
    expect(drifted.results.filter((r) => r.status === 'changed').map((r) => `${r.stepId}@${r.host}`).sort()).toEqual(['b@h1', 'b@h2']);
    expect(drifted.results.filter((r) => r.status === 'ok')).toHaveLength(8);
    // 2 waves + b's apply + b's verification + c's and d's own reads
    expect(drifted.execs).toBe(6);
  });

  it('never serves a fact read before an apply to a step after it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rb-prefetch-'));
    // `b` is written by step `a`'s apply here: a reader of b after a must see the new content.
    const chain = defineRunbook({
      id: 'chain',
      description: 'test',
      params,
      steps: [
        step({ id: 'a', title: 'a', gather: (c) => ({ v: readFile(path(c, 'b')) }), plan: (f: { v: string }, c) => (f.v === 'want' ? noop('ok') : change('write b', [sh`echo want > ${path(c, 'b')}`])) }),
        step({ id: 'b', title: 'b', gather: (c) => ({ v: readFile(path(c, 'b')) }), plan: (f: { v: string }) => (f.v === 'want' ? noop('sees the write') : change('stale', [sh`false`])) }),
      ],
    });
    mkdirSync(join(root, 'h1'));
    const engine = localEngine([view('h1')], { root });
    const results = await new Scheduler(engine, chain, new PlainLog(() => {}), { onResult: () => {} }).run();
    expect(results.map((r) => `${r.stepId}:${r.status}:${r.message}`)).toEqual(['a:changed:write b', 'b:ok:sees the write']);
  });
});

describe('a lead at the head of the first batch (the run lock)', () => {
  async function withLead(said: 'acquired' | 'held') {
    const root = mkdtempSync(join(tmpdir(), 'rb-lead-'));
    for (const h of ['h1', 'h2']) {
      mkdirSync(join(root, h));
      for (const f of ['a', 'b']) writeFileSync(join(root, h, f), `${f} before\n`);
    }
    const runbook = defineRunbook({
      id: 'lead',
      description: 'test',
      params,
      steps: [
        step({ id: 'a', title: 'a', become: true, gather: (c) => ({ v: readFile(path(c, 'a')) }), plan: (f: { v: string }) => noop(f.v) }),
        step({ id: 'b', title: 'b', become: 'nobody-else', gather: (c) => ({ v: readFile(path(c, 'b')) }), plan: (f: { v: string }) => noop(f.v) }),
      ],
    });
    const log: string[] = [];
    const engine = localEngine([view('h1'), view('h2')], { root }, {}, log);
    const scheduler = new Scheduler(engine, runbook, new PlainLog(() => {}), { onResult: () => {} });
    // The lead writes what a lock would: the reads after it in the same script see it.
    const sent = scheduler.firstReads({
      hosts: ['h1', 'h2'],
      fact: (h) => fact({ name: 'lead', become: true, cache: false, command: sh`echo after > ${join(root, h, 'a')}; echo after > ${join(root, h, 'b')}; echo ${said}`, parse: (r) => r }),
      accept: (_h, r) => r.stdout.startsWith('acquired'),
    });
    const leads = await Promise.all([...sent.values()]);
    const afterLead = log.length;
    const results = await scheduler.run();
    return { leads, afterLead, execs: log.length, results: results.map((r) => `${r.stepId}@${r.host}:${r.message}`).sort() };
  }

  it('goes out in the same round trip as the host first reads (before them); other users read after it', async () => {
    const r = await withLead('acquired');
    expect(r.leads.map((x) => x.stdout.trim())).toEqual(['acquired', 'acquired']);
    // per host: the lead + the root reads in one script, then the other user's batch after it; run() reads nothing more
    expect(r.afterLead).toBe(4);
    expect(r.execs).toBe(4);
    expect(r.results).toEqual(['a@h1:after', 'a@h2:after', 'b@h1:after', 'b@h2:after']);
  });

  it('when the lead is not accepted, nothing read with it is used and the other users are not read: the steps read afresh', async () => {
    const r = await withLead('held');
    expect(r.afterLead).toBe(2); // only the lead batches
    expect(r.execs).toBe(6); // run() read both waves itself
    expect(r.results).toEqual(['a@h1:after', 'a@h2:after', 'b@h1:after', 'b@h2:after']);
  });
});

describe('reading ahead from the state an earlier run left (state memo)', () => {
  const guessRunbook = defineRunbook({
    id: 'guess',
    description: 'test',
    params,
    steps: [
      step({ id: 'where', title: 'where', gather: (c) => ({ d: readFile(path(c, 'dir')) }), plan: (f: { d: string }) => noop(f.d), remember: (f: { d: string }) => ({ dir: f.d }) }),
      step({
        id: 'e',
        title: 'e',
        gather: (c) => ({ v: readFile(join(path(c, String(c.state.dir)), 'e')) }),
        plan: (f: { v: string }) => noop(`e=${f.v}`),
      }),
    ],
  });

  async function runWith(guess: string | undefined) {
    const root = mkdtempSync(join(tmpdir(), 'rb-guess-'));
    mkdirSync(join(root, 'h1', 'sub'), { recursive: true });
    writeFileSync(join(root, 'h1', 'dir'), 'sub\n');
    writeFileSync(join(root, 'h1', 'sub', 'e'), 'right\n');
    mkdirSync(join(root, 'h1', 'old'));
    writeFileSync(join(root, 'h1', 'old', 'e'), 'stale guess\n');
    const log: string[] = [];
    const engine = localEngine([view('h1')], { root }, {}, log);
    if (guess) engine.stateGuess = new Map([['h1', { dir: guess }]]);
    const results = await new Scheduler(engine, guessRunbook, new PlainLog(() => {}), { onResult: () => {} }).run();
    return { execs: log.length, messages: results.map((r) => `${r.stepId}:${r.message}`) };
  }

  it('a right guess: both waves in one round trip', async () => {
    const r = await runWith('sub');
    expect(r.messages).toEqual(['where:sub', 'e:e=right']);
    expect(r.execs).toBe(1);
  });

  it('a wrong guess: read ahead in vain, never used; the step reads what its own state says', async () => {
    const r = await runWith('old');
    expect(r.messages).toEqual(['where:sub', 'e:e=right']);
    expect(r.execs).toBe(2);
  });

  it('no guess: one round trip per wave, as before', async () => {
    expect((await runWith(undefined)).execs).toBe(2);
  });
});
