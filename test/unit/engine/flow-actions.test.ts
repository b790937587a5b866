/**
 * The actions that shape a plan's flow (src/engine/actions.ts): choose (a decision on saved outputs
 * or a fact), guarded (recovery actions), done / fail, a wait that sees saved outputs; their one
 * rendering; and followsPlan (a run's actions are one path through the plan). Against a fake
 * ActionEnv: pure and fast.
 */
import { describe, expect, it } from 'vitest';
import { type Action, type ActionView, actionLines, branch, choose, chooseOn, done, exec, execOn, fail, followsPlan, guarded, later, viewAction, waitUntil } from '../../../src/engine/actions.js';
import { runActions, type ActionEnv } from '../../../src/engine/interpreter.js';
import { fact, onHost } from '../../../src/engine/define.js';
import { secret, sh } from '../../../src/index.js';
import type { ExecResult } from '../../../src/transport/types.js';

/** A fake engine: each command's result by its text (default: exit 0, no output); everything announced is kept. */
function fakeEnv(results: Record<string, Partial<ExecResult>> = {}, facts: Record<string, unknown> = {}) {
  const announced: ActionView[] = [];
  const sent: string[] = [];
  const log: string[] = [];
  const env: ActionEnv = {
    async exec(target, command, options, view) {
      announced.push(view);
      const text = `${target ? `${target}: ` : ''}${command.toString()}`;
      sent.push(text);
      const r: ExecResult = { host: target ?? 'h1', command: text, exitCode: 0, stdout: '', stderr: '', durationMs: 0, timedOut: false, ...results[text] };
      if (options.check && r.exitCode !== 0) throw new Error(`command failed (exit ${r.exitCode}): ${text}`);
      return r;
    },
    started: (view) => void announced.push(view),
    async read(src) {
      const name = 'onHost' in src ? `${src.onHost}:${src.fact.name}` : src.name;
      const v = facts[name];
      return (typeof v === 'function' ? (v as () => unknown)() : v) as never;
    },
    log: (l) => void log.push(l),
    signal: new AbortController().signal,
    checkInterrupt: () => {},
  };
  return { env, announced, sent, log };
}

const answers = fact({ name: 'peer', command: sh`psql -c 'SELECT 1'`, parse: (r) => r.exitCode === 0 });

/** The rejoin's shape, small: a dry run decides between carrying on, an error and leaving the node for another step. */
const dryRunPlan = (): Action[] => [
  exec(sh`rewind --dry-run`, { mayFail: true, saveAs: 'dry' }),
  choose('what the dry run says', (o) => (o.dry!.exitCode === 0 ? (/no rewind/.test(o.dry!.stdout) ? 'none' : 'rewind') : /connect/.test(o.dry!.stdout) ? { branch: 'source', saw: o.dry!.stdout.trim() } : 'impossible'), [
    branch('none', '"no rewind required"'),
    branch('rewind', 'the servers diverged', [exec(sh`rewind`)]),
    branch('source', 'it cannot reach the source', [fail('the source cannot be used: <its error>', (saw) => `the source cannot be used: ${saw}`)]),
    branch('impossible', 'otherwise', [done('cannot rewind; the clone step re-clones')]),
  ]),
  exec(sh`start`),
];

