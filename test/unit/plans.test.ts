/**
 * Plan tests as data (pyinfra's operation tests): every test/fixtures/plans/**\/*.json is one case
 * `{runbook, step, host, params, inventory, state, facts, expect}`; the step of a built-in runbook
 * plans from the fixture's facts and must give exactly the expected actions (or noop / blocked
 * reason, or for a check its verdict). Format: docs/actions.md §3.
 */
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { actionLines } from '../../src/engine/actions.js';
import { verdictOf } from '../../src/engine/checks.js';
import { isGroup } from '../../src/engine/gather.js';
import { allSteps } from '../../src/engine/scheduler.js';
import type { Fact, FactInput, FactMap, FactSource, HostView, RunContext, RunbookDef, StepContext } from '../../src/engine/types.js';
import { Hidden } from '../../src/modules/postgres/facts.js';
import { parseRawLayout } from '../../src/modules/postgres/layout-facts.js';
import { resolveLayout } from '../../src/modules/postgres/layout.js';
import { Secret } from '../../src/shell/secret.js';

const root = new URL('../fixtures/plans/', import.meta.url).pathname;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return f === 'inventories' || f === 'layouts' ? [] : files(p);
    return f.endsWith('.json') ? [p] : [];
  });
}

/** `{"$secret": v}`, `{"$hidden": v}`, `{"$layout": "debian-15"}` (layouts/<name>.txt, the probe's output). */
function revive(_k: string, v: unknown): unknown {
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    if (typeof o.$secret === 'string') return new Secret(o.$secret, 'fixture');
    if (typeof o.$hidden === 'string') return new Hidden(o.$hidden);
    if (typeof o.$layout === 'string') {
      const l = resolveLayout(parseRawLayout(readFileSync(join(root, 'layouts', `${o.$layout}.txt`), 'utf8')));
      if (typeof l === 'string') throw new Error(`layout ${o.$layout}: ${l}`);
      return l;
    }
  }
  return v;
}

interface Fixture {
  runbook: string;
  step: string;
  host: string;
  params?: Record<string, unknown>;
  inventory: string | { hosts: Record<string, { groups?: string[]; vars?: Record<string, unknown> }> };
  state?: Record<string, unknown>;
  facts: Record<string, unknown>;
  now?: string;
  checkMode?: boolean;
  expect:
    | { kind: 'noop' | 'blocked'; reason: string }
    /** One entry per action: its line, or its lines (a command with stdin spans several). */
    | { kind: 'change'; summary?: string; actions: Array<string | string[]> }
    | { kind: 'skipped'; reason: string }
    | { kind: 'holds'; message?: string }
    | { kind: 'fails'; problems: string[] };
}

/** A fact's value from the fixture: as given, or `{"$raw": {stdout, stderr, exitCode}}` through its real parse. */
function valueOf(src: FactSource<unknown>, given: unknown, where: string): unknown {
  if (given === undefined) throw new Error(`fixture has no fact ${where}`);
  const raw = given && typeof given === 'object' ? (given as { $raw?: { stdout?: string; stderr?: string; exitCode?: number } }).$raw : undefined;
  if (!raw) return given;
  const f: Fact<unknown> = 'onHost' in src ? src.fact : src;
  return f.parse({ host: 'fixture', command: f.command.toString(), exitCode: raw.exitCode ?? 0, stdout: raw.stdout ?? '', stderr: raw.stderr ?? '', durationMs: 0, timedOut: false });
}

function factsFor(map: FactMap<unknown>, given: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, src] of Object.entries(map) as Array<[string, FactInput<unknown>]>) {
    if (isGroup(src)) {
      const g = (given[k] ?? {}) as Record<string, unknown>;
      out[k] = Object.fromEntries(Object.entries(src.each).map(([sub, s]) => [sub, valueOf(s as FactSource<unknown>, g[sub], `${k}.${sub}`)]));
    } else out[k] = valueOf(src as FactSource<unknown>, given[k], k);
  }
  return out;
}

