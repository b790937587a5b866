/**
 * Finding and loading runbooks: a path to a .ts/.js file (TypeScript through tsx, no build step),
 * or the id of a built-in runbook compiled to dist/runbooks/<id>.js.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { register } from 'node:module';
import { basename, dirname, isAbsolute, join, relative, resolve as resolvePath, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BadInputError } from '../errors.js';
import { allSteps } from './scheduler.js';
import type { RunbookDef } from './types.js';

export interface LoadedRunbook {
  def: RunbookDef<any, any>;
  /** Absolute file it came from. */
  file: string;
  /** sha256 of the file's source: --resume refuses when it changed. */
  hash: string;
  docs?: string;
}

/** dist/runbooks, next to dist/src. */
export const builtinDir = fileURLToPath(new URL('../../runbooks/', import.meta.url));

let hooksInstalled = false;
async function installHooks(): Promise<void> {
  if (hooksInstalled) return;
  hooksInstalled = true;
  register(new URL('./resolve-hook.js', import.meta.url));
  // tsx's global ESM loader: .ts imports work (Node 20 has no type stripping).
  const tsx = await import('tsx/esm/api');
  tsx.register();
}

function looksLikePath(ref: string): boolean {
  return ref.includes('/') || ref.includes('\\') || /\.(c|m)?[jt]s$/.test(ref);
}

export function resolveRunbookFile(ref: string, cwd = process.cwd()): string {
  if (looksLikePath(ref)) {
    const file = resolvePath(cwd, ref);
    if (!existsSync(file)) throw new BadInputError(`runbook file not found: ${file}`);
    return file;
  }
  const file = join(builtinDir, `${ref}.js`);
  if (!existsSync(file)) {
    const known = listBuiltinIds();
    throw new BadInputError(`no built-in runbook "${ref}"${known.length ? ` (known: ${known.join(', ')})` : ''}; give a path to run a file`);
  }
  return file;
}

export function listBuiltinIds(): string[] {
  if (!existsSync(builtinDir)) return [];
  return readdirSync(builtinDir)
    .filter((f) => f.endsWith('.js'))
    .map((f) => f.replace(/\.js$/, ''))
    .sort();
}

function isRunbookDef(v: unknown): v is RunbookDef<any, any> {
  return typeof v === 'object' && v !== null && typeof (v as RunbookDef<any>).id === 'string' && Array.isArray((v as RunbookDef<any>).steps);
}

/**
 * Built-in runbooks (dist/runbooks/*.js) are compiled and import ../src/*.js relatively: they need
 * neither tsx nor the `runbook` resolve hook, whose install (a hooks worker, tsx's load and
 * register) costs ~150-250 ms of start-up. User runbooks (.ts, or .js importing 'runbook') get them.
 */
export function needsHooks(file: string): boolean {
  const rel = relative(builtinDir, file);
  const builtin = rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) && !rel.includes(sep) && rel.endsWith('.js');
  return !builtin;
}

export async function loadRunbook(ref: string, cwd = process.cwd()): Promise<LoadedRunbook> {
  const file = resolveRunbookFile(ref, cwd);
  if (needsHooks(file)) await installHooks();
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (e) {
    const pos = importErrorPosition(e, file);
    // One line, no stack: an esbuild error's own line (`file:L:C: ERROR: …`) when there is one.
    const lines = (e instanceof Error ? e.message : String(e)).split('\n');
    const first = (lines.find((l) => /ERROR: /.test(l)) ?? lines[0]!).replace(/^.*?:\d+:\d+: (ERROR: )?/, '').trim();
    const kind = e instanceof Error && !['Error', 'TransformError'].includes(e.name) ? `${e.name}: ` : '';
    throw new BadInputError(`cannot load the runbook: ${kind}${first}`, pos);
  }
  const def = [mod.default, mod.runbook].find(isRunbookDef);
  if (!def) {
    const names = Object.keys(mod).filter((k) => k !== 'default');
    const got = mod.default === undefined ? `no default export${names.length ? ` (named exports: ${names.join(', ')})` : ''}` : `a default export that is not a runbook (${typeOf(mod.default)})`;
    throw new BadInputError(`expected \`export default defineRunbook({ id, steps, ... })\`; found ${got}`, { file, ...firstExportLine(file) });
  }
  checkDefinition(def, file);
  const docs = typeof mod.docs === 'string' ? mod.docs : def.docs;
  const hash = createHash('sha256').update(readFileSync(file)).digest('hex');
  return { def, file, hash, ...(docs ? { docs } : {}) };
}

/** Structural mistakes an author can make that types do not catch (duplicate ids, unknown handlers). */
export function checkDefinition(def: RunbookDef<any, any>, file: string): void {
  const errors: string[] = [];
  const ids = new Set<string>();
  for (const s of [...allSteps(def), ...(def.handlers ?? [])]) {
    if (ids.has(s.id)) errors.push(`step id ${s.id} is used twice`);
    ids.add(s.id);
  }
  const handlers = new Set((def.handlers ?? []).map((h) => h.id));
  for (const s of allSteps(def)) for (const n of s.notify ?? []) if (!handlers.has(n)) errors.push(`step ${s.id} notifies unknown handler ${n}`);
  if (errors.length) throw new BadInputError(`${basename(dirname(file))}/${basename(file)}: ${errors.join('; ')}`);
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return `an object with keys ${Object.keys(v).slice(0, 5).join(', ') || 'none'}`;
  return typeof v;
}

/** The line of the first `export` in the file (where a default export was expected), else line 1. */
function firstExportLine(file: string): { line: number; col: number } {
  const lines = readFileSync(file, 'utf8').split('\n');
  const i = lines.findIndex((l) => /^\s*export\b/.test(l));
  return { line: i >= 0 ? i + 1 : 1, col: 1 };
}

/**
 * Where in the runbook file an import failed: the location in the message (a syntax error from
 * tsx/esbuild: `file:L:C: ERROR`), or the first stack frame in the file (a throw at import),
 * or Node's `file:L` header of a SyntaxError. Without one: the file alone.
 */
export function importErrorPosition(e: unknown, file: string): { file: string; line?: number; col?: number } {
  const text = e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e);
  const url = pathToFileURL(file).href;
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  for (const name of [url, file]) {
    const m = new RegExp(`${esc(name)}:(\\d+)(?::(\\d+))?`).exec(text);
    if (m) return { file, line: Number(m[1]), col: m[2] ? Number(m[2]) : 1 };
  }
  return { file };
}
