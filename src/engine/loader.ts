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
    throw new BadInputError(`cannot load runbook ${file}: ${(e as Error).message}`);
  }
  const def = [mod.default, mod.runbook].find(isRunbookDef);
  if (!def) throw new BadInputError(`${file}: exports no runbook (export default defineRunbook({...}))`);
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