describe('choose, done and fail', () => {
  it('runs the branch pick names, then the actions after the choose; the other alternatives are not run', async () => {
    const f = fakeEnv({ 'rewind --dry-run': { stdout: 'servers diverged at 0/5000000 on timeline 1\n' } });
    await runActions(f.env, dryRunPlan());
    expect(f.sent).toEqual(['rewind --dry-run', 'rewind', 'start']);
    expect(f.announced.map((v) => v.kind)).toEqual(['exec', 'choose', 'exec', 'exec']);
    // Announced without its alternatives (the plan has them), and the decision is logged.
    expect(f.announced[1]).toEqual({ kind: 'choose', text: 'what the dry run says' });
    expect(f.log).toContain('what the dry run says: the servers diverged');
  });

  it('a branch without actions carries on', async () => {
    const f = fakeEnv({ 'rewind --dry-run': { stdout: 'no rewind required' } });
    await runActions(f.env, dryRunPlan());
    expect(f.sent).toEqual(['rewind --dry-run', 'start']);
  });

  it('done ends the actions there, and the step is not failed', async () => {
    const f = fakeEnv({ 'rewind --dry-run': { exitCode: 1, stdout: 'needs wal_log_hints' } });
    await expect(runActions(f.env, dryRunPlan())).resolves.toBeUndefined();
    expect(f.sent).toEqual(['rewind --dry-run']);
    expect(f.announced.at(-1)).toEqual({ kind: 'done', text: 'cannot rewind; the clone step re-clones' });
  });

  it('fail fails the step with the message built from what the choose saw; nothing after it runs', async () => {
    const f = fakeEnv({ 'rewind --dry-run': { exitCode: 1, stdout: 'could not connect to server: timeout expired\n' } });
    await expect(runActions(f.env, dryRunPlan())).rejects.toThrow('the source cannot be used: could not connect to server: timeout expired');
    expect(f.sent).toEqual(['rewind --dry-run']);
  });

  it('chooseOn reads its fact when reached (on another host with onHost); an unknown branch name is an error naming the alternatives', async () => {
    const f = fakeEnv({}, { 'pg2:peer': false });
    const plan = [chooseOn('pg2 answers', onHost('pg2', answers), (v) => (v ? 'yes' : 'no'), [branch('yes', 'it answers'), branch('no', 'it does not', [fail('pg2 cannot be used')])])];
    await expect(runActions(f.env, plan)).rejects.toThrow('pg2 cannot be used');
    const bad = [choose('x', () => 'maybe', [branch('yes', 'y'), branch('no', 'n')])];
    await expect(runActions(fakeEnv().env, bad)).rejects.toThrow('x: no alternative named "maybe" (have: yes, no)');
  });
});

describe('guarded: recovery actions', () => {
  const stopThenWait = (replayed: () => boolean): Action[] => [
    execOn('pg2', sh`stop`),
    guarded(
      'pg1 takes over only once it replayed pg2',
      [
        execOn('pg2', sh`controldata`, { saveAs: 'control' }),
        waitUntil('pg1 replayed past <checkpoint>', fact({ name: 'replay', command: sh`replay`, parse: (r) => r.stdout }), (v, o) => (replayed() && v >= o.control!.stdout ? true : `replayed ${v}, checkpoint ${o.control!.stdout}`), { intervalMs: 1, timeoutMs: 20 }),
      ],
      [execOn('pg2', sh`start`)],
      'pg2 restarted as the primary; nothing lost',
    ),
    exec(sh`promote`),
  ];

  it('the group succeeds: no recovery; the wait saw the saved output', async () => {
    const f = fakeEnv({ 'pg2: controldata': { stdout: '0/5' } }, { replay: '0/6' });
    await runActions(f.env, stopThenWait(() => true));
    expect(f.sent).toEqual(['pg2: stop', 'pg2: controldata', 'promote']);
  });

  it('one of its actions fails: the recovery runs, the step fails with the original error and what the recovery did, and nothing after the group runs', async () => {
    const f = fakeEnv({ 'pg2: controldata': { stdout: '0/5' } }, { replay: '0/4' });
    await expect(runActions(f.env, stopThenWait(() => true))).rejects.toThrow('timed out after 0.02 s waiting until pg1 replayed past <checkpoint>: replayed 0/4, checkpoint 0/5: pg2 restarted as the primary; nothing lost');
    expect(f.sent).toEqual(['pg2: stop', 'pg2: controldata', 'pg2: start']);
  });

  it('a done inside the recovery says what it did instead; a failing recovery adds its own error', async () => {
    const plan = (recovery: Action[]) => [guarded('the promote', [exec(sh`promote`)], recovery, 'undone')];
    const f = fakeEnv({ promote: { exitCode: 1 } }, { writable: true });
    const writableAfterAll = chooseOn('writable after all', fact({ name: 'writable', command: sh`w`, parse: () => true }), (w) => (w ? 'yes' : 'no'), [branch('yes', 'it is', [done('it is writable after all')]), branch('no', 'otherwise')]);
    await expect(runActions(f.env, plan([writableAfterAll, exec(sh`undo`)]))).rejects.toThrow(/command failed \(exit 1\): promote: it is writable after all$/);
    expect(f.sent).toEqual(['promote']);
    const g = fakeEnv({ promote: { exitCode: 1 }, undo: { exitCode: 2 } });
    await expect(runActions(g.env, plan([exec(sh`undo`)]))).rejects.toThrow('command failed (exit 1): promote; the recovery failed too: command failed (exit 2): undo');
  });

  it('a done inside the group ends the actions (success), without the recovery', async () => {
    const f = fakeEnv();
    await runActions(f.env, [guarded('g', [done('nothing to do')], [exec(sh`undo`)], 'undone'), exec(sh`after`)]);
    expect(f.sent).toEqual([]);
  });
});

