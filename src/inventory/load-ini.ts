/**
 * An INI inventory, read the way Ansible's `ini` plugin reads it: `[group]` host lines with inline
 * vars, `[group:vars]`, `[group:children]`, `#`/`;` comment lines, values typed like Python literals.
 */
import { BadInputError, type SourcePosition } from '../errors.js';
import type { InventoryBuilder } from './builder.js';
import { typeIniValue } from './python-literal.js';
import { parseHostPattern } from './ranges.js';
import { shlexSplit, ShlexError } from './shlex.js';

const SECTION = /^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$/;
const GROUP_NAME = /^([^:\]\s]+)\s*(?:#.*)?$/;

interface Pending {
  /** Where the group was first used before being declared. */
  pos: SourcePosition;
  kind: 'vars' | 'children';
  /** For children: the groups waiting to adopt it. */
  parents: Array<{ name: string; pos: SourcePosition }>;
}

export function loadIniInventory(builder: InventoryBuilder, file: string, text: string): void {
  // [group:vars] and [group:children] may name a group declared further down; checked at the end.
  const pending = new Map<string, Pending>();
  let group = 'ungrouped';
  let state = 'hosts';
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (!line || line[0] === '#' || line[0] === ';') return;
    const col = raw.indexOf(line[0]) + 1;
    const at = (offset = 0): SourcePosition => ({ file, line: index + 1, col: col + offset });
    const section = SECTION.exec(line);
    if (section) {
      group = section[1];
      state = section[2] ?? 'hosts';
      if (!['hosts', 'vars', 'children'].includes(state)) {
        throw new BadInputError(`section [${group}:${state}] has an unknown type "${state}" (hosts, vars or children)`, at());
      }
      if (!builder.groups.has(group)) {
        if (state === 'vars' && !pending.has(group)) pending.set(group, { pos: at(), kind: 'vars', parents: [] });
        builder.addGroup(group);
      }
      const waiting = pending.get(group);
      if (waiting && state !== 'vars') {
        pending.delete(group);
        for (const p of waiting.parents) adopt(builder, pending, p.name, group, p.pos);
      }
      return;
    }
    // Like Ansible: only a bracketed line is a (bad) section; `[2001:db8::10]:5022` is a host.
    if (line.startsWith('[') && line.endsWith(']')) {
      throw new BadInputError(`invalid section header "${line}": no spaces, and [name] or [name:vars] or [name:children]`, at());
    }
    if (state === 'hosts') {
      parseHostLine(builder, group, raw, at);
    } else if (state === 'vars') {
      const eq = line.indexOf('=');
      if (eq < 0) throw new BadInputError(`expected key=value in [${group}:vars], got "${line}"`, at());
      const key = line.slice(0, eq).trim();
      if (!key) throw new BadInputError(`a variable name is missing before "=" in [${group}:vars]`, at());
      const valueText = line.slice(eq + 1).trim();
      builder.setGroupVar(group, key, typeIniValue(valueText), at(line.indexOf(valueText, eq)));
    } else {
      const m = GROUP_NAME.exec(line);
      if (!m) throw new BadInputError(`invalid group name "${line}" in [${group}:children]`, at());
      const child = m[1];
      if (builder.groups.has(child)) {
        builder.addChild(group, child, at());
      } else {
        const p = pending.get(child) ?? { pos: at(), kind: 'children' as const, parents: [] };
        p.parents.push({ name: group, pos: at() });
        pending.set(child, p);
      }
    }
  });
  const [name, missing] = pending.entries().next().value ?? [];
  if (name !== undefined && missing) {
    throw new BadInputError(
      missing.kind === 'vars'
        ? `[${name}:vars] is for a group that is declared nowhere`
        : `[${missing.parents.at(-1)!.name}:children] names group "${name}", which is declared nowhere`,
      missing.pos,
    );
  }
}

/** A child declared after its parent's [parent:children] line: link it, and the parents waiting on the parent. */
function adopt(builder: InventoryBuilder, pending: Map<string, Pending>, parent: string, child: string, pos: SourcePosition): void {
  builder.addChild(parent, child, pos);
  const up = pending.get(parent);
  if (up?.kind === 'children') {
    pending.delete(parent);
    for (const p of up.parents) adopt(builder, pending, p.name, parent, p.pos);
  }
}

function parseHostLine(builder: InventoryBuilder, group: string, raw: string, at: (offset?: number) => SourcePosition): void {
  const start = raw.length - raw.trimStart().length;
  let tokens;
  try {
    tokens = shlexSplit(raw);
  } catch (error) {
    if (error instanceof ShlexError) throw new BadInputError(`cannot read host line: ${error.message}`, at());
    throw error;
  }
  if (tokens.length === 0) return;
  const [first, ...rest] = tokens;
  const pattern = first.value;
  if (pattern.trim() === '---') throw new BadInputError('"---" starts a YAML document: is this a YAML inventory with an INI name?', at());
  const { hosts, port } = parseHostPattern(pattern, at(first.start - start));
  const vars = rest.map((t) => {
    const eq = t.value.indexOf('=');
    if (eq < 0) throw new BadInputError(`expected key=value after the host name, got "${t.value}"`, at(t.start - start));
    if (eq === 0) throw new BadInputError(`a variable name is missing before "=" in "${t.value}"`, at(t.start - start));
    return { key: t.value.slice(0, eq), value: typeIniValue(t.value.slice(eq + 1)), pos: at(t.start - start) };
  });
  for (const host of hosts) {
    builder.addHost(host, group, port, at(first.start - start));
    for (const v of vars) builder.setHostVar(host, v.key, v.value, v.pos);
  }
}
