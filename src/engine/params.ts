/**
 * Param values from the command line (-e key=value, -e @file.yml, --secret NAME=env:VAR|file:PATH)
 * and the inventory (all-group vars, or host vars all selected hosts agree on). Every problem is
 * collected and reported at once, as bad input, before any host is touched.
 */
import { readFileSync } from 'node:fs';
import { readTextFile } from '../core/text-file.js';
import { LineCounter, parse as parseYaml, parseDocument } from 'yaml';
import { firstDuplicateKey } from '../inventory/yaml-file.js';
import { BadInputError } from '../errors.js';
import { shlexSplit } from '../inventory/shlex.js';
import { Secret, isSecret } from '../shell/secret.js';
import type { ParamSpec, ParamSpecs } from './types.js';

export interface ParamSources {
  /** Raw -e arguments, in order (later wins). */
  extraVars?: string[];
  /** Raw --secret arguments. */
  secrets?: string[];
  /** Vars of the inventory's `all` group. */
  groupVars?: Record<string, unknown>;
  /** Merged vars of each selected host. */
  hostVars?: Array<Record<string, unknown>>;
  /** Values recorded by an earlier run (resume), lowest priority before defaults. */
  previous?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
}

/**
 * Parse -e arguments into one map, as ansible-playbook does: `@file` (YAML or JSON), a JSON/YAML
 * mapping (`{"a": 1}`), or `key=value` pairs split like a shell line (`'a=1 b="two words"'`).
 */
/** `-e @file`: UTF-8, YAML (JSON is YAML), duplicate keys refused in one pass; file:line in errors. */
function parseExtraVarsFile(file: string): unknown {
  const text = readTextFile(file);
  const lines = new LineCounter();
  const doc = parseDocument(text, { uniqueKeys: false, lineCounter: lines });
  const problem = doc.errors[0];
  if (problem) {
    const at = problem.linePos?.[0];
    throw new BadInputError(`invalid YAML: ${problem.message.split('\n')[0]}`, { file, ...(at ? { line: at.line, col: at.col } : {}) });
  }
  const dup = firstDuplicateKey(doc) as { range?: [number] } | undefined;
  if (dup) throw new BadInputError(`duplicate key ${JSON.stringify(String((dup as { value?: unknown }).value ?? dup))} (each key may appear once)`, { file, ...(dup.range ? lines.linePos(dup.range[0]) : {}) });
  return doc.toJS({ maxAliasCount: 1000 });
}

