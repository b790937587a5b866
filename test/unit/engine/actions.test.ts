/** Actions, their one interpreter and their rendering; probes and checks (exit 4, not verified in --check). */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Scheduler } from '../../../src/engine/scheduler.js';
import {
  actionLines,
  blocked,
  change,
  defineCheck,
  defineRunbook,
  exec,
  execOn,
  fact,
  later,
  local,
  localCommand,
  noop,
  onHost,
  param,
  probe,
  secret,
  sh,
  stepsFor,
  viewAction,
  waitUntil,
  type ParamsOf,
} from '../../../src/index.js';
import type { ActionStarted } from '../../../src/engine/context.js';
import { exitCodeOf, recap } from '../../../src/engine/results.js';
import { clearJobCommand, detachedJob } from '../../../src/core/detached.js';
import { planHosts, formatPlan } from '../../../src/engine/plan.js';
import { PlainLog } from '../../../src/ui/plain-log.js';
import { recapTable } from '../../../src/ui/types.js';
import { localEngine, view } from './local.js';

const params = { root: param.string({ description: 'root', required: true }) };
type P = ParamsOf<typeof params>;
const { step } = stepsFor<P>();

const lineCount = (file: string) =>
  fact({ name: 'lines', command: sh`cat ${file} 2>/dev/null | wc -l`, parse: (r) => Number(r.stdout.trim()) });

async function runIt(def: ReturnType<typeof defineRunbook>, root: string, opts: { checkMode?: boolean } = {}) {
  const out: string[] = [];
  const log: string[] = [];
  const actions: ActionStarted[] = [];
  const engine = localEngine([view('h1'), view('h2')], { root }, { checkMode: opts.checkMode ?? false }, log);
  engine.onAction = (e) => {
    actions.push(e);
    log.push(`ANNOUNCED ${e.host} ${e.action.text}`);
  };
  if (opts.checkMode) engine.wouldChange = new Set();
  const s = new Scheduler(engine, def, new PlainLog((l) => out.push(l)), { onResult: () => {} });
  const results = await s.run();
  return { results, out: out.join(''), log, actions, code: exitCodeOf(results, { checkMode: opts.checkMode ?? false, interrupted: false }) };
}

describe('rendering', () => {
  it('one line per action: own-host exec as is, others prefixed; secrets masked; later() says what it waits for', () => {
    const pw = secret('hunter2-action', 'pw');
    const lines = actionLines([
      sh`echo ${'a b'}`,
      execOn('pg1', sh`echo ${pw}`, { note: 'on the peer' }),
      waitUntil('pg2 replays', onHost('pg2', fact({ name: 'x', command: sh`echo 1`, parse: (r) => r.stdout })), () => true, { intervalMs: 500, timeoutMs: 60_000 }),
      local('fence', "/bin/sh -c 'x' runbook-fence pg1 10.0.0.1", async () => {}),
      exec(later('mv /data <stdout of: stamp>', () => sh`true`)),
    ]);
    expect(lines).toEqual([
      "echo 'a b'",
      '[on pg1] echo ***    # on the peer',
      '[wait] until pg2 replays (every 0.5 s, up to 60 s): pg2: echo 1',
      "[local] fence: /bin/sh -c 'x' runbook-fence pg1 10.0.0.1",
      'mv /data <stdout of: stamp>',
    ]);
  });

  it('localCommand shows its exact argv, quoted, env first', () => {
    expect(viewAction(localCommand('fence', ['/bin/sh', '-c', 'echo "$1"', 'runbook-fence', 'pg 1'], { env: { RUNBOOK_FENCE_HOST: 'pg1' } })).text).toBe(
      `fence: RUNBOOK_FENCE_HOST=pg1 /bin/sh -c 'echo "$1"' runbook-fence 'pg 1'`,
    );
  });

  it('change(summary, Command[]) still works: Commands become exec actions, commands kept for old readers', () => {
    const p = change('x', [sh`a`, execOn('h2', sh`b`)], 'diff');
    expect(p.actions.map((a) => a.kind)).toEqual(['exec', 'exec']);
    expect(p.commands.map(String)).toEqual(['a']);
    expect(p.diff).toBe('diff');
    expect(change('y', [], { data: { n: 1 } }).data).toEqual({ n: 1 });
  });
});

