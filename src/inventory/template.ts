/**
 * Jinja2 in inventory values, rendered as Ansible renders them, lazily: a host's vars are a view
 * that renders a value when it is read (and the vars it refers to, recursively), so a var nobody
 * reads is never rendered and `inventory --list` shows what was written. Rendering is nunjucks
 * (Jinja-compatible) with Ansible's `lookup('env'|'file', …)` and a few of its plain filters; a
 * construct runbook does not have is an error naming the file, the var and the construct.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import nunjucks from 'nunjucks';
import { BadInputError, type SourcePosition } from '../errors.js';
import { typeIniValue } from './python-literal.js';
import { VaultValue } from './vault.js';

const TEMPLATE_MARK = /\{\{|\{%|\{#/;

/** A `!unsafe` string: never rendered (Ansible's AnsibleUnsafeText); reads as the plain string. */
export class UnsafeText {
  constructor(readonly text: string) {}
  toJSON(): string {
    return this.text;
  }
  toString(): string {
    return this.text;
  }
}

/** Does reading this value need rendering, decrypting or unwrapping? */
export function needsResolving(value: unknown): boolean {
  if (typeof value === 'string') return TEMPLATE_MARK.test(value);
  if (value instanceof VaultValue || value instanceof UnsafeText) return true;
  if (Array.isArray(value)) return value.some(needsResolving);
  if (value && typeof value === 'object') return Object.values(value).some(needsResolving);
  return false;
}

/** Ansible's plain filters runbook provides beside nunjucks' own (default, lower, join, int…). */
const ANSIBLE_FILTERS: Record<string, (...args: any[]) => unknown> = {
  d: (v: unknown, d: unknown = '', bool = false) => (v === undefined || (bool && !v) ? d : v),
  bool: (v: unknown) => (typeof v === 'boolean' ? v : ['yes', 'on', '1', 'true', 'y', 't'].includes(String(v).trim().toLowerCase())),
  mandatory: (v: unknown, msg?: string) => {
    if (v === undefined) throw new Error(msg ?? 'mandatory variable not defined');
    return v;
  },
  ternary: (v: unknown, yes: unknown, no: unknown) => (v ? yes : no),
  basename: (v: string) => basename(String(v)),
  dirname: (v: string) => dirname(String(v)),
  expanduser: (v: string) => String(v).replace(/^~(?=$|\/)/, homedir()),
  b64encode: (v: string) => Buffer.from(String(v), 'utf8').toString('base64'),
  b64decode: (v: string) => Buffer.from(String(v), 'base64').toString('utf8'),
  to_json: (v: unknown) => JSON.stringify(v),
  from_json: (v: string) => JSON.parse(String(v)) as unknown,
  regex_replace: (v: string, pattern: string, replacement = '') =>
    String(v).replace(new RegExp(pattern, 'g'), replacement.replace(/\\(\d)/g, '$$$1')),
  quote: (v: unknown) => `'${String(v).replace(/'/g, `'"'"'`)}'`,
};

let environment: nunjucks.Environment | undefined;
function env(): nunjucks.Environment {
  if (!environment) {
    nunjucks.installJinjaCompat(); // Python's str/list/dict methods: x.split(','), d.items()…
    environment = new nunjucks.Environment(null, { autoescape: false, throwOnUndefined: true });
    for (const [name, fn] of Object.entries(ANSIBLE_FILTERS)) environment.addFilter(name, fn);
  }
  return environment;
}

interface TemplateNode {
  fields?: string[];
  children?: TemplateNode[];
  value?: unknown;
  name?: TemplateNode;
  typename?: string;
  [field: string]: unknown;
}

/** Names a template refers to, and the filters it uses (found before rendering, so errors can name them). */
function scan(source: string): { names: Set<string>; filters: Set<string> } {
  const root = (nunjucks as unknown as { parser: { parse(s: string): TemplateNode } }).parser.parse(source);
  const nodes = (nunjucks as unknown as { nodes: Record<string, new () => TemplateNode> }).nodes;
  const names = new Set<string>();
  const filters = new Set<string>();
  const walk = (n: unknown): void => {
    if (!n || typeof n !== 'object') return;
    const node = n as TemplateNode;
    if (node instanceof nodes.Filter! && node.name) filters.add(String(node.name.value));
    else if (node instanceof nodes.Symbol!) names.add(String(node.value));
    for (const f of node.fields ?? []) {
      const v = node[f];
      if (Array.isArray(v)) v.forEach(walk);
      else walk(v);
    }
  };
  walk(root);
  return { names, filters };
}

/** What a template of one host can see. */
export interface TemplateScope {
  host: string;
  /** The host's merged vars as written. */
  raw: Record<string, unknown>;
  /** Where each var was defined: messages, and lookup('file') paths relative to that file. */
  origin(name: string): SourcePosition | undefined;
  /** Ansible's magic vars for this host: group_names, groups, hostvars, inventory_hostname… */
  magic: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
}