async function plan(fx: Fixture) {
  const mod = (await import(`../../runbooks/${fx.runbook}.ts`)) as { default: RunbookDef<any, any> };
  const def = mod.default;
  const step = [...allSteps(def), ...(def.handlers ?? [])].find((s) => s.id === fx.step);
  if (!step) throw new Error(`${fx.runbook} has no step ${fx.step}`);
  const inv = typeof fx.inventory === 'string' ? (JSON.parse(readFileSync(join(root, 'inventories', `${fx.inventory}.json`), 'utf8'), revive) as Exclude<Fixture['inventory'], string>) : fx.inventory;
  const hosts: HostView[] = Object.entries(inv.hosts).map(([name, h]) => ({
    name,
    groups: ['all', ...(h.groups ?? [])],
    vars: h.vars ?? {},
    address: typeof h.vars?.ansible_host === 'string' ? h.vars.ansible_host : name,
  }));
  const params: Record<string, unknown> = Object.fromEntries(Object.entries(def.params).map(([k, spec]) => [k, fx.params?.[k] ?? (spec as { default?: unknown }).default]));
  const run: RunContext<any> = {
    params,
    hosts,
    checkMode: fx.checkMode ?? false,
    now: () => new Date(fx.now ?? '2026-01-01T00:00:00.000Z'),
    select: (p) => hosts.filter((h) => p === 'all' || h.name === p || h.groups.includes(p)),
  };
  const host = hosts.find((h) => h.name === fx.host);
  if (!host) throw new Error(`no host ${fx.host} in the fixture's inventory`);
  const ctx: StepContext<any> = { ...run, host, state: { ...(fx.state ?? {}) } };
  if (step.when) {
    const w = step.when(ctx);
    if (w !== true) return { kind: 'skipped' as const, reason: w };
  }
  if (step.check) {
    const c = step.check;
    const prepared = c.prepare ? factsFor(c.prepare(ctx) as FactMap<unknown>, fx.facts) : {};
    const facts = factsFor(c.gather(ctx, prepared) as FactMap<unknown>, fx.facts);
    return { check: verdictOf(c.name, c.holds(facts, ctx, prepared)) };
  }
  if (step.operation) {
    const op = step.operation(ctx);
    return { plan: op.plan(factsFor(op.facts as FactMap<unknown>, fx.facts)) };
  }
  const facts = step.gather ? factsFor(step.gather(ctx) as FactMap<unknown>, fx.facts) : {};
  // Follow-up facts (read after gather, from what it found) come from the same fixture facts.
  const more = step.followUp?.(facts, ctx) as FactMap<unknown> | undefined;
  if (more) Object.assign(facts, factsFor(more, fx.facts));
  return { plan: step.plan!(facts, ctx) };
}

describe('plans from fixtures', () => {
  const all = files(root);
  it('there are fixtures', () => expect(all.length).toBeGreaterThan(0));
  for (const file of all) {
    it(relative(root, file), async () => {
      const fx = JSON.parse(readFileSync(file, 'utf8'), revive) as Fixture;
      const r = await plan(fx);
      const e = fx.expect;
      if ('kind' in r) {
        expect(e.kind).toBe('skipped');
        expect(r.reason).toContain((e as { reason: string }).reason);
        return;
      }
      if ('check' in r) {
        if (e.kind === 'holds') {
          expect(r.check).toMatchObject({ holds: true });
          if (e.message) expect((r.check as { message: string }).message).toContain(e.message);
        } else {
          expect(e.kind).toBe('fails');
          expect(r.check).toEqual({ holds: false, problems: (e as { problems: string[] }).problems });
        }
        return;
      }
      const p = r.plan;
      expect(p.kind).toBe(e.kind);
      if (p.kind === 'change' && e.kind === 'change') {
        if (e.summary) expect(p.summary).toContain(e.summary);
        const got = actionLines(p.actions).map((l) => (l.includes('\n') ? l.split('\n') : l));
        // RUNBOOK_FIXTURE_FILL=1 writes the actual actions into a fixture whose actions are ["FILL"] (review them!).
        if (process.env.RUNBOOK_FIXTURE_FILL === '1' && JSON.stringify(e.actions) === '["FILL"]') {
          const text = readFileSync(file, 'utf8');
          writeFileSync(file, text.replace(/"actions": \[\s*"FILL"\s*\]/, `"actions": ${JSON.stringify(got, null, 2).replace(/\n/g, '\n    ')}`));
          return;
        }
        expect(got).toEqual(e.actions);
      } else if (p.kind !== 'change' && (e.kind === 'noop' || e.kind === 'blocked')) expect(p.reason).toContain(e.reason);
    });
  }
});