describe('rendering: each alternative in place, the recovery under its group, secrets masked', () => {
  it('one text for plan, confirmation, report and journal', () => {
    const pw = secret('flow-pw-123', 'pw');
    const lines = actionLines([
      guarded('the switch', [execOn('pg2', sh`stop`), choose('what it says', () => 'a', [branch('a', 'it is clean'), branch('b', 'otherwise', [fail('unclean, see x')])])], [execOn('pg2', sh`start --password ${pw}`)], 'restarted'),
      exec(later('mv /d <stdout of: stamp>', () => sh`true`)),
    ]);
    expect(lines[0]!.split('\n')).toEqual([
      '[guarded] the switch:',
      '  $ [on pg2] stop',
      '  $ [choose] what it says:',
      '      if it is clean:',
      '        (carry on)',
      '      otherwise:',
      '        $ [fail] unclean, see x',
      '  if any of these fails:',
      '    $ [on pg2] start --password ***',
      '    then the step fails: restarted',
    ]);
    expect(lines[1]).toBe('mv /d <stdout of: stamp>');
    expect(JSON.stringify(lines)).not.toContain('flow-pw-123');
    // A choose on a fact names what it reads.
    expect(viewAction(chooseOn('pg2 answers', onHost('pg2', answers), () => 'x', [])).text).toBe("pg2 answers (reads pg2: psql -c 'SELECT 1')");
  });
});

describe('followsPlan: a run is one path through its plan', () => {
  const plan = dryRunPlan().map(viewAction);
  const ranWith = async (results: Record<string, Partial<ExecResult>>) => {
    const f = fakeEnv(results);
    await runActions(f.env, dryRunPlan()).catch(() => undefined);
    return f.announced;
  };

  it('each branch taken is a complete path; the alternatives not taken are not missing', async () => {
    for (const stdout of ['no rewind required', 'servers diverged']) expect(followsPlan(plan, await ranWith({ 'rewind --dry-run': { stdout } }))).toEqual({ explained: stdout.startsWith('no') ? 3 : 4, complete: true });
    expect(followsPlan(plan, await ranWith({ 'rewind --dry-run': { exitCode: 1, stdout: 'x' } }))).toEqual({ explained: 3, complete: true });
    // A fail ends the path, but the step failed: explained, not complete.
    expect(followsPlan(plan, await ranWith({ 'rewind --dry-run': { exitCode: 1, stdout: 'could not connect' } }))).toEqual({ explained: 3, complete: false });
  });

  it('an action sent that the plan does not show, or one of two branches mixed in, is not explained', async () => {
    const ran = await ranWith({ 'rewind --dry-run': { stdout: 'no rewind required' } });
    const extra = [...ran.slice(0, 2), { kind: 'exec' as const, text: 'rm -rf /data' }, ...ran.slice(2)];
    expect(followsPlan(plan, extra)).toEqual({ explained: 2, complete: false });
    // The rewind of one branch and the done of another: not one path.
    const mixed = [...ran.slice(0, 2), { kind: 'exec' as const, text: 'rewind' }, { kind: 'done' as const, text: 'cannot rewind; the clone step re-clones' }];
    expect(followsPlan(plan, mixed).explained).toBe(3);
    // Stopping early (a failed command) is explained but not complete.
    expect(followsPlan(plan, ran.slice(0, 1))).toEqual({ explained: 1, complete: false });
  });

  it('a recovery may follow any action of its group, and only then', async () => {
    const g = [guarded('g', [exec(sh`a`), exec(sh`b`)], [exec(sh`undo`)], 'undone'), exec(sh`c`)].map(viewAction);
    const v = (t: string): ActionView => ({ kind: 'exec', text: t });
    const head: ActionView = { kind: 'guarded', text: 'g', note: 'undone' };
    expect(followsPlan(g, [head, v('a'), v('b'), v('c')])).toEqual({ explained: 4, complete: true });
    expect(followsPlan(g, [head, v('a'), v('undo')])).toEqual({ explained: 3, complete: false });
    expect(followsPlan(g, [head, v('a'), v('b'), v('undo')])).toEqual({ explained: 4, complete: false });
    expect(followsPlan(g, [head, v('a'), v('b'), v('c'), v('undo')]).explained).toBe(4);
  });
});
