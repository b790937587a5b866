/**
 * Host patterns as Ansible writes them: `name`, `name:port`, `[ipv6]:port`, and ranges
 * `db[01:03]`, `[a:c]`, `[0:10:5]`, several per name. Stricter than Ansible: a range that expands to
 * nothing or mixes letters and digits is an error, not a silent empty group.
 */
import { BadInputError, type SourcePosition } from '../errors.js';

export interface HostPattern {
  hosts: string[];
  port?: number;
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

export function parseHostPattern(pattern: string, pos: SourcePosition): HostPattern {
  const { name, port } = splitPort(pattern.trim(), pos);
  if (!name) throw new BadInputError(`empty host name in "${pattern}"`, pos);
  return { hosts: expandRanges(name, pos), port };
}

/** Separate a trailing `:port`; brackets hold either a range or an IPv6 address. */
function splitPort(pattern: string, pos: SourcePosition): { name: string; port?: number } {
  const ipv6 = /^\[([^\]]*:[^\]]*:[^\]]*)\](?::(\d+))?$/.exec(pattern);
  if (ipv6) return { name: ipv6[1], port: ipv6[2] === undefined ? undefined : toPort(ipv6[2], pattern, pos) };
  const outsideBrackets = pattern.replace(/\[[^\]]*\]/g, '[]');
  const colons = outsideBrackets.split(':').length - 1;
  if (colons === 0) return { name: pattern };
  if (colons > 1) return { name: pattern }; // a bare IPv6 address
  const m = /^(.*):(\d*)$/.exec(pattern);
  if (!m || m[2] === '') {
    throw new BadInputError(`invalid host "${pattern}": a ':' must be followed by a port number`, pos);
  }
  return { name: m[1], port: toPort(m[2], pattern, pos) };
}

function toPort(text: string, pattern: string, pos: SourcePosition): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new BadInputError(`invalid port in "${pattern}": ${text} is not in 1-65535`, pos);
  }
  return port;
}

/** Expand the first `[…]` range, then recurse for the next ones (Ansible's order). */
export function expandRanges(name: string, pos: SourcePosition): string[] {
  const open = name.indexOf('[');
  if (open < 0) {
    if (name.includes(']')) throw new BadInputError(`invalid host "${name}": ']' without '['`, pos);
    return [name];
  }
  const close = name.indexOf(']', open);
  if (close < 0) throw new BadInputError(`invalid host range in "${name}": '[' without ']'`, pos);
  const head = name.slice(0, open);
  const tail = name.slice(close + 1);
  return rangeValues(name.slice(open + 1, close), name, pos).flatMap((v) => expandRanges(head + v + tail, pos));
}

function rangeValues(spec: string, name: string, pos: SourcePosition): string[] {
  const bad = (why: string) => new BadInputError(`invalid host range [${spec}] in "${name}": ${why}`, pos);
  const parts = spec.split(':');
  if (parts.length !== 2 && parts.length !== 3) throw bad('expected [begin:end] or [begin:end:step]');
  const [beginText, end, stepText = '1'] = parts;
  const begin = beginText === '' ? '0' : beginText;
  if (end === '') throw bad('the end is missing');
  if (!/^[1-9]\d*$/.test(stepText)) throw bad(`the step "${stepText}" is not a positive integer`);
  const step = Number(stepText);
  const values: string[] = [];
  if (/^[a-zA-Z]$/.test(begin) && /^[a-zA-Z]$/.test(end)) {
    const from = LETTERS.indexOf(begin);
    const to = LETTERS.indexOf(end);
    if (from > to) throw bad(`"${begin}" comes after "${end}"`);
    for (let i = from; i <= to; i += step) values.push(LETTERS[i]);
    return values;
  }
  if (!/^\d+$/.test(begin) || !/^\d+$/.test(end)) {
    throw bad('begin and end must both be numbers or both be single letters');
  }
  // A leading zero asks for zero padding, to the width of both bounds.
  const width = begin.length > 1 && begin.startsWith('0') ? begin.length : 0;
  if (width && end.length !== width) throw bad('zero-padded begin and end must have the same width');
  const from = Number(begin);
  const to = Number(end);
  if (from > to) throw bad(`${begin} is greater than ${end}`);
  for (let i = from; i <= to; i += step) values.push(String(i).padStart(width, '0'));
  return values;
}