describe('interpreter', () => {
  it('runs exec, execOn, wait, local and later in order, each announced before it starts', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rb-act-'));
    const f = join(root, 'f');
    const order: string[] = [];
    const def = defineRunbook({
      id: 'a',
      description: 'a',
      params,
      steps: [
        step({
          id: 'do',
          title: 'do',
          on: 'h1',
          verify: { converge: false },
          plan: () =>
            change('several', [
              sh`echo one >> ${f}`,
              execOn('h2', sh`echo "two $RB_HOST" >> ${f}`),
              // The file gets its third line from a background writer: the wait polls until it is there.
              sh`( sleep 0.3; echo three >> ${f} ) >/dev/null 2>&1 &`,
              waitUntil('three lines', lineCount(f), (n) => (n >= 3 ? true : `${n} lines`), { intervalMs: 100, timeoutMs: 5000 }),
              local('note', 'remember on the controller', async () => void order.push('local ran')),
              exec(sh`echo stamp-42`, { saveAs: 'stamp' }),
              exec(later('echo <stdout of: stamp> >> f', (s) => sh`echo ${s.stamp!} >> ${f}`)),
            ]),
        }),
      ],
    });
    const r = await runIt(def, root);
    expect(r.code).toBe(0);
    expect(readFileSync(f, 'utf8')).toBe('one\ntwo h2\nthree\nstamp-42\n');
    expect(order).toEqual(['local ran']);
    // Announced (journal) before the transport saw the command.
    const i = r.log.indexOf(`ANNOUNCED h1 echo one >> ${f}`);
    expect(i).toBeGreaterThanOrEqual(0);
    expect(r.log[i + 1]).toBe(`echo one >> ${f}`);
    expect(r.actions.map((a) => a.action.kind)).toEqual(['exec', 'exec', 'exec', 'wait', 'local', 'exec', 'exec']);
    expect(r.actions[1]).toMatchObject({ action: { host: 'h2' } });
    // The later command is journaled as planned, with the text it resolved to.
    expect(r.actions[6]).toMatchObject({ action: { text: 'echo <stdout of: stamp> >> f' }, resolved: `echo stamp-42 >> ${f}` });
    const res = r.results.find((x) => x.stepId === 'do')!;
    expect(res.status).toBe('changed');
    expect(res.actions!.map((a) => a.text)).toEqual(r.actions.map((a) => a.action.text));
  });

  it('a wait that never holds fails the step at its deadline with the last reason (exit 3)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rb-act-'));
    const def = defineRunbook({
      id: 'w',
      description: 'w',
      params,
      steps: [step({ id: 'w', title: 'w', on: 'h1', plan: () => change('wait', [waitUntil('the file appears', lineCount(join(root, 'never')), (n) => (n > 0 ? true : 'still empty'), { intervalMs: 50, timeoutMs: 300 })]) })],
    });
    const r = await runIt(def, root);
    const res = r.results[0]!;
    expect(res.status).toBe('failed');
    expect(res.failure).toMatchObject({ kind: 'step' });
    expect(res.message).toMatch(/timed out after 0.3 s waiting until the file appears: still empty/);
    expect(r.code).toBe(3);
  });

  it('a failing local command fails the step and names its argv', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rb-act-'));
    const def = defineRunbook({ id: 'l', description: 'l', params, steps: [step({ id: 'l', title: 'l', on: 'h1', plan: () => change('fence', [localCommand('fence', ['/bin/sh', '-c', 'echo nope >&2; exit 3'])]) })] });
    const r = await runIt(def, root);
    expect(r.results[0]!.status).toBe('failed');
    expect(r.results[0]!.message).toMatch(/fence failed \(exit code 3\).*\n.*nope/);
  });

  it('a detached job runs under its supervisor, announced once as [job] ID: COMMAND; its non-zero exit fails the step with its output', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rb-act-'));
    const id = `rb-unit-${process.pid}-${Date.now()}`;
    const out = join(root, 'job.out');
    const def = defineRunbook({
      id: 'j',
      description: 'j',
      params,
      steps: [
        step({ id: 'ok', title: 'ok', on: 'h1', verify: { converge: false }, plan: () => change('job', [detachedJob(`${id}-a`, sh`echo progress; echo done > ${out}`, { intervalMs: 50 }), sh`cat ${out}`, clearJobCommand(`${id}-a`)]) }),
        step({ id: 'bad', title: 'bad', on: 'h1', plan: () => change('job', [detachedJob(`${id}-b`, sh`echo broken-output; exit 3`, { intervalMs: 50 })]) }),
      ],
    });
    const r = await runIt(def, root);
    expect(readFileSync(out, 'utf8')).toBe('done\n');
    expect(r.results[0]!.status).toBe('changed');
    // One announcement for the job (its start and poll scripts are not actions), before the next exec.
    expect(r.actions.filter((a) => a.stepId === 'ok').map((a) => a.action.kind)).toEqual(['job', 'exec', 'exec']);
    expect(actionLines([detachedJob('x1', sh`pg_basebackup -D /d`)])).toEqual(['[job] x1: pg_basebackup -D /d']);
    const bad = r.results[1]!;
    expect(bad.status).toBe('failed');
    expect(bad.message).toMatch(/detached job .*-b .*failed with exit code 3:\nbroken-output/);
    expect(r.code).toBe(3);
  });

  it('followUp facts are read after gather, from what it found, and merged into the facts the plan sees', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rb-act-'));
    writeFileSync(join(root, 'which'), 'b\n');
    writeFileSync(join(root, 'b'), 'from b\n');
    const read = (name: string, file: string) => fact({ name, command: sh`cat ${file}`, parse: (x) => x.stdout.trim() });
    let seen: unknown;
    const def = defineRunbook({
      id: 'f',
      description: 'f',
      params,
      steps: [
        step<{ which: string; content?: string }>({
          id: 'f',
          title: 'f',
          on: 'h1',
          gather: () => ({ which: read('which', join(root, 'which')) }),
          followUp: (f) => ({ content: read('content', join(root, f.which)) }),
          plan: (f) => ((seen = f), noop('seen')),
        }),
      ],
    });
    const r = await runIt(def, root);
    expect(r.code).toBe(0);
    expect(seen).toEqual({ which: 'b', content: 'from b' });
  });

  it('plan shows the same actions the run announces', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rb-act-'));
    const def = defineRunbook({
      id: 'p',
      description: 'p',
      params,
      steps: [step({ id: 's', title: 's', on: 'h1', plan: (_f, c) => change('two', [sh`touch ${join(c.params.root, 'x')}`, execOn('h2', sh`true`), waitUntil('x exists', lineCount(join(root, 'x')), () => true, { timeoutMs: 1000 })]) })],
    });
    const engine = localEngine([view('h1'), view('h2')], { root }, { checkMode: true });
    const plans = await planHosts(engine, def);
    const planned = plans.get('h1')![0]!;
    expect(planned.mark).toBe('will-change');
    const ran = await runIt(def, root);
    expect(ran.actions.map((a) => a.action)).toEqual(planned.actions);
    expect(formatPlan(plans, false)).toContain(`      $ [on h2] true\n`);
  });
});