/** A var-name → value view that renders and decrypts each value when it is first read. */
export function lazyVars(scope: TemplateScope): Record<string, unknown> {
  const cache = new Map<string, unknown>();
  const rendering: string[] = [];
  const read = (name: string): unknown => {
    const value = scope.raw[name];
    if (!needsResolving(value)) return value;
    if (cache.has(name)) return cache.get(name);
    if (rendering.includes(name)) {
      throw new BadInputError(`${name}: template loop: ${[...rendering.slice(rendering.indexOf(name)), name].join(' → ')}`, scope.origin(name));
    }
    rendering.push(name);
    try {
      const out = resolveValue(value, name, scope, view);
      cache.set(name, out);
      return out;
    } finally {
      rendering.pop();
    }
  };
  const view: Record<string, unknown> = new Proxy(scope.raw, {
    get: (target, key) => (typeof key === 'string' && Object.hasOwn(target, key) ? read(key) : undefined),
    // Object.keys() asks for descriptors: answering with the raw one keeps listing keys lazy
    // (entries and spreads still read each value through get).
    set: () => false,
    deleteProperty: () => false,
  });
  return view;
}

function resolveValue(value: unknown, name: string, scope: TemplateScope, vars: Record<string, unknown>): unknown {
  if (value instanceof VaultValue) return value.reveal();
  if (value instanceof UnsafeText) return value.text;
  if (typeof value === 'string') return TEMPLATE_MARK.test(value) ? render(value, name, scope, vars) : value;
  if (Array.isArray(value)) return value.map((v) => resolveValue(v, name, scope, vars));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveValue(v, name, scope, vars)]));
  }
  return value;
}

const SUPPORTED_LOOKUPS = ['env', 'file'];

function render(source: string, name: string, scope: TemplateScope, vars: Record<string, unknown>): unknown {
  const where = scope.origin(name);
  // nunjucks wraps what a function throws in its own error: keep ours to rethrow it whole.
  let ours: BadInputError | undefined;
  const fail = (what: string): never => {
    ours = new BadInputError(`${name}: ${what} (in ${JSON.stringify(source)})`, where);
    throw ours;
  };
  let found: ReturnType<typeof scan>;
  try {
    found = scan(source);
  } catch (error) {
    return fail(`invalid Jinja2 template: ${cleanMessage(error)}`);
  }
  const e = env();
  for (const f of found.filters) {
    if (!hasFilter(e, f)) {
      fail(`the Jinja2 filter "${f}" is not supported by runbook (it renders variables, default, lookup('env'|'file') and plain filters); give the value itself`);
    }
  }
  const lookup = (plugin: unknown, ...args: unknown[]): unknown => {
    if (!SUPPORTED_LOOKUPS.includes(String(plugin))) {
      return fail(`lookup('${String(plugin)}') is not supported by runbook (only lookup('env', …) and lookup('file', …))`);
    }
    const terms = args.filter((a) => typeof a === 'string') as string[];
    const values = terms.map((term) => (plugin === 'env' ? ((scope.env ?? process.env)[term] ?? '') : readLookupFile(term, where, fail)));
    return values.join(',');
  };
  // Only the vars the template names are read: the rest stay unrendered.
  const context: Record<string, unknown> = { lookup, query: (p: unknown, ...a: unknown[]) => [lookup(p, ...a)], q: (p: unknown, ...a: unknown[]) => [lookup(p, ...a)] };
  for (const n of found.names) {
    if (n in context) continue;
    if (Object.hasOwn(scope.raw, n)) context[n] = vars[n];
    else if (Object.hasOwn(scope.magic, n)) context[n] = scope.magic[n];
  }
  let out: string;
  try {
    out = e.renderString(source, context);
  } catch (error) {
    if (ours) throw ours;
    const message = cleanMessage(error);
    if (/output null or undefined/.test(message)) {
      const missing = [...found.names].filter((n) => !(n in context) && !hasGlobal(e, n) && !hasFilter(e, n));
      return fail(missing.length ? `undefined variable ${missing.map((m) => `"${m}"`).join(', ')}` : `an undefined value: ${message}`);
    }
    return fail(message);
  }
  // Ansible (non-native): a result that reads as a list, a dict or a boolean becomes one.
  if (out.startsWith('{') || out.startsWith('[') || out === 'True' || out === 'False') {
    const typed = typeIniValue(out);
    if (typeof typed !== 'string') return typed;
  }
  return out;
}

function readLookupFile(term: string, where: SourcePosition | undefined, fail: (what: string) => never): string {
  const p = term.replace(/^~(?=$|\/)/, homedir());
  // Relative to the file that defined the var (Ansible looks beside the playbook; runbook has none).
  const path = isAbsolute(p) || !where || where.file.startsWith('(') ? resolve(p) : resolve(dirname(where.file), p);
  try {
    const text = readFileSync(path, 'utf8').replace(/\s+$/, ''); // Ansible's lookup('file') rstrips
    return text;
  } catch (error) {
    return fail(`lookup('file', '${term}'): cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

function hasGlobal(e: nunjucks.Environment, name: string): boolean {
  try {
    return e.getGlobal(name) !== undefined;
  } catch {
    return false;
  }
}

function hasFilter(e: nunjucks.Environment, name: string): boolean {
  try {
    return e.getFilter(name) !== undefined;
  } catch {
    return false;
  }
}

function cleanMessage(error: unknown): string {
  const m = error instanceof Error ? error.message : String(error);
  return m.replace(/\(unknown path\)\s*/g, '').replace(/\s*\n\s*/g, ' ').replace(/^Error:\s*/, '').trim();
}