export function parseExtraVars(args: string[], errors: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const mapping = (arg: string, doc: unknown): void => {
    if (doc === null || doc === undefined) return;
    if (typeof doc !== 'object' || Array.isArray(doc)) errors.push(`-e ${arg}: must be a mapping of param names to values`);
    else Object.assign(out, doc);
  };
  for (const arg of args) {
    if (arg.startsWith('@')) {
      const file = arg.slice(1);
      try {
        mapping(arg, parseExtraVarsFile(file));
      } catch (e) {
        errors.push(`-e ${arg}: ${(e as Error).message}`);
      }
      continue;
    }
    if (/^\s*[[{]/.test(arg)) {
      try {
        mapping(arg, parseYaml(arg));
      } catch (e) {
        errors.push(`-e ${arg}: not valid JSON/YAML: ${(e as Error).message.split('\n')[0]}`);
      }
      continue;
    }
    let words: string[];
    try {
      words = shlexSplit(arg).map((t) => t.value);
    } catch (e) {
      errors.push(`-e ${arg}: ${(e as Error).message}`);
      continue;
    }
    for (const word of words) {
      const eq = word.indexOf('=');
      if (eq <= 0) {
        errors.push(`-e ${arg}: expected key=value pairs, JSON or @file.yml, got "${word}"`);
        continue;
      }
      out[word.slice(0, eq)] = word.slice(eq + 1);
    }
  }
  return out;
}

/** Parse --secret NAME=env:VAR | NAME=file:PATH into Secret values (file: trailing newline dropped). */
export function parseSecretArgs(args: string[], errors: string[], env: NodeJS.ProcessEnv = process.env): Record<string, Secret> {
  const out: Record<string, Secret> = {};
  for (const arg of args) {
    const m = /^([A-Za-z_][\w.-]*)=(env|file):(.+)$/.exec(arg);
    if (!m) {
      errors.push(`--secret ${arg.split('=')[0]}: expected NAME=env:VAR or NAME=file:PATH`);
      continue;
    }
    const [, name, kind, where] = m as unknown as [string, string, 'env' | 'file', string];
    if (kind === 'env') {
      const v = env[where];
      if (v === undefined || v === '') errors.push(`--secret ${name}: environment variable ${where} is not set`);
      else out[name] = new Secret(v, name);
    } else {
      try {
        out[name] = new Secret(readFileSync(where, 'utf8').replace(/\r?\n$/, ''), name);
      } catch (e) {
        errors.push(`--secret ${name}: cannot read ${where}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    }
  }
  return out;
}

/** Convert one raw value to the spec's type; a string is an error message. */
export function coerceParam(name: string, spec: ParamSpec<unknown>, raw: unknown): { value: unknown } | string {
  switch (spec.type) {
    case 'secret':
      if (isSecret(raw)) return { value: raw };
      return `param ${name} is a secret: give it with --secret ${name}=env:VAR or --secret ${name}=file:PATH, not -e`;
    case 'string': {
      if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean')
        return `param ${name}: expected a string, got ${describe(raw)}`;
      const s = String(raw);
      if (spec.choices && !spec.choices.includes(s)) return `param ${name}: ${JSON.stringify(s)} is not one of ${spec.choices.join(', ')}`;
      return { value: s };
    }
    case 'number': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
      if (!Number.isFinite(n)) return `param ${name}: expected a number, got ${describe(raw)}`;
      return { value: n };
    }
    case 'boolean': {
      if (typeof raw === 'boolean') return { value: raw };
      const s = String(raw).toLowerCase();
      if (['true', 'yes', '1', 'on'].includes(s)) return { value: true };
      if (['false', 'no', '0', 'off'].includes(s)) return { value: false };
      return `param ${name}: expected true or false, got ${describe(raw)}`;
    }
    case 'list': {
      if (Array.isArray(raw) && raw.every((x) => ['string', 'number'].includes(typeof x))) return { value: raw.map(String) };
      if (typeof raw === 'string') return { value: raw === '' ? [] : raw.split(',').map((s) => s.trim()) };
      return `param ${name}: expected a list (a,b,c), got ${describe(raw)}`;
    }
  }
}

function describe(v: unknown): string {
  if (isSecret(v)) return 'a secret';
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  return typeof v === 'string' ? JSON.stringify(v) : typeof v;
}

/** Inventory value of a param: the all group's, else the one value every selected host that has it agrees on. */
function fromInventory(name: string, sources: ParamSources): { value: unknown } | string | undefined {
  const hostValues = (sources.hostVars ?? []).filter((v) => name in v).map((v) => v[name]);
  if (hostValues.length > 0) {
    const first = JSON.stringify(hostValues[0]);
    const same = hostValues.every((v) => (isSecret(v) && isSecret(hostValues[0]) ? v.reveal() === (hostValues[0] as Secret).reveal() : JSON.stringify(v) === first));
    if (!same) return `param ${name}: the selected hosts have different inventory values; give it with -e ${name}=…`;
    return { value: hostValues[0] };
  }
  if (sources.groupVars && name in sources.groupVars) return { value: sources.groupVars[name] };
  return undefined;
}

/** Resolve every param of a runbook or throw one BadInputError listing every problem. */
export function resolveParams(specs: ParamSpecs, sources: ParamSources): Record<string, unknown> {
  const errors: string[] = [];
  const extra = parseExtraVars(sources.extraVars ?? [], errors);
  const secrets = parseSecretArgs(sources.secrets ?? [], errors, sources.env);
  for (const key of Object.keys(extra)) if (!(key in specs)) errors.push(`-e ${key}: this runbook has no param ${key} (params: ${Object.keys(specs).join(', ') || 'none'})`);
  for (const key of Object.keys(secrets)) {
    if (!(key in specs)) errors.push(`--secret ${key}: this runbook has no param ${key}`);
    else if (specs[key]!.type !== 'secret') errors.push(`--secret ${key}: param ${key} is a ${specs[key]!.type}, not a secret`);
  }
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs)) {
    let raw: { value: unknown } | string | undefined;
    if (name in secrets) raw = { value: secrets[name] };
    else if (name in extra) raw = { value: extra[name] };
    else raw = fromInventory(name, sources);
    if (raw === undefined && sources.previous && name in sources.previous && spec.type !== 'secret') raw = { value: sources.previous[name] };
    if (typeof raw === 'string') {
      errors.push(raw);
      continue;
    }
    if (raw === undefined) {
      if (sources.secrets?.some((a) => a.startsWith(`${name}=`))) continue; // its --secret already failed
      if (spec.default !== undefined) values[name] = spec.default;
      else if (spec.required) errors.push(`param ${name} is required (${spec.description})${spec.type === 'secret' ? `: --secret ${name}=env:VAR` : `: -e ${name}=…`}`);
      else values[name] = undefined;
      continue;
    }
    const coerced = coerceParam(name, spec, raw.value);
    if (typeof coerced === 'string') errors.push(coerced);
    else values[name] = coerced.value;
  }
  for (const [name, v] of Object.entries(values)) {
    const why = uncarriable(v);
    if (why) errors.push(`param ${name}: ${why}`);
  }
  if (errors.length > 0) throw new BadInputError(`invalid params:\n  - ${errors.join('\n  - ')}`);
  return values;
}

/**
 * Why no command can carry this value, if so: a NUL byte anywhere (no argv, no shell variable holds
 * one), a line break in a secret (secrets travel as one stdin line each). Found before any host.
 */
export function uncarriable(v: unknown, depth = 0): string | undefined {
  if (isSecret(v)) {
    const raw = v.reveal();
    if (raw.includes('\0')) return 'the secret holds a NUL byte';
    if (/[\r\n]/.test(raw)) return 'the secret holds a line break (a secret is one line)';
    return undefined;
  }
  if (typeof v === 'string') return v.includes('\0') ? `holds a NUL byte at character ${v.indexOf('\0')}` : undefined;
  if (depth > 50 || v === null || typeof v !== 'object') return undefined;
  for (const [k, x] of Array.isArray(v) ? v.entries() : Object.entries(v)) {
    const why = uncarriable(x, depth + 1) ?? (typeof k === 'string' && k.includes('\0') ? 'a key holds a NUL byte' : undefined);
    if (why) return Array.isArray(v) ? `[${k}]: ${why}` : `${k}: ${why}`;
  }
  return undefined;
}
