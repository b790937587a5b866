/**
 * Ansible host patterns (`--limit`): names of groups or hosts, globs (`pg*`), `~regex`, subscripts
 * (`web[0]`, `web[1:3]`), joined by `:` or `,` — union first, then `&` intersections, then `!`
 * exclusions. As Ansible, a term that matches nothing is ignored with a warning (`mons:nonexistent`
 * is `mons`); stricter than Ansible, an empty result is an error.
 */
import { BadInputError } from '../errors.js';
import type { Inventory, InventoryHost } from './types.js';

const stderrWarning = (message: string): void => {
  process.stderr.write(`[WARNING]: ${message}\n`);
};

export function selectHosts(inventory: Inventory, pattern = 'all', warn: (message: string) => void = stderrWarning): InventoryHost[] {
  const terms = splitPattern(pattern);
  if (terms.length === 0) throw new BadInputError(`empty host pattern "${pattern}"`);
  // Only & and ! terms: they narrow `all`.
  if (terms.every((t) => t.startsWith('&') || t.startsWith('!'))) terms.unshift('all');
  const ordered = [
    ...terms.filter((t) => !t.startsWith('&') && !t.startsWith('!')),
    ...terms.filter((t) => t.startsWith('&')),
    ...terms.filter((t) => t.startsWith('!')),
  ];
  let result: InventoryHost[] = [];
  const unmatched: string[] = [];
  for (const term of ordered) {
    const op = term[0] === '&' || term[0] === '!' ? term[0] : '';
    const matched = matchTerm(inventory, term.slice(op.length));
    if (matched.size === 0) unmatched.push(term.slice(op.length));
    if (op === '&') result = result.filter((h) => matched.has(h));
    else if (op === '!') result = result.filter((h) => !matched.has(h));
    else for (const h of matched) if (!result.includes(h)) result.push(h);
  }
  const none = unmatched.map((t) => `"${t}" matches no group or host`).join('; ');
  if (result.length === 0) throw new BadInputError(`no hosts match "${pattern}"${none ? `: ${none}` : ''}`);
  for (const t of unmatched) warn(`Could not match supplied host pattern, ignoring: ${t}`);
  return result;
}

/** Split on `,`, or on `:` outside brackets (so `db[1:3]` stays whole). */
export function splitPattern(pattern: string): string[] {
  const parts = pattern.includes(',') ? pattern.split(',') : (pattern.match(/(?:[^\s:[\]]|\[[^\]]*\])+/g) ?? []);
  return parts.map((p) => p.trim()).filter(Boolean);
}

function matchTerm(inventory: Inventory, term: string): Set<InventoryHost> {
  const sub = /^(.+?)\[(-?\d+)(?::(-?\d*))?\]$/.exec(term);
  const isRegex = term.startsWith('~');
  const base = sub && !isRegex ? sub[1] : term;
  const hosts = enumerate(inventory, base);
  if (hosts.length === 0) return new Set();
  if (!sub || isRegex) return new Set(hosts);
  // Subscripts pick from the matched hosts: [i], [i:j] (inclusive, as Ansible), negative from the end.
  const at = (s: string) => {
    const n = Number(s);
    return n < 0 ? hosts.length + n : n;
  };
  const from = at(sub[2]);
  const to = sub[3] === undefined ? from : sub[3] === '' ? hosts.length - 1 : at(sub[3]);
  return new Set(hosts.slice(from, to + 1));
}

/** Hosts of the matching groups, plus matching hosts when no group matched or the term is a glob/regex. */
function enumerate(inventory: Inventory, term: string): InventoryHost[] {
  const re = term.startsWith('~') ? regexTerm(term) : fnmatch(term);
  const test = (name: string) => re.test(name);
  const out: InventoryHost[] = [];
  const add = (h: InventoryHost) => {
    if (!out.includes(h)) out.push(h);
  };
  const groups = [...inventory.groups.keys()].filter((g) => test(g));
  for (const g of groups) for (const h of hostsOfGroup(inventory, g)) add(h);
  if (groups.length === 0 || /[~.?*[]/.test(term)) {
    for (const [name, h] of inventory.hosts) if (test(name)) add(h);
  }
  return out;
}

/** A group's hosts, its descendants' included (`all` has every host). */
function hostsOfGroup(inventory: Inventory, group: string): InventoryHost[] {
  if (group === 'all') return [...inventory.hosts.values()];
  return [...inventory.hosts.values()].filter((h) => h.groups.includes(group));
}

function regexTerm(term: string): RegExp {
  try {
    return new RegExp(`^(?:${term.slice(1)})`); // Python's re.match: anchored at the start only
  } catch (error) {
    throw new BadInputError(`host pattern "${term}": invalid regular expression: ${(error as Error).message}`);
  }
}

/** Python's fnmatch: `*` any text, `?` one character, `[abc]`/`[!abc]` a set; the whole name must match. */
function fnmatch(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    const close = c === '[' ? glob.indexOf(']', i + 2) : -1;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (close > 0) {
      const set = glob.slice(i + 1, close).replace(/\\/g, '\\\\');
      re += set.startsWith('!') ? `[^${set.slice(1)}]` : `[${set}]`;
      i = close;
    } else re += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}