describe('probes and checks', () => {
  const checkBook = (root: string, withProbe: boolean) =>
    defineRunbook({
      id: 'c',
      description: 'c',
      params,
      steps: [
        step({ id: 'guard', title: 'guard', on: 'h1', plan: () => noop('fine') }),
        defineCheck<P, { n: number; w?: string }>({
          id: 'enough-lines',
          title: 'the file has 2 lines',
          on: 'h1',
          name: 'the file has 2 lines',
          intervalMs: 50,
          timeoutMs: 1500, // room for 2+ polls on a loaded machine
          gather: () => ({
            n: lineCount(join(root, 'f')),
            ...(withProbe ? { w: probe({ name: 'write', command: sh`echo probe >> ${join(root, 'probe.log')}`, parse: (r) => r.stdout }) } : {}),
          }),
          holds: (f) => (f.n >= 2 ? { ok: `${f.n} lines` } : `only ${f.n} lines`),
        }),
      ],
    });

  it('a check that holds is ok with what it saw; one that does not is failed, kind verify, exit 4', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rb-chk-'));
    writeFileSync(join(root, 'f'), 'a\nb\n');
    const ok = await runIt(checkBook(root, false), root);
    expect(ok.results[1]).toMatchObject({ status: 'ok', message: '2 lines' });
    writeFileSync(join(root, 'f'), 'a\n');
    const bad = await runIt(checkBook(root, false), root);
    expect(bad.results[1]).toMatchObject({ status: 'failed', failure: { kind: 'verify', message: 'verification failed: the file has 2 lines: only 1 lines' } });
    expect(bad.code).toBe(4);
  });

  it('a check with a probe is not run in --check: "not verified in check mode", its own recap column, exit unchanged', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rb-chk-'));
    writeFileSync(join(root, 'f'), 'a\n');
    const r = await runIt(checkBook(root, true), root, { checkMode: true });
    expect(r.results[1]).toMatchObject({ status: 'unverified', message: 'not verified in check mode: the file has 2 lines' });
    expect(() => readFileSync(join(root, 'probe.log'))).toThrow();
    expect(r.code).toBe(0);
    expect(recap(r.results, ['h1'])[0]).toMatchObject({ ok: 1, unverified: 1 });
    expect(recapTable(recap(r.results, ['h1']), 0)).toMatch(/h1 +ok=1 .*not-verified=1 failed=0/);
    // Outside --check the probe runs on every poll (never cached): the file it appends to grows
    // one line per poll until the check (2 lines) holds.
    const grows = defineRunbook({
      id: 'g',
      description: 'g',
      params,
      steps: [
        defineCheck<P, { n: number; w: string }>({
          id: 'grows',
          title: 'grows',
          on: 'h1',
          name: 'probe.log has 2 lines',
          intervalMs: 20,
          timeoutMs: 20_000,
          gather: () => ({ n: lineCount(join(root, 'probe.log')), w: probe({ name: 'write', command: sh`echo probe >> ${join(root, 'probe.log')}`, parse: (x) => x.stdout }) }),
          holds: (f) => (f.n >= 2 ? { ok: `${f.n} lines` } : `${f.n} lines`),
        }),
      ],
    });
    const applied = await runIt(grows, root);
    expect(applied.results[0]).toMatchObject({ status: 'ok', message: '2 lines' });
  });

  it('in --check, a read-only check failing after a pending change is "not verified", not a failure', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rb-chk-'));
    const def = defineRunbook({
      id: 'c2',
      description: 'c2',
      params,
      steps: [step({ id: 'write', title: 'w', on: 'h1', verify: { converge: false }, plan: () => change('two lines', [sh`printf 'a\\nb\\n' > ${join(root, 'f')}`]) }), ...checkBook(root, false).steps.slice(1)],
    });
    const r = await runIt(def, root, { checkMode: true });
    expect(r.results[1]!.status).toBe('unverified');
    expect(r.results[1]!.message).toMatch(/not verified in check mode: .*earlier steps would change \(write@h1/);
    expect(r.code).toBe(7);
    const applied = await runIt(def, root);
    expect(applied.results.map((x) => x.status)).toEqual(['changed', 'ok']);
  });

  it('verify.checks on a step: polled after apply; failure is kind verify; a guard stays blocked (exit 8)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rb-chk-'));
    const f = join(root, 'f');
    const def = (lines: number) =>
      defineRunbook({
        id: 'v',
        description: 'v',
        params,
        steps: [
          step({
            id: 'w',
            title: 'w',
            on: 'h1',
            plan: () => change('write', [sh`seq ${lines} > ${f}`]),
            verify: { converge: false, checks: () => [{ name: 'three lines', intervalMs: 50, timeoutMs: 200, gather: () => ({ n: lineCount(f) }), holds: (x: { n: number }) => (x.n === 3 ? true : `${x.n} lines`) }] },
          }),
        ],
      });
    expect((await runIt(def(3), root)).code).toBe(0);
    const bad = await runIt(def(1), root);
    expect(bad.results[0]).toMatchObject({ status: 'failed', failure: { kind: 'verify', message: 'verification failed: three lines: 1 lines' } });
    expect(bad.results[0]!.actions!.map((a) => a.text)).toEqual([`seq 1 > ${f}`]);
    expect(bad.code).toBe(4);
    const guard = defineRunbook({ id: 'g', description: 'g', params, steps: [step({ id: 'g', title: 'g', on: 'h1', plan: () => blocked('two primaries') })] });
    expect((await runIt(guard, root)).code).toBe(8);
  });
});
