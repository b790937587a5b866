/**
 * An executable inventory script, run as Ansible's `script` plugin runs it: a file with a `#!` line
 * and the execute bit is run with `--list`; its JSON maps groups to host lists or to
 * {hosts, vars, children}, with `_meta.hostvars` (or, without `_meta`, one `--host NAME` call per host).
 */
import { accessSync, constants, openSync, readSync, closeSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { BadInputError, type SourcePosition } from '../errors.js';
import type { InventoryBuilder } from './builder.js';

export function isScript(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
  } catch {
    return false;
  }
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(2);
    return readSync(fd, head, 0, 2, 0) === 2 && head.toString('latin1') === '#!';
  } finally {
    closeSync(fd);
  }
}

function run(path: string, args: string[]): string {
  try {
    return execFileSync(path, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000, maxBuffer: 64 << 20 });
  } catch (error) {
    const e = error as { status?: number; stderr?: string; message: string };
    const why = e.status !== undefined && e.status !== null ? `exit code ${e.status}` : e.message;
    throw new BadInputError(`inventory script ${args.join(' ')} failed (${why})${e.stderr ? `: ${e.stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`, { file: path });
  }
}

function parseJson(path: string, text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new BadInputError(`inventory script ${what} did not print JSON: ${(error as Error).message}`, { file: path });
  }
}

/** The `--list` output, as text: loadScriptInventory reads it (and calls --host when needed). */
export function runInventoryScript(path: string): string {
  return run(path, ['--list']);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function loadScriptInventory(builder: InventoryBuilder, path: string, text: string): void {
  const at: SourcePosition = { file: path };
  const data = parseJson(path, text, '--list');
  if (!isObject(data)) throw new BadInputError('inventory script --list must print a JSON object of groups', at);
  const hosts = new Set<string>(); // in first-seen order
  for (const [name, raw] of Object.entries(data)) {
    if (name === '_meta') continue;
    builder.addGroup(name);
    // A list is the group's hosts; an object without hosts/vars/children is one host with vars (Ansible's shorthand).
    const group: Record<string, unknown> = !isObject(raw)
      ? { hosts: raw }
      : ['hosts', 'vars', 'children'].some((k) => k in raw)
        ? raw
        : { hosts: [name], vars: raw };
    if ('hosts' in group) {
      if (!Array.isArray(group.hosts)) throw new BadInputError(`inventory script: hosts of group "${name}" must be a list`, at);
      for (const h of group.hosts) {
        builder.addHost(String(h), name, undefined, at);
        hosts.add(String(h));
      }
    }
    if ('vars' in group) {
      if (!isObject(group.vars)) throw new BadInputError(`inventory script: vars of group "${name}" must be an object`, at);
      for (const [k, v] of Object.entries(group.vars)) builder.setGroupVar(name, k, v, at);
    }
    if (Array.isArray(group.children)) {
      for (const child of group.children) {
        builder.addGroup(String(child));
        builder.addChild(name, String(child), at);
      }
    }
  }
  const meta = isObject(data._meta) ? data._meta : undefined;
  const hostvars = meta && isObject(meta.hostvars) ? meta.hostvars : undefined;
  for (const host of hosts) {
    const vars = hostvars ? hostvars[host] : parseJson(path, run(path, ['--host', host]), `--host ${host}`);
    if (vars === undefined || vars === null) continue;
    if (!isObject(vars)) throw new BadInputError(`inventory script: the vars of host "${host}" must be an object`, at);
    for (const [k, v] of Object.entries(vars)) builder.setHostVar(host, k, v, at);
  }
}
